"""Support for exercise 3.1 (chat templates and a ReAct agent loop): what its public tests,
graders, notebook and `llmkit show` share. It ships to learners: nothing here solves the
exercise.

* The kit's chat templates (ChatML, Llama-2 ``[INST]``, Zephyr) and what they render for a
  few conversations, pinned as strings (transformers' renderer wrote them; the graders
  call it live).
* Agent scenarios: a scripted model's replies and the tools' tables, drawn by hypothesis
  from a list of steps (what each reply does), with the run they must give, written
  from that list: every prompt, the trace and the tools' calls. Nothing here parses a
  reply: the steps say what each one holds.
* The named misconceptions, and the figure.
"""

from __future__ import annotations

import json

import jinja2
import jinja2.ext
import jinja2.utils
from hypothesis import strategies as st

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import CheckFailure, Misconception, Misconceptions

README = "exercises/section3/README.md"

# --- the kit's chat templates ----------------------------------------------------------
# Written for this kit in the three well-known formats. The block tags are indented, as
# many Hub templates are: they render right only with trim_blocks and lstrip_blocks.

CHATML = """\
{% for message in messages %}
    {% if message['role'] not in ['system', 'user', 'assistant', 'tool'] %}
        {{ raise_exception('ChatML has no role ' + message['role']) }}
    {% endif %}
<|im_start|>{{ message['role'] }}
{{ message['content'] }}<|im_end|>
{% endfor %}
{% if add_generation_prompt %}
<|im_start|>assistant
{% endif %}
"""

LLAMA2 = """\
{% if messages and messages[0]['role'] == 'system' %}
    {% set system_message = messages[0]['content'] %}
    {% set turns = messages[1:] %}
{% else %}
    {% set system_message = none %}
    {% set turns = messages %}
{% endif %}
{% for message in turns %}
    {% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{ raise_exception('Llama-2 roles must alternate user/assistant/user/... after a system message') }}
    {% endif %}
    {% if message['role'] == 'user' %}
        {% if loop.first and system_message is not none %}
            {% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}
        {% else %}
            {% set content = message['content'] %}
        {% endif %}
        {{- bos_token + '[INST] ' + content | trim + ' [/INST]' -}}
    {% else %}
        {{- ' ' + message['content'] | trim + ' ' + eos_token -}}
    {% endif %}
{% endfor %}
"""

ZEPHYR = """\
{% for message in messages %}
    {% if message['role'] in ['system', 'user', 'assistant'] %}
<|{{ message['role'] }}|>
{{ message['content'] + eos_token }}
    {% else %}
        {{ raise_exception('Zephyr has no role ' + message['role']) }}
    {% endif %}
    {% if loop.last and add_generation_prompt %}
<|assistant|>
    {% endif %}
{% endfor %}
"""

TEMPLATES = {"chatml": CHATML, "llama2": LLAMA2, "zephyr": ZEPHYR}
"""The kit's chat templates, by name."""

TEMPLATE_VARIABLES = {
    "chatml": {},
    "llama2": {"bos_token": "<s>", "eos_token": "</s>"},
    "zephyr": {"eos_token": "</s>"},
}
"""The special tokens each template reads (transformers passes the tokenizer's)."""

GENERATION_PROMPTS = {"chatml": "<|im_start|>assistant\n", "llama2": "", "zephyr": "<|assistant|>\n"}
"""What ``add_generation_prompt=True`` appends, per template (Llama-2: nothing)."""

LLAMA2_ROLES_ERROR = "Llama-2 roles must alternate user/assistant/user/... after a system message"

CONVERSATIONS = {
    "system_and_user": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Hi there!"},
    ],
    "two_turns": [
        {"role": "user", "content": "Wie spät ist es in Zürich?"},
        {"role": "assistant", "content": " Es ist 15 Uhr. "},
        {"role": "user", "content": "Und in 東京?"},
    ],
}

# What transformers' renderer writes for each (template, conversation), without and with
# the generation prompt: the strings a chat model really sees.
PINNED = {
    ("chatml", "system_and_user"): (
        "<|im_start|>system\nYou are a terse assistant.<|im_end|>\n<|im_start|>user\nHi there!<|im_end|>\n"
    ),
    ("chatml", "two_turns"): (
        "<|im_start|>user\nWie spät ist es in Zürich?<|im_end|>\n"
        "<|im_start|>assistant\n Es ist 15 Uhr. <|im_end|>\n"
        "<|im_start|>user\nUnd in 東京?<|im_end|>\n"
    ),
    (
        "llama2",
        "system_and_user",
    ): "<s>[INST] <<SYS>>\nYou are a terse assistant.\n<</SYS>>\n\nHi there! [/INST]",
    ("llama2", "two_turns"): (
        "<s>[INST] Wie spät ist es in Zürich? [/INST] Es ist 15 Uhr. </s><s>[INST] Und in 東京? [/INST]"
    ),
    ("zephyr", "system_and_user"): "<|system|>\nYou are a terse assistant.</s>\n<|user|>\nHi there!</s>\n",
    ("zephyr", "two_turns"): (
        "<|user|>\nWie spät ist es in Zürich?</s>\n"
        "<|assistant|>\n Es ist 15 Uhr. </s>\n"
        "<|user|>\nUnd in 東京?</s>\n"
    ),
}

