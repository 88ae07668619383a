"""Grader-only oracle for exercise 3.1: transformers' own chat-template renderer, the known
mistakes rendered the same way (for the graders' diagnoses), and the graders' templates
and tool-calling conversations.

transformers is imported here, once per grading process (about 2 s): never in the public
tests or the support module.
"""

from __future__ import annotations

import dataclasses
import json

import jinja2
import jinja2.ext
from hypothesis import strategies as st
from jinja2.sandbox import ImmutableSandboxedEnvironment
from transformers.utils.chat_template_utils import render_jinja_template

from llmkit.testing import Misconceptions, load_support

support = load_support("3.1")

# Names of transformers' renderer: the learner's file may not mention them (a static scan;
# a runtime guard would import transformers into every sandboxed call).
RENDERER_NAMES = [
    "transformers.PreTrainedTokenizerBase.apply_chat_template",
    "transformers.utils.chat_template_utils.render_jinja_template",
    "transformers.utils.chat_template_utils._compile_jinja_template",
    "transformers.utils.chat_template_utils._cached_compile_jinja_template",
    "transformers.utils.chat_template_utils",
]


def outcome(template: str, messages, add_generation_prompt: bool = False, **variables) -> tuple:
    """What transformers does with this template and conversation: ``("returned", text)``
    or ``("raised", exception type name, message)``."""
    tools = variables.pop("tools", None)
    documents = variables.pop("documents", None)
    return support.outcome(
        lambda: render_jinja_template(
            [messages],
            tools=tools,
            documents=documents,
            chat_template=template,
            add_generation_prompt=add_generation_prompt,
            **variables,
        )[0][0]
    )


# --- the known mistakes, rendered --------------------------------------------------------


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _ascii_tojson(value, ensure_ascii=True, indent=None, separators=None, sort_keys=False):
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _raise_exception(message):
    raise jinja2.TemplateError(message)


def _environment(
    sandboxed=True, trimmed=True, loop_controls=True, tojson=_tojson, raise_exception=True
) -> jinja2.Environment:
    kind = ImmutableSandboxedEnvironment if sandboxed else jinja2.Environment
    environment = kind(
        trim_blocks=trimmed,
        lstrip_blocks=trimmed,
        extensions=[jinja2.ext.loopcontrols] if loop_controls else [],
    )
    if tojson is not None:
        environment.filters["tojson"] = tojson
    if raise_exception:
        environment.globals["raise_exception"] = _raise_exception
    return environment


MISTAKEN_ENVIRONMENTS = {
    "plain_environment": dict(sandboxed=False, trimmed=False),
    "tojson_ascii": dict(tojson=_ascii_tojson),
    "jinja_tojson": dict(tojson=None),
    "no_loopcontrols": dict(loop_controls=False),
    "no_raise_exception": dict(raise_exception=False),
}


def _mistaken(slug):
    def variant(template, messages, add_generation_prompt=False, **variables):
        if slug == "generation_prompt_ignored":
            if not add_generation_prompt:
                raise ValueError("nothing to ignore")
            return outcome(template, messages, False, **variables)
        context = {"tools": None, "documents": None, **variables}
        environment = _environment(**MISTAKEN_ENVIRONMENTS[slug])
        return support.outcome(
            lambda: environment.from_string(template).render(
                messages=messages, add_generation_prompt=add_generation_prompt, **context
            )
        )

    return variant


# The support module's misconceptions, with variants that render any template (its own
# variants know the pinned cases only): the same slugs, lines and README headings.
_RENDER_SLUGS = ["generation_prompt_ignored", *MISTAKEN_ENVIRONMENTS]
RENDER_MISTAKES = Misconceptions(
    support.MISCONCEPTIONS.readme,
    *[
        dataclasses.replace(m, variants={"render_chat": _mistaken(m.slug)} if m.slug in _RENDER_SLUGS else {})
        for m in support.MISCONCEPTIONS
    ],
)


def render_suspects(template, messages, add_generation_prompt=False, **variables):
    """Suspects for ``check_equal`` on a render_chat outcome."""
    return RENDER_MISTAKES.on("render_chat", template, messages, add_generation_prompt, **variables)


# --- the graders' templates ----------------------------------------------------------------

