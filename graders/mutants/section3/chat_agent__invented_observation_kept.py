"""Mutant: the reply is parsed whole, never cut at the stop string.

Misconception: the model stops where it should. It often goes on to write
"Observation: ..." and a Final Answer it made up; without the cut at "\\nObservation:"
the agent answers with the invention and never calls the tool.
"""


def react_agent(llm, tools, question, max_steps=8):
    if max_steps < 0:
        raise ValueError(f"max_steps must be >= 0, got {max_steps}")
    prompt = react_header(question, tools)
    trace = []
    for _ in range(max_steps):
        text = llm(prompt).rstrip()
        step = dict.fromkeys(["text", "thought", "action", "action_input", "observation", "answer"])
        step["text"], step["thought"] = text, _label(text, "Thought")
        trace.append(step)
        answer = _final_answer(text)
        if answer is not None:
            step["answer"] = answer
            return answer, trace
        action, action_input = _label(text, "Action"), _label(text, "Action Input")
        if action is None or action_input is None:
            observation = FORMAT_ERROR
        else:
            step["action"], step["action_input"] = action, action_input
            observation = _call_tool(tools, action, action_input)
        step["observation"] = observation
        prompt += text + "\nObservation: " + observation + "\n"
    return None, trace