# Two small templates of the public tests: one indented (what trim_blocks and
# lstrip_blocks are for), one with loop controls (its whitespace is controlled by hand).
INDENTED_TEMPLATE = """\
{% for message in messages %}
    {% if message['role'] == 'user' %}
User says: {{ message['content'] }}
    {% elif message['role'] == 'assistant' %}
        {% if message['content'] %}
Bot says: {{ message['content'] }}
        {% endif %}
    {% endif %}
{% endfor %}
"""
INDENTED_MESSAGES = [
    {"role": "system", "content": "Be kind."},
    {"role": "user", "content": "Grüezi!"},
    {"role": "assistant", "content": "Hello."},
    {"role": "user", "content": "Merci."},
]
INDENTED_EXPECTED = "User says: Grüezi!\nBot says: Hello.\nUser says: Merci.\n"

LOOP_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' %}{% continue %}{% endif -%}"
    "{%- if message['content'] == 'STOP' %}{% break %}{% endif -%}"
    "[{{ loop.index }}:{{ message['role'] }}] {{ message['content'] }};"
    "{%- endfor -%}"
)
LOOP_MESSAGES = [
    {"role": "system", "content": "hidden"},
    {"role": "user", "content": "un"},
    {"role": "assistant", "content": "deux"},
    {"role": "user", "content": "STOP"},
    {"role": "assistant", "content": "never shown"},
]
LOOP_EXPECTED = "[2:user] un;[3:assistant] deux;"

TOJSON_TEMPLATE = "{{ data | tojson }}"
TOJSON_INDENT_TEMPLATE = "{{ data | tojson(indent=2) }}"
TOJSON_DATA = {
    "city": "Zürich",
    "greeting": "こんにちは 🙂",
    "html": '<b>Fish & chips</b> aren\'t "bad"',
    "args": {"units": "°C", "days": [1, 2.5, None, True]},
}


def tojson_expected(data, indent=None) -> str:
    """transformers' tojson: keys in order, nothing escaped but what JSON must escape."""
    return json.dumps(data, ensure_ascii=False, indent=indent)


def render_case(name: str) -> dict:
    """A pinned rendering by name: template, messages, add_generation_prompt, variables,
    expected. Names: ``"<template>/<conversation>"`` or ``".../generation_prompt"``,
    ``"indented"``, ``"loop_controls"``, ``"tojson"``, ``"tojson_indent"``."""
    if name == "indented":
        return _case(INDENTED_TEMPLATE, INDENTED_MESSAGES, False, {}, INDENTED_EXPECTED)
    if name == "loop_controls":
        return _case(LOOP_TEMPLATE, LOOP_MESSAGES, False, {}, LOOP_EXPECTED)
    if name in ("tojson", "tojson_indent"):
        indent = 2 if name == "tojson_indent" else None
        template = TOJSON_INDENT_TEMPLATE if indent else TOJSON_TEMPLATE
        return _case(template, [], False, {"data": TOJSON_DATA}, tojson_expected(TOJSON_DATA, indent))
    template, conversation, *rest = name.split("/")
    with_prompt = bool(rest)
    expected = PINNED[(template, conversation)] + (GENERATION_PROMPTS[template] if with_prompt else "")
    return _case(
        TEMPLATES[template], CONVERSATIONS[conversation], with_prompt, TEMPLATE_VARIABLES[template], expected
    )


def _case(template, messages, add_generation_prompt, variables, expected) -> dict:
    return {
        "template": template,
        "messages": messages,
        "add_generation_prompt": add_generation_prompt,
        "variables": dict(variables),
        "expected": expected,
    }


PINNED_CASES = [
    f"{template}/{conversation}{suffix}"
    for template in TEMPLATES
    for conversation in CONVERSATIONS
    for suffix in ("", "/generation_prompt")
]


# --- conversations drawn by hypothesis ----------------------------------------------------

WORDS = [
    "hello", "Zürich", "naïve", "東京", "число", "🙂", "café", "x²", "<b>", "a&b", "it's", "\"quoted\"",
    "tab\there", "two\nlines", "{{ not code }}", "{% raw %}", "résumé", "Ålesund", "😀👍", "ß",
]  # fmt: skip


def texts(min_words: int = 1, max_words: int = 5) -> st.SearchStrategy[str]:
    """Message contents: a few words of the pool (unicode, markup, braces), with spaces
    around them now and then."""
    words = st.lists(st.sampled_from(WORDS), min_size=min_words, max_size=max_words).map(" ".join)
    return st.tuples(st.sampled_from(["", " ", "\n"]), words, st.sampled_from(["", " ", "  \n"])).map("".join)


@st.composite
def conversations(draw_st, max_turns: int = 4, system: bool | None = None) -> list[dict]:
    """An optional system message, then user and assistant turns alternating from the user."""
    with_system = draw_st(st.booleans()) if system is None else system
    messages = [{"role": "system", "content": draw_st(texts())}] if with_system else []
    for turn in range(draw_st(st.integers(1, max_turns))):
        messages.append({"role": "user" if turn % 2 == 0 else "assistant", "content": draw_st(texts())})
    return messages