# ChatML with Hermes-style tool calls: a namespace, tools as JSON, tool calls written with
# tojson (a dict literal, so key order matters), tool results that may be JSON, loop
# controls and raise_exception.
TOOL_TEMPLATE = """\
{% set ns = namespace(system='You are a helpful assistant.') %}
{% if messages and messages[0]['role'] == 'system' %}
    {% set ns.system = messages[0]['content'] %}
{% endif %}
<|im_start|>system
{{ ns.system }}
{% if tools is not none %}

# Tools
You may call one or more functions. Their signatures:
<tools>
    {% for tool in tools %}
{{ tool | tojson }}
    {% endfor %}
</tools>
{% endif %}
<|im_end|>
{% for message in messages %}
    {% if message['role'] == 'system' %}
        {% continue %}
    {% endif %}
    {% if limit is defined and loop.index > limit %}
        {% break %}
    {% endif %}
    {% if message['role'] == 'assistant' and message['tool_calls'] is defined %}
<|im_start|>assistant
        {% if message['content'] %}
{{ message['content'] }}
        {% endif %}
        {% for call in message['tool_calls'] %}
<tool_call>
{{ {'name': call['function']['name'], 'arguments': call['function']['arguments']} | tojson }}
</tool_call>
        {% endfor %}
<|im_end|>
    {% elif message['role'] == 'tool' %}
<|im_start|>user
<tool_response>
        {% if message['content'] is string %}
{{ message['content'] }}
        {% else %}
{{ message['content'] | tojson(indent=2) }}
        {% endif %}
</tool_response><|im_end|>
    {% elif message['role'] in ['user', 'assistant'] %}
<|im_start|>{{ message['role'] }}
{{ message['content'] }}<|im_end|>
    {% else %}
        {{ raise_exception('Unbekannte Rolle: ' + message['role']) }}
    {% endif %}
{% endfor %}
{% if add_generation_prompt %}
<|im_start|>assistant
{% endif %}
"""

DOCUMENTS_TEMPLATE = """\
{% if documents is not none %}
    {% for doc in documents %}
[{{ loop.index }}] {{ doc['title'] }}: {{ doc['text'] | trim }}
    {% endfor %}

{% endif %}
{% for message in messages %}
{{ message['role'] | upper }}: {{ message['content'] }}
{% endfor %}
{% if add_generation_prompt %}
ASSISTANT ({{ date_string | default('today') }}):
{% endif %}
"""

UNSAFE_TEMPLATES = [
    "{{ messages.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ raise_exception.__globals__ }}",
    "{% set ignored = messages.append({'role': 'user', 'content': 'injected'}) %}{{ messages | length }}",
    "{{ messages[0].update({'role': 'system'}) }}{{ messages[0]['role'] }}",
    "{{ messages.pop() }}",
]

# --- tool-calling conversations ------------------------------------------------------------

_keys = st.sampled_from(["city", "unit", "Ort", "días", "query", "limit", "東京", "zeta", "alpha"])
_scalars = (
    st.sampled_from(support.WORDS)
    | st.integers(-1000, 10**6)
    | st.sampled_from([0.5, -2.25, 1e-3, 3.0])
    | st.booleans()
    | st.none()
)
arguments = st.dictionaries(_keys, _scalars | st.lists(_scalars, max_size=3), max_size=4)

_functions = st.sampled_from(["get_weather", "search", "convert_units", "lookup_city"])


@st.composite
def tool_schemas(draw_st):
    names = draw_st(st.lists(_functions, min_size=1, max_size=3, unique=True))
    return [
        {
            "type": "function",
            "function": {
                "name": name,
                "description": draw_st(support.texts()).strip() or "does something",
                "parameters": {
                    "type": "object",
                    "properties": {
                        key: {"type": "string"} for key in draw_st(st.lists(_keys, max_size=3, unique=True))
                    },
                },
            },
        }
        for name in names
    ]


@st.composite
def tool_conversations(draw_st):
    """A conversation with tool calls: user, assistant calls (arguments with unicode,
    numbers, null, lists; keys in no particular order), tool results (text or JSON), and
    an answer, now and then with a system message first."""
    messages = []
    if draw_st(st.booleans()):
        messages.append({"role": "system", "content": draw_st(support.texts())})
    for _ in range(draw_st(st.integers(1, 2))):
        messages.append({"role": "user", "content": draw_st(support.texts())})
        calls = [
            {"type": "function", "function": {"name": draw_st(_functions), "arguments": draw_st(arguments)}}
            for _ in range(draw_st(st.integers(1, 2)))
        ]
        call = {"role": "assistant", "tool_calls": calls}
        if draw_st(st.booleans()):
            call["content"] = draw_st(support.texts())
        messages.append(call)
        for _ in calls:
            content = draw_st(support.texts() | arguments)
            messages.append({"role": "tool", "content": content})
        messages.append({"role": "assistant", "content": draw_st(support.texts())})
    return messages


# A fixed tool-calling conversation, tried first (then hypothesis draws its own).
TOOL_SCHEMAS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Das Wetter in einer Stadt",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            },
        },
    }
]
TOOL_CONVERSATION = [
    {"role": "system", "content": "Tu es un assistant météo."},
    {"role": "user", "content": "Quel temps fait-il à Zürich ?"},
    {
        "role": "assistant",
        "tool_calls": [
            {
                "type": "function",
                "function": {"name": "get_weather", "arguments": {"unit": "°C", "city": "Zürich"}},
            }
        ],
    },
    {"role": "tool", "content": {"temperature": 21.5, "sky": "ensoleillé <3", "wind": None}},
    {"role": "assistant", "content": "21,5 °C et du soleil."},
]
