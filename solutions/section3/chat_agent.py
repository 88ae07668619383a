"""Exercise 3.1 — chat templates and a ReAct agent loop (reference solution).

A chat model never sees a list of messages: it sees one string, written by the
model's *chat template* (a Jinja2 program shipped with its tokenizer), and it
answers with one string. You write both ends of that:

* ``render_chat``: render a Hugging Face–style chat template exactly as
  transformers' ``tokenizer.apply_chat_template(messages, tokenize=False)`` does;
* ``react_agent``: the control loop of a tool-using agent in the ReAct format
  (Thought / Action / Action Input / Observation / Final Answer): call the model,
  parse its reply, call the tool, write the observation back, repeat.

Given, complete (keep them as they are; the tests use them): the agent's prompt
(``react_header``) and its fixed observation texts (``STOP``, ``FORMAT_ERROR``,
``UNKNOWN_TOOL``, ``TOOL_ERROR``), and a fake model and a fake tool to play with:
``ScriptedLLM`` answers from a script, ``LookupTool`` looks keys up in a table.

The kit's three chat templates (ChatML, Llama-2 ``[INST]``, Zephyr) are data in
``exercises/support/section3/chat_agent.py``: ``TEMPLATES``, with the special-token
variables each needs in ``TEMPLATE_VARIABLES``. In a notebook::

    from llmkit.testing import load_support
    kit = load_support("3.1")
    hello = [{"role": "user", "content": "Hi"}]
    print(render_chat(kit.TEMPLATES["chatml"], hello, add_generation_prompt=True))

Not allowed: transformers' own renderer (``apply_chat_template``,
``render_jinja_template``): the graders scan your file for those names, and the point
is to know what it does. jinja2 and json are yours to use.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment


def render_chat(template: str, messages: list[dict], add_generation_prompt: bool = False, **variables) -> str:
    """The string a chat model sees for ``messages``: ``template`` rendered byte for byte as
    transformers renders it.

    template: a Jinja2 chat template (what a model's ``tokenizer.chat_template`` holds).
    messages: a list of dicts, usually ``{"role": ..., "content": ...}``; other keys
        (``tool_calls``, ``name``, ...) reach the template as they are.
    add_generation_prompt: handed to the template as the variable of that name. Templates
        that honour it end with the header of an assistant turn (ChatML:
        ``"<|im_start|>assistant\\n"``), so the model writes the answer instead of
        continuing the user's turn; Llama-2's template has nothing to add.
    variables: every other keyword reaches the template as a variable of that name
        (``bos_token``, ``eos_token``, ``tools``, ``documents``, a date string, ...).
    Returns the rendered string. Errors a template raises propagate to the caller.

    The Jinja environment transformers renders with, and yours must match:

    * **sandboxed and immutable**: ``jinja2.sandbox.ImmutableSandboxedEnvironment``.
      Templates come from the Hub and are untrusted code: ``{{ messages.__class__... }}``
      or ``messages.append(...)`` in a template must raise jinja2's ``SecurityError``.
    * **trim_blocks=True, lstrip_blocks=True**: the first newline after a block tag
      ``{% ... %}`` is dropped, and so are the spaces or tabs before a block tag that
      opens a line, so templates can be indented. Jinja's defaults keep both, and
      the text then has stray newlines and spaces (``{{ ... }}`` lines are not trimmed).
    * **loop controls**: the ``jinja2.ext.loopcontrols`` extension, for ``{% break %}``
      and ``{% continue %}``.
    * **a tojson filter without ASCII escaping**: ``tojson(x, ensure_ascii=False,
      indent=None, separators=None, sort_keys=False)`` returns ``json.dumps`` of x with
      those keywords: keys in their order, "Zürich" and "東京" kept as they are.
      Jinja's built-in ``tojson`` sorts the keys and writes ``<``, ``>``, ``&``, ``'``
      as ``\\u003c``...; plain ``json.dumps`` writes every non-ASCII character as
      ``\\uXXXX``. Either changes the text the model sees.
    * **a global raise_exception(message)** that raises ``jinja2.TemplateError(message)``:
      templates call it to refuse a conversation they cannot format (Llama-2: roles
      that do not alternate).
    * **the variables**: ``messages``, ``add_generation_prompt``, ``tools`` and
      ``documents`` (None unless given: transformers always passes both), then the
      rest of ``variables``.

    (transformers also gives templates ``strftime_now(format)`` for today's date;
    add it if you like, the tests do not use it.) Compiling a template takes
    milliseconds, rendering it microseconds: transformers compiles each template once
    (``functools.lru_cache``), and so may you.

    The double-BOS trap: the Llama-2 template writes ``bos_token`` (``"<s>"``) into the
    text itself. Tokenising that text with special tokens added (``tokenizer(text)``
    does by default) puts a second BOS in front, and the model sees ``<s><s>[INST]``, a
    sequence it never saw in training. Text that came out of a chat template is
    tokenised with ``add_special_tokens=False`` (``apply_chat_template(...,
    tokenize=True)`` does exactly that).
    """
    context = {"tools": None, "documents": None, **variables}
    return _compiled(template).render(
        messages=messages, add_generation_prompt=add_generation_prompt, **context
    )


@functools.lru_cache(maxsize=64)
def _compiled(template: str) -> jinja2.Template:
    """Compiling is the slow part (milliseconds): each template once, as transformers does."""
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    environment.filters["tojson"] = _tojson
    environment.globals["raise_exception"] = _raise_exception
    environment.globals["strftime_now"] = _strftime_now
    return environment.from_string(template)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _raise_exception(message):
    raise jinja2.TemplateError(message)


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


# --- the agent's prompt and its fixed texts (given: keep them as they are) -----------

STOP = "\nObservation:"
"""The stop string: a model tends to go on and write the tool's answer itself. Its reply
is cut just before the first STOP (which is dropped with everything after it)."""

FORMAT_ERROR = (
    "Invalid reply: write an 'Action:' line and an 'Action Input:' line, or a 'Final Answer:' line."
)
"""The observation for a reply that neither calls a tool nor answers."""

UNKNOWN_TOOL = "Unknown tool: {name}. Use one of: {tools}."
"""The observation for an action naming no tool: ``UNKNOWN_TOOL.format(name=action,
tools=", ".join(tools))`` (the tools' names in the dict's order)."""

TOOL_ERROR = "Error from {name}: {error}: {message}"
"""The observation when the tool raises: ``TOOL_ERROR.format(name=action,
error=type(exc).__name__, message=str(exc))``."""


def react_header(question: str, tools: dict[str, Callable[[str], str]]) -> str:
    """The start of every prompt of the agent: the instructions, the tools (with their
    ``description`` attribute, if they have one) and the question. It ends with a newline."""
    lines = ["Answer the question as well as you can. You have these tools:"]
    for name, tool in tools.items():
        lines.append(f"- {name}: {getattr(tool, 'description', None) or 'no description'}")
    lines += [
        "",
        "Use this format:",
        "Thought: what to do next",
        "Action: the tool to call, one of: " + ", ".join(tools),
        "Action Input: the tool's input, on one line",
        "Observation: what the tool returned",
        "... (Thought, Action, Action Input and Observation may repeat)",
        "Thought: I know the answer",
        "Final Answer: the answer",
        "",
        f"Question: {question}",
        "",
    ]
    return "\n".join(lines)


def react_agent(
    llm: Callable[[str], str],
    tools: dict[str, Callable[[str], str]],
    question: str,
    max_steps: int = 8,
) -> tuple[str | None, list[dict]]:
    """Answer ``question`` with a ReAct loop: the model thinks, calls tools, reads what
    they return, and answers.

    llm: the model, ``llm(prompt) -> reply``, both strings (try ``ScriptedLLM``).
    tools: name -> tool, ``tool(text) -> text`` (try ``LookupTool``).
    max_steps: at most this many calls of ``llm`` (0 calls none); ValueError if negative.
    Returns ``(answer, trace)``: the final answer, or None if ``max_steps`` replies came
    and none answered; and one dict per call of ``llm`` (below).

    The prompt. The first call gets ``prompt = react_header(question, tools)``. After
    each step that did not answer, the prompt grows by what was kept of the reply and
    the observation, and the next call gets it:
        ``prompt += text + "\\nObservation: " + observation + "\\n"``

    One step:
    1. ``reply = llm(prompt)``. Cut it at the stop string: ``text`` is everything before
       the first ``STOP`` (``"\\nObservation:"``), with trailing whitespace removed. A
       model often goes on to write an Observation (and an answer) it made up: that
       part is discarded, never parsed, never written back into the prompt.
    2. Parse ``text`` by labels. A label opens a line (spaces or tabs before it are
       allowed) and is case-sensitive: ``Thought:``, ``Action:``, ``Action Input:``,
       ``Final Answer:``. Its value is the rest of that line, stripped; for
       ``Final Answer:`` it is the rest of the text (following lines included),
       stripped. Where a label appears twice, the first counts.
    3. If there is a ``Final Answer:`` line, that is the answer: the loop ends (even if
       the text also names an action).
    4. Else, if there is an ``Action:`` line and an ``Action Input:`` line, call the
       tool: ``observation = str(tools[action](action_input))``. Nothing is raised to
       the caller, the model is told instead:
       * a name that is not in ``tools``: ``UNKNOWN_TOOL.format(name=..., tools=...)``
         (no tool is called);
       * a tool that raises an Exception: ``TOOL_ERROR.format(name=..., error=...,
         message=...)``.
    5. Else (no action, or an action without its input) the reply is malformed: the
       observation is ``FORMAT_ERROR`` and no tool is called.

    The trace: for each call of ``llm``, in order, a dict with exactly these keys:
        "text":         the reply as kept (cut at STOP, trailing whitespace removed)
        "thought":      the Thought: value, or None if there is none
        "action":       the tool name, or None when no tool call was made (an answer,
                        a malformed reply)
        "action_input": its input, None likewise
        "observation":  what was written back: the tool's result, UNKNOWN_TOOL,
                        TOOL_ERROR or FORMAT_ERROR text; None for the answer
        "answer":       the Final Answer: value, only in the last step; else None
    """
    if max_steps < 0:
        raise ValueError(f"max_steps must be >= 0, got {max_steps}")
    prompt = react_header(question, tools)
    trace: list[dict] = []
    for _ in range(max_steps):
        text = llm(prompt).split(STOP, 1)[0].rstrip()
        step = {
            "text": text,
            "thought": _label(text, "Thought"),
            "action": None,
            "action_input": None,
            "observation": None,
            "answer": None,
        }
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


def _label(text: str, label: str) -> str | None:
    """The rest of the first line that opens with ``label:`` (stripped), or None."""
    match = re.search(rf"^[ \t]*{re.escape(label)}:(.*)$", text, flags=re.MULTILINE)
    return None if match is None else match.group(1).strip()


def _final_answer(text: str) -> str | None:
    match = re.search(r"^[ \t]*Final Answer:(.*)", text, flags=re.MULTILINE | re.DOTALL)
    return None if match is None else match.group(1).strip()


def _call_tool(tools: dict, action: str, action_input: str) -> str:
    if action not in tools:
        return UNKNOWN_TOOL.format(name=action, tools=", ".join(tools))
    try:
        return str(tools[action](action_input))
    except Exception as exc:  # noqa: BLE001 - the model is told, the caller is not
        return TOOL_ERROR.format(name=action, error=type(exc).__name__, message=str(exc))


# --- a fake model and a fake tool (given) --------------------------------------------


def last_observation(prompt: str) -> str:
    """The value of the last ``Observation: ...`` line after the prompt's question, or ""."""
    after_question = prompt.rsplit("\nQuestion: ", 1)[-1]
    found = [
        line[len("Observation: ") :]
        for line in after_question.split("\n")
        if line.startswith("Observation: ")
    ]
    return found[-1] if found else ""


class ScriptedLLM:
    """A fake model that follows a script: its i-th call returns ``replies[i]``, and once
    the script runs out it repeats its last reply (a model stuck in a loop).

    A reply may hold the placeholder ``{observation}``: it is replaced by the last
    observation the prompt carries (``last_observation``), so an answer can quote what
    the agent really wrote back. The prompts it was called with are kept in
    ``.prompts``, in order.

        llm = ScriptedLLM(["Thought: look it up\\nAction: capital\\nAction Input: France",
                           "Thought: I know the answer\\nFinal Answer: {observation}"])
    """

    def __init__(self, replies: list[str]):
        if not replies:
            raise ValueError("ScriptedLLM needs at least one reply")
        self.replies = [str(reply) for reply in replies]
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        reply = self.replies[min(len(self.prompts), len(self.replies) - 1)]
        self.prompts.append(prompt)
        return reply.replace("{observation}", last_observation(prompt))


class LookupTool:
    """A fake tool: ``tool(text)`` returns ``table[text.strip()]``, and raises
    ValueError for a key the table does not hold. Its ``description`` goes into the
    agent's prompt; the inputs it was called with are kept in ``.calls``, in order.

        capital = LookupTool({"France": "Paris", "Japan": "Tokyo"}, "the capital of a country")
    """

    def __init__(self, table: dict[str, str], description: str = "looks a key up in a table"):
        self.table = dict(table)
        self.description = description
        self.calls: list[str] = []

    def __call__(self, text: str) -> str:
        self.calls.append(text)
        key = text.strip()
        if key not in self.table:
            raise ValueError(f"no entry for {key!r}")
        return self.table[key]