def outcome(call, *args, **kwargs) -> tuple:
    """``("returned", value)``, or ``("raised", exception type name, message)`` when the
    call raises, in-process or from the sandbox (where a jinja2 error arrives as a
    RemoteError naming its type). A stub's NotImplementedError and the engine's own
    failures are raised, not reported."""
    try:
        return ("returned", call(*args, **kwargs))
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported, for the check to compare
        if type(exc).__name__ in ENGINE_FAILURES:
            raise
        remote = getattr(exc, "llmkit_remote", None)
        name = remote["type"] if remote else type(exc).__name__
        message = str(exc)
        if remote and message.startswith(f"{name}: "):
            message = message[len(name) + 2 :]
        return ("raised", name, message)


ENGINE_FAILURES = ("SandboxFailure", "CheckFailure", "ImplementationError", "BannedCallError")


# --- the agent: the spec's fixed texts, scenarios and the runs they must give -------------
# The texts below are the stub's (exercises/section3/chat_agent.py), restated: the tests
# hold the learner's agent to them.

STOP = "\nObservation:"
FORMAT_ERROR = (
    "Invalid reply: write an 'Action:' line and an 'Action Input:' line, or a 'Final Answer:' line."
)
UNKNOWN_TOOL = "Unknown tool: {name}. Use one of: {tools}."
TOOL_ERROR = "Error from {name}: {error}: {message}"
TRACE_KEYS = ("text", "thought", "action", "action_input", "observation", "answer")


