"""Mutant: the loop runs while step <= max_steps: one call of the model too many.

Misconception: counting from 0 to max_steps. max_steps is the most calls of the model,
and a model stuck in a loop costs one more call (and one more tool call) each time.
"""


def react_agent(llm, tools, question, max_steps=8):
    if max_steps < 0:
        raise ValueError(f"max_steps must be >= 0, got {max_steps}")
    prompt = react_header(question, tools)
    trace = []
    step_number = 0
    while step_number <= max_steps:
        step_number += 1
        text = llm(prompt).split(STOP, 1)[0].rstrip()
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