def header(question: str, descriptions: dict[str, str]) -> str:
    """The stub's ``react_header``, for tools with these descriptions."""
    lines = ["Answer the question as well as you can. You have these tools:"]
    lines += [f"- {name}: {description or 'no description'}" for name, description in descriptions.items()]
    lines += [
        "",
        "Use this format:",
        "Thought: what to do next",
        "Action: the tool to call, one of: " + ", ".join(descriptions),
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


def last_observation(prompt: str) -> str:
    """What ``ScriptedLLM`` puts in place of ``{observation}`` (the stub's function)."""
    after_question = prompt.rsplit("\nQuestion: ", 1)[-1]
    found = [
        line[len("Observation: ") :]
        for line in after_question.split("\n")
        if line.startswith("Observation: ")
    ]
    return found[-1] if found else ""


TOOLS = {
    "population": (
        "how many people live in a city",
        {"Zürich": "434 008", "東京": "14 millions", "Kraków": "800 000", "São Paulo": "11.4 million"},
    ),
    "country": (
        "the country a city is in",
        {"Zürich": "Switzerland", "Kraków": "Polska", "Québec": "Canada", "東京": "日本"},
    ),
    "weather": (
        "today's weather in a city",
        {"Reykjavík": "4 °C, wind", "São Paulo": "28 °C, sun", "Québec": "-12 °C, snow"},
    ),
    "translate": (
        "a phrase in English",
        {
            "Grüß Gott": "hello",
            "ありがとう": "thank you",
            "Спасибо": "thank you",
            "¿Qué tal?": "how are you?",
        },
    ),
}
KEYS = sorted({key for _, table in TOOLS.values() for key in table})
UNKNOWN_NAMES = ["search", "Population", "calculator", "wikipedia", "météo"]
THOUGHTS = [
    "I should look this up.",
    "Je dois vérifier ça.",
    "先に調べます。",
    "Two tools: first the city, then the rest.",
    "Hmm: the table should know.",
]
QUESTIONS = [
    "How many people live in Zürich?",
    "Wie ist das Wetter in Reykjavík?",
    "東京の人口は？",
    "In which country is Kraków, and how big is it?",
]
ANSWERS = [
    "{observation}",
    "It is {observation}.",
    "Paris",
    "東京は大きい",
    "Two lines:\n{observation}, then done.",
]
PROSE = ["I am not sure what to do.", "Let me think.", "Observation: I will make one up", "    "]
PADS = ["", " ", "  ", "\t"]  # after a label's colon
INDENTS = ["", "", "  ", "\t"]  # before a label
TAILS = ["", "\n", "  \n\n", " "]  # after the reply


def _final_text(thought, answer, variant, tool, key):
    lines = [f"Thought: {thought}"] if thought is not None else []
    if variant == "after_action":  # an action, then the answer: the answer wins
        lines += [f"Action: {tool}", f"Action Input: {key}"]
    return "\n".join([*lines, f"Final Answer: {answer}"])


@st.composite
def _step(draw_st, kind: str, tool_names: list[str]) -> dict:
    thought = (
        draw_st(st.none() | st.sampled_from(THOUGHTS))
        if kind != "bad"
        else draw_st(st.sampled_from(THOUGHTS))
    )
    tail = draw_st(st.sampled_from(TAILS))
    if kind == "final":
        variant = draw_st(st.sampled_from(["plain", "plain", "after_action", "invented_after"]))
        answer = draw_st(st.sampled_from(ANSWERS))
        kept = _final_text(
            thought, answer, variant, draw_st(st.sampled_from(tool_names)), draw_st(st.sampled_from(KEYS))
        )
        invented = (
            "\nObservation: made up\nFinal Answer: a made-up answer" if variant == "invented_after" else ""
        )
        return {
            "kind": "final",
            "thought": thought,
            "answer": answer,
            "kept": kept,
            "invented": invented,
            "tail": tail,
        }
    if kind == "bad":
        variant = draw_st(
            st.sampled_from(["no_input", "no_action", "prose", "lowercase", "inline", "invented_only"])
        )
        tool, key = draw_st(st.sampled_from(tool_names)), draw_st(st.sampled_from(KEYS))
        kept, invented = {
            "no_input": (f"Thought: {thought}\nAction: {tool}", ""),
            "no_action": (f"Thought: {thought}\nAction Input: {key}", ""),
            "prose": (draw_st(st.sampled_from(PROSE)), ""),
            "lowercase": (f"thought: {thought}\naction: {tool}\naction input: {key}", ""),
            "inline": (f"Thought: {thought} Action: {tool} Action Input: {key}", ""),
            "invented_only": (f"Thought: {thought}", "\nObservation: it is 42\nFinal Answer: 42"),
        }[variant]
        invented_answer = "42" if variant == "invented_only" else None
        parsed_thought = {
            "prose": None,
            "lowercase": None,
            "inline": f"{thought} Action: {tool} Action Input: {key}",
        }.get(variant, thought)
        return {
            "kind": "bad",
            "thought": parsed_thought,
            "kept": kept,
            "invented": invented,
            "invented_answer": invented_answer,
            "tail": tail,
        }
    # an action: a known tool with a key of its table ("act"), a key it lacks ("error"),
    # a name that is no tool ("unknown"); "invent" goes on to make up the observation.
    if kind == "unknown":
        tool = draw_st(st.sampled_from(UNKNOWN_NAMES))
    else:
        tool = draw_st(st.sampled_from(tool_names))
    table = TOOLS.get(tool, ("", {}))[1]
    if kind in ("act", "invent"):
        key = draw_st(st.sampled_from(sorted(table)))
    elif kind == "error":
        key = draw_st(st.sampled_from([k for k in KEYS if k not in table]))
    else:
        key = draw_st(st.sampled_from(KEYS))
    indent, pad = draw_st(st.sampled_from(INDENTS)), draw_st(st.sampled_from(PADS))
    lines = [f"Thought: {thought}"] if thought is not None else []
    lines += [
        f"{indent}Action:{pad}{tool}",
        f"{indent}Action Input:{pad}{key}{draw_st(st.sampled_from(['', ' ']))}",
    ]
    invented, made_up = "", None
    if kind == "invent":
        made_up = draw_st(st.sampled_from(["about 3 million", "Atlantis", "-99 °C"]))
        invented = f"\nObservation: {made_up}\nThought: I know the answer now.\nFinal Answer: {made_up}"
    return {
        "kind": kind,
        "thought": thought,
        "tool": tool,
        "input": key,
        "kept": "\n".join(lines),
        "invented": invented,
        "invented_answer": made_up,
        "invented_thought": "I know the answer now." if made_up is not None else None,
        "tail": tail,
    }


class AgentCase(dict):
    """A scenario (a dict: question, tools, steps, max_steps) that prints as what the agent
    is given: the question, the tools, max_steps and the scripted replies."""

    def __repr__(self) -> str:
        return (
            f"AgentCase(question={self['question']!r}, tools={list(self['tools'])}, "
            f"max_steps={self['max_steps']}, replies={replies(self)!r})"
        )

    def _repr_pretty_(self, printer, cycle) -> None:  # how hypothesis shows a failing example
        printer.text(repr(self))


@st.composite
def agent_case(
    draw_st,
    mix: tuple[str, ...] = ("act",),
    must: tuple[str, ...] = (),
    finish: bool | None = True,
    max_steps: str = "enough",
    max_len: int = 4,
) -> dict:
    """A scenario for ``react_agent``: a question, 1 to 3 tools, the scripted replies as a
    list of steps, and ``max_steps``.

    mix: the kinds of the steps before the last ("act": a tool call that works, "error":
        a key the table lacks, "unknown": no such tool, "invent": a call followed by a
        made-up observation and answer, "bad": a malformed reply); must: kinds that
        appear at least once; finish: whether the script ends on a Final Answer (None:
        drawn; without one the model repeats its last reply until max_steps);
        max_steps: "enough" (the answer comes in time), "exact" (it comes at the last
        allowed step), "short" (fewer steps than the script), "any".
    """
    tool_names = draw_st(st.lists(st.sampled_from(sorted(TOOLS)), min_size=1, max_size=3, unique=True))
    kinds = draw_st(st.lists(st.sampled_from(mix), min_size=0 if must else 1, max_size=max_len))
    for kind in must:
        kinds.insert(draw_st(st.integers(0, len(kinds))), kind)
    finish = draw_st(st.booleans()) if finish is None else finish
    steps = [draw_st(_step(kind, tool_names)) for kind in kinds]
    if finish:
        steps.append(draw_st(_step("final", tool_names)))
    n = len(steps)
    limits = {
        "enough": st.integers(n, n + 2),
        "exact": st.just(n),
        "short": st.integers(0, max(n - 1, 0)),
        "any": st.integers(0, n + 2),
    }
    return AgentCase(
        question=draw_st(st.sampled_from(QUESTIONS)),
        tools={name: {"description": TOOLS[name][0], "table": dict(TOOLS[name][1])} for name in tool_names},
        steps=steps,
        max_steps=draw_st(limits[max_steps]),
    )


def act_step(tool: str, key: str, thought: str | None = None, made_up: str | None = None) -> dict:
    """A step that calls ``tool`` on ``key`` (its kind follows: "act", "error" for a key the
    table lacks, "unknown" for no such tool, "invent" when it goes on to make up
    ``made_up`` as observation and answer). Written by hand for fixed examples."""
    table = TOOLS.get(tool, ("", None))[1]
    kind = "unknown" if table is None else "invent" if made_up else "act" if key in table else "error"
    lines = [f"Thought: {thought}"] if thought is not None else []
    invented = (
        f"\nObservation: {made_up}\nThought: I know the answer now.\nFinal Answer: {made_up}"
        if made_up
        else ""
    )
    return {
        "kind": kind,
        "thought": thought,
        "tool": tool,
        "input": key,
        "kept": "\n".join([*lines, f"Action: {tool}", f"Action Input: {key}"]),
        "invented": invented,
        "invented_answer": made_up,
        "invented_thought": "I know the answer now." if made_up else None,
        "tail": "",
    }


def final_step(answer: str, thought: str | None = None) -> dict:
    """A step that answers (``answer`` may hold ``{observation}``)."""
    kept = "\n".join([*([f"Thought: {thought}"] if thought is not None else []), f"Final Answer: {answer}"])
    return {"kind": "final", "thought": thought, "answer": answer, "kept": kept, "invented": "", "tail": ""}


def bad_step(thought: str, tool: str) -> dict:
    """A malformed step: an action without its input."""
    kept = f"Thought: {thought}\nAction: {tool}"
    return {
        "kind": "bad",
        "thought": thought,
        "kept": kept,
        "invented": "",
        "invented_answer": None,
        "tail": "",
    }


def fixed_case(question: str, tools: list[str], steps: list[dict], max_steps: int) -> AgentCase:
    tables = {name: {"description": TOOLS[name][0], "table": dict(TOOLS[name][1])} for name in tools}
    return AgentCase(question=question, tools=tables, steps=steps, max_steps=max_steps)


# One fixed scenario per public agent test, tried before hypothesis draws its own.
EXAMPLES = {
    "honest": fixed_case(
        "In which country is Kraków, and how big is it?",
        ["country", "population"],
        [
            act_step("country", "Kraków", "I should look this up."),
            act_step("population", "Kraków", "Two tools: first the city, then the rest."),
            final_step("Polska, {observation} people", "I know the answer."),
        ],
        5,
    ),
    "made_up": fixed_case(
        "How many people live in Zürich?",
        ["population"],
        [
            act_step("population", "Zürich", "I should look this up.", made_up="about 3 million"),
            final_step("{observation}"),
        ],
        3,
    ),
    "errors": fixed_case(
        "東京の人口は？",
        ["population"],
        [
            bad_step("先に調べます。", "population"),
            act_step("search", "東京"),
            act_step("population", "Tokyo"),
            act_step("population", "東京"),
            final_step("{observation}"),
        ],
        6,
    ),
    "loop": fixed_case(
        "Wie ist das Wetter in Reykjavík?", ["weather"], [act_step("weather", "Reykjavík")], 3
    ),
    "exact": fixed_case(
        "Wie ist das Wetter in Reykjavík?",
        ["weather"],
        [act_step("weather", "Reykjavík", "Hmm: the table should know."), final_step("It is {observation}.")],
        2,
    ),
}


def replies(case: dict) -> list[str]:
    """The scripted model's replies: each step's text, its made-up part and its tail."""
    return [step["kept"] + step["invented"] + step["tail"] for step in case["steps"]]


def expected_run(case: dict, *, keep_invented: bool = False, max_steps: int | None = None) -> dict:
    """The run ``react_agent`` must give on ``case``, written from its steps:
    ``{"answer", "trace", "prompts", "tool_calls"}``. ``keep_invented`` and ``max_steps``
    give the run of a known mistake instead (the made-up part kept; another step limit)."""
    tools = case["tools"]
    limit = case["max_steps"] if max_steps is None else max_steps
    prompt = header(case["question"], {name: spec["description"] for name, spec in tools.items()})
    run = {"answer": None, "trace": [], "prompts": [], "tool_calls": {name: [] for name in tools}}
    for i in range(limit):
        step = case["steps"][min(i, len(case["steps"]) - 1)]
        run["prompts"].append(prompt)
        seen = last_observation(prompt)
        made_up = step["invented"] + step["tail"] if keep_invented else ""
        text = (step["kept"].replace("{observation}", seen) + made_up).rstrip()
        entry = dict.fromkeys(TRACE_KEYS)
        thought = step["thought"]
        if keep_invented and thought is None:  # the made-up part's Thought is then the first
            thought = step.get("invented_thought")
        entry["text"], entry["thought"] = text, thought
        run["trace"].append(entry)
        answer = None
        if step["kind"] == "final":
            answer = (step["answer"].replace("{observation}", seen) + made_up).strip()
        elif keep_invented and step.get("invented_answer") is not None:
            answer = step["invented_answer"]
        if answer is not None:
            entry["answer"] = run["answer"] = answer
            return run
        if step["kind"] == "bad":
            observation = FORMAT_ERROR
        else:
            entry["action"], entry["action_input"] = step["tool"], step["input"]
            observation = _tool_result(tools, step["tool"], step["input"], run["tool_calls"])
        entry["observation"] = observation
        prompt += text + "\nObservation: " + observation + "\n"
    return run


def _tool_result(tools: dict, name: str, key: str, calls: dict) -> str:
    if name not in tools:
        return UNKNOWN_TOOL.format(name=name, tools=", ".join(tools))
    calls[name].append(key)
    table = tools[name]["table"]
    if key in table:
        return table[key]
    return TOOL_ERROR.format(name=name, error="ValueError", message=f"no entry for {key!r}")


def has_error_observation(case: dict) -> bool:
    """Whether the right run writes back an unknown tool or a tool's error."""
    return any(
        step["observation"] is not None
        and (
            step["observation"].startswith("Unknown tool: ") or step["observation"].startswith("Error from ")
        )
        for step in expected_run(case)["trace"]
    )


def run_agent(impl, case: dict) -> dict:
    """The learner's ``react_agent`` on ``case``, with the stub's ScriptedLLM and LookupTools
    (built by the learner's module: handles when sandboxed): what it returned, the prompts
    the model got and the tools' calls. An exception from the agent is reported as
    ``{"raised": "Type: message"}``."""
    llm = impl.ScriptedLLM(replies(case))
    tools = {
        name: impl.LookupTool(spec["table"], spec["description"]) for name, spec in case["tools"].items()
    }
    result = outcome(impl.react_agent, llm, tools, case["question"], max_steps=case["max_steps"])
    if result[0] == "raised":
        return {"raised": f"{result[1]}: {result[2]}"}
    value = result[1]
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise CheckFailure(
            f"react_agent must return (answer, trace), got {type(value).__name__}: {value!r:.200}"
        )
    answer, trace = value
    return {
        "answer": answer,
        "trace": trace,
        "prompts": list(llm.prompts),
        "tool_calls": {name: list(tool.calls) for name, tool in tools.items()},
    }


def describe(case: dict) -> str:
    """One line naming a scenario, for failure messages."""
    kinds = []
    for step in case["steps"]:
        kinds.append(
            step["kind"] + ("+made-up observation" if step["invented"] and step["kind"] != "invent" else "")
        )
    return (
        f"react_agent(question={case['question']!r}, tools={list(case['tools'])}, "
        f"max_steps={case['max_steps']}), scripted replies: {', '.join(kinds)}"
        + ("" if case["steps"][-1]["kind"] == "final" else " (the last one repeats)")
    )


def check_run(got: dict, case: dict, *, hint: str | None = None) -> None:
    """The learner's run equals the right one: the answer, the trace, the prompts the model
    got and the tools' calls, compared in that order. A known mistake whose run matches
    opens the message."""
    expected = expected_run(case)
    if got == expected:
        return
    name = describe(case)
    if "raised" in got:
        message = (
            f"{name}\n  raised {got['raised']}\n  expected the answer {expected['answer']!r} after "
            f"{len(expected['trace'])} steps"
        )
        if has_error_observation(case):
            raise MISCONCEPTIONS.failure("errors_raised", message, hint=hint)
        raise CheckFailure(message, hint=hint)
    message = f"{name}\n{_first_difference(got, expected)}"
    diagnosis = _suspects(case).first_match(lambda value: value == got)
    raise CheckFailure(f"{diagnosis}\n{message}" if diagnosis else message, hint=hint)


def _suspects(case):
    return MISCONCEPTIONS.on("react_agent", case)


def _clip(value, limit: int = 240) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 20]} ... ({len(text)} characters)"


def _first_difference(got: dict, expected: dict) -> str:
    trace, want = got.get("trace"), expected["trace"]
    if not isinstance(trace, list) or not all(isinstance(step, dict) for step in trace):
        return f"  the trace must be a list of dicts, got {_clip(trace)}"
    for i, (step, right) in enumerate(zip(trace, want)):
        if set(step) != set(TRACE_KEYS):
            return f"  step {i}: the keys must be {list(TRACE_KEYS)}, got {sorted(step)}"
        for key in TRACE_KEYS:
            if step[key] != right[key]:
                return (
                    f"  step {i}, {key!r}:\n    got      {_clip(step[key])}\n    expected {_clip(right[key])}"
                )
    if len(trace) != len(want):
        return (
            f"  the trace has {len(trace)} steps, expected {len(want)} "
            f"(max_steps calls of the model at most; the loop ends at a Final Answer)"
        )
    if got["answer"] != expected["answer"]:
        return f"  answer: got {_clip(got['answer'])}, expected {_clip(expected['answer'])}"
    for i, (prompt, right) in enumerate(zip(got["prompts"], expected["prompts"])):
        if prompt != right:
            at = next(
                (j for j, (a, b) in enumerate(zip(prompt, right)) if a != b), min(len(prompt), len(right))
            )
            return (
                f"  the prompt of call {i} differs from character {at} on:\n"
                f"    got      {_clip(prompt[max(at - 60, 0) : at + 100])}\n"
                f"    expected {_clip(right[max(at - 60, 0) : at + 100])}"
            )
    if len(got["prompts"]) != len(expected["prompts"]):
        return f"  the model was called {len(got['prompts'])} times, expected {len(expected['prompts'])}"
    return f"  the tools were called with {got['tool_calls']}, expected {expected['tool_calls']}"


# --- misconceptions: what each known mistake returns ----------------------------------------


def _plain_environment(name: str) -> str:
    """The pinned case rendered by jinja2's default Environment (loop controls on): no
    sandbox, no trim_blocks, no lstrip_blocks."""
    case = render_case(name)
    environment = jinja2.Environment(extensions=[jinja2.ext.loopcontrols])
    return environment.from_string(case["template"]).render(
        messages=case["messages"], add_generation_prompt=case["add_generation_prompt"], **case["variables"]
    )


def _without_generation_prompt(name: str) -> str:
    case = render_case(name)
    if not case["add_generation_prompt"]:
        raise ValueError("no generation prompt to ignore")
    return render_case(name.removesuffix("/generation_prompt"))["expected"]


def _tojson_ascii(name: str) -> str:
    indent = {"tojson": None, "tojson_indent": 2}[name]
    return json.dumps(TOJSON_DATA, indent=indent)


def _tojson_of_jinja(name: str) -> str:
    indent = {"tojson": None, "tojson_indent": 2}[name]
    return str(jinja2.utils.htmlsafe_json_dumps(TOJSON_DATA, sort_keys=True, indent=indent))


MISCONCEPTIONS = Misconceptions(
    README,
    Misconception(
        "tojson_ascii",
        "tojson escapes non-ASCII",
        "json.dumps escapes every non-ASCII character by default (Zürich -> Z\\u00fcrich): transformers' "
        "tojson passes ensure_ascii=False",
        readme="3.1 — tojson as transformers writes it",
        variants={"render_chat": _tojson_ascii},
    ),
    Misconception(
        "jinja_tojson",
        "jinja2's own tojson filter",
        "jinja2's tojson sorts the keys and escapes <, >, &, ' for HTML: override it with json.dumps(x, "
        "ensure_ascii=False, indent=..., separators=..., sort_keys=False)",
        readme="3.1 — tojson as transformers writes it",
        variants={"render_chat": _tojson_of_jinja},
    ),
    Misconception(
        "plain_environment",
        "jinja2's default Environment",
        "transformers renders in an ImmutableSandboxedEnvironment with trim_blocks=True and "
        "lstrip_blocks=True: without them every indented block tag leaves its spaces and newline in the text",
        readme="3.1 — A sandbox that trims its blocks",
        variants={"render_chat": _plain_environment},
    ),
    Misconception(
        "generation_prompt_ignored",
        "add_generation_prompt not passed to the template",
        "the template reads add_generation_prompt and appends the assistant header (ChatML: "
        "'<|im_start|>assistant\\n'); without it the model continues the user's turn",
        readme="3.1 — The generation prompt",
        variants={
            "render_chat": _without_generation_prompt,
            # given the learner's own rendering without the prompt: the same text again
            "render_chat_with_prompt": lambda without: without,
        },
    ),
    Misconception(
        "no_loopcontrols",
        "no loop controls",
        "{% break %} and {% continue %} need the jinja2.ext.loopcontrols extension, which transformers "
        "turns on",
        readme="3.1 — Loop controls and raise_exception",
    ),
    Misconception(
        "no_raise_exception",
        "raise_exception is undefined",
        "templates call raise_exception(message) to refuse a conversation: a global that raises "
        "jinja2.TemplateError(message)",
        readme="3.1 — Loop controls and raise_exception",
    ),
    Misconception(
        "invented_observation_kept",
        "the reply not cut at the stop string",
        "a model goes on to write an Observation (and a Final Answer) it made up: keep only the text before "
        "the first '\\nObservation:', parse that, and write the real observation after it",
        readme="3.1 — Cutting at the stop string",
        variants={"react_agent": lambda case: expected_run(case, keep_invented=True)},
    ),
    Misconception(
        "max_steps_off_by_one",
        "one call too many",
        "max_steps is the most calls of the model: range(max_steps), not a loop that runs while step <= "
        "max_steps",
        readme="3.1 — Counting steps",
        variants={"react_agent": lambda case: expected_run(case, max_steps=case["max_steps"] + 1)},
    ),
    Misconception(
        "errors_raised",
        "tool errors raised instead of observed",
        "an unknown tool or a tool that raises is something the model must hear about: write UNKNOWN_TOOL or "
        "TOOL_ERROR back as the observation and go on",
        readme="3.1 — Errors are observations",
    ),
)


# --- the figure -------------------------------------------------------------------------

FIGURE_CONVERSATION = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "How many people live in Zürich?"},
    {"role": "assistant", "content": "About 434 000."},
    {"role": "user", "content": "And in Kraków?"},
]

FIGURE_CASE = {
    "question": "How many people live in Kraków?",
    "tools": {"population": {"description": TOOLS["population"][0], "table": dict(TOOLS["population"][1])}},
    "steps": [
        {
            "kind": "error",
            "thought": "I should look this up.",
            "tool": "population",
            "input": "Krakow",
            "kept": "Thought: I should look this up.\nAction: population\nAction Input: Krakow",
            "invented": "",
            "tail": "",
        },
        {
            "kind": "invent",
            "thought": "The table spells it Kraków.",
            "tool": "population",
            "input": "Kraków",
            "kept": "Thought: The table spells it Kraków.\nAction: population\nAction Input: Kraków",
            "invented": "\nObservation: 3 million\nThought: I know the answer now.\nFinal Answer: 3 million",
            "invented_answer": "3 million",
            "tail": "",
        },
        {
            "kind": "final",
            "thought": "I know the answer.",
            "answer": "{observation} people.",
            "kept": "Thought: I know the answer.\nFinal Answer: {observation} people.",
            "invented": "",
            "tail": "",
        },
    ],
    "max_steps": 4,
}


class _Column:
    """Text written down an axes from its top, line after line (positions in points)."""

    def __init__(self, ax, fontsize: float = 7.5):
        from matplotlib.transforms import offset_copy

        self.ax, self.fontsize, self.down, self._offset = ax, fontsize, 4.0, offset_copy
        ax.set_axis_off()

    def write(self, x: float, text: str, *, advance: bool = True, **style) -> None:
        size = style.pop("fontsize", self.fontsize)
        where = self._offset(self.ax.transAxes, fig=self.ax.figure, x=0.0, y=-self.down, units="points")
        self.ax.text(x, 1.0, text, transform=where, va="top", fontsize=size, **style)
        if advance:
            self.down += 1.25 * size * (text.count("\n") + 1)

    def skip(self, points: float) -> None:
        self.down += points


def figure(impl) -> Figure:
    """The learner's render_chat on one conversation with the three templates, and the
    learner's agent on a scripted run: every reply, what was kept of it, and what came
    back."""
    rendered = [
        (name, impl.render_chat(TEMPLATES[name], FIGURE_CONVERSATION, True, **TEMPLATE_VARIABLES[name]))
        for name in TEMPLATES
    ]
    run = run_agent(impl, FIGURE_CASE)
    fig, (left_ax, right_ax) = new_figure(13.0, 4.6, ncols=2)
    left_ax.set_title(
        "render_chat: one conversation, three templates (add_generation_prompt=True)", fontsize=10
    )
    right_ax.set_title("react_agent: the scripted model's replies and what your loop did", fontsize=10)
    left, right = _Column(left_ax), _Column(right_ax)
    for name, text in rendered:
        left.write(0.0, name, fontsize=9, fontweight="bold")
        left.write(0.03, str(text).replace("\n", "⏎\n").removesuffix("\n"), family="monospace")
        left.skip(8)
    if "raised" in run:
        right.write(0.0, f"react_agent raised {run['raised']}", color="crimson", fontsize=9)
        return png(fig), "Chat templates rendered by your render_chat; your react_agent raised"
    script = replies(FIGURE_CASE)
    for i, step in enumerate(run["trace"]):
        reply = script[min(i, len(script) - 1)]
        kept = str(step.get("text", ""))
        right.write(0.0, f"call {i + 1}", fontsize=9, fontweight="bold", advance=False)
        right.write(0.12, kept, family="monospace")
        dropped = reply[len(kept) :] if reply.startswith(kept) else ""
        if dropped.strip():
            right.write(
                0.12, "cut: " + dropped.strip().replace("\n", " | "), family="monospace", color="gray"
            )
        if step.get("observation") is not None:
            right.write(0.12, f"Observation: {step['observation']}", family="monospace", color="tab:green")
        right.skip(8)
    answer = run["answer"]
    right_answer = expected_run(FIGURE_CASE)["answer"]
    right.write(
        0.0,
        f"answer: {answer!r}" + ("" if answer == right_answer else f"   (the rules give {right_answer!r})"),
        fontsize=9,
        fontweight="bold",
        color="tab:blue" if answer == right_answer else "crimson",
    )
    return png(fig), (
        "Left: one conversation rendered by your render_chat with the ChatML, Llama-2 and Zephyr templates "
        "(⏎ marks a newline). Right: your react_agent on a scripted model that misspells a key, then makes "
        "up an observation (grey: cut at the stop string); green: what your loop wrote back"
    )
