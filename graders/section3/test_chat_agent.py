"""Hidden graders for exercise 3.1 (chat templates and a ReAct agent loop): 20 points.

render_chat is held to transformers' own renderer (``render_jinja_template``, in
graders/section3/chat_agent_oracle.py), on hypothesis-drawn conversations: the kit's
ChatML, Llama-2 and Zephyr templates, a tool-calling template (tool schemas and
arguments as JSON, unicode, loop controls, a namespace, raise_exception) and a
documents template, and on templates a sandbox must refuse.

react_agent is driven through the stub's ScriptedLLM and LookupTool (built by the
learner's module: handles when sandboxed), on scenarios drawn from lists of steps:
honest models, models that make up observations and answers, loop forever, emit
malformed actions, misspell keys or call tools that do not exist. The expected run
(answer, trace, every prompt, every tool call) is written from the steps
(support.expected_run), never from a parser.
"""

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmkit.testing import CheckFailure, assert_no_banned_mentions, check_equal, load_oracle, load_support

pytestmark = pytest.mark.exercise("3.1")
support = load_support("3.1")
oracle = load_oracle("3.1")


def check_render(impl, template, messages, add_generation_prompt=False, *, name, hint=None, **variables):
    """The learner's outcome (text, or the error raised) equals transformers'."""
    got = support.outcome(
        impl.render_chat, template, messages, add_generation_prompt=add_generation_prompt, **variables
    )
    check_equal(
        got,
        oracle.outcome(template, messages, add_generation_prompt, **dict(variables)),
        name=f"{name}: the outcome, ('returned', text) or ('raised', error, message)",
        hint=hint,
        suspects=oracle.render_suspects(template, messages, add_generation_prompt, **variables),
    )


# --- render_chat (10 points) -------------------------------------------------------------


@pytest.mark.points(1)
def test_render_written_with_jinja2(impl, impl_files):
    assert_no_banned_mentions(impl_files, oracle.RENDERER_NAMES, "3.1")
    case = support.render_case("chatml/two_turns/generation_prompt")
    check_render(
        impl,
        case["template"],
        case["messages"],
        True,
        name="render_chat(TEMPLATES['chatml'], a conversation)",
    )


@pytest.mark.points(3)
@settings(max_examples=30)
@given(
    messages=support.conversations(),
    template=st.sampled_from(sorted(support.TEMPLATES)),
    add_generation_prompt=st.booleans(),
)
@example(messages=support.CONVERSATIONS["two_turns"], template="llama2", add_generation_prompt=True)
def test_kit_templates_match_transformers(impl, messages, template, add_generation_prompt):
    check_render(
        impl,
        support.TEMPLATES[template],
        messages,
        add_generation_prompt,
        name=f"render_chat(TEMPLATES[{template!r}], {len(messages)} messages, "
        f"add_generation_prompt={add_generation_prompt})",
        hint="ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])",
        **support.TEMPLATE_VARIABLES[template],
    )


@pytest.mark.points(3)
@settings(max_examples=30)
@given(
    messages=oracle.tool_conversations(),
    tools=st.none() | oracle.tool_schemas(),
    add_generation_prompt=st.booleans(),
    limit=st.none() | st.integers(1, 4),
)
@example(messages=oracle.TOOL_CONVERSATION, tools=oracle.TOOL_SCHEMAS, add_generation_prompt=True, limit=None)
def test_tool_calling_template_matches_transformers(impl, messages, tools, add_generation_prompt, limit):
    variables = {"tools": tools} if tools is not None else {}
    if limit is not None:
        variables["limit"] = limit
    check_render(
        impl,
        oracle.TOOL_TEMPLATE,
        messages,
        add_generation_prompt,
        name=f"a tool-calling template on {len(messages)} messages, "
        f"tools={'none' if tools is None else len(tools)}, limit={limit}",
        hint="tojson is json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=False); "
        "{% break %} / {% continue %} need jinja2.ext.loopcontrols",
        **variables,
    )


@pytest.mark.points(1)
@settings(max_examples=15)
@given(
    messages=support.conversations(),
    documents=st.none()
    | st.lists(st.fixed_dictionaries({"title": support.texts(1, 2), "text": support.texts()}), max_size=3),
    date=st.none() | st.sampled_from(["26 July 2024", "1er janvier 2025"]),
    add_generation_prompt=st.booleans(),
)
def test_documents_and_other_variables(impl, messages, documents, date, add_generation_prompt):
    variables = {"documents": documents} if documents is not None else {}
    if date is not None:
        variables["date_string"] = date
    check_render(
        impl,
        oracle.DOCUMENTS_TEMPLATE,
        messages,
        add_generation_prompt,
        name=f"a documents template, documents={'none' if documents is None else len(documents)}, "
        f"date_string={date!r}",
        hint="tools and documents are None unless given; every other keyword is a template variable",
        **variables,
    )


@pytest.mark.points(1)
@settings(max_examples=10)
@given(messages=support.conversations(system=False), data=st.data())
def test_loop_controls_and_raise_exception(impl, messages, data):
    case = support.render_case("loop_controls")
    check_render(
        impl, case["template"], case["messages"], name="a template with {% continue %} and {% break %}"
    )
    # Llama-2 refuses two turns of the same role in a row; the tool template an unknown role.
    broken = list(messages)
    at = data.draw(st.integers(0, len(broken) - 1), label="repeated turn")
    broken.insert(at, dict(broken[at]))
    check_render(
        impl,
        support.TEMPLATES["llama2"],
        broken,
        name="the Llama-2 template on turns that do not alternate",
        hint="raise_exception(message) raises jinja2.TemplateError(message)",
        **support.TEMPLATE_VARIABLES["llama2"],
    )
    robot = [
        *messages,
        {"role": data.draw(st.sampled_from(["robot", "développeur", "ツール"])), "content": "?"},
    ]
    check_render(impl, oracle.TOOL_TEMPLATE, robot, name="the tool-calling template on an unknown role")


@pytest.mark.points(1)
def test_untrusted_templates_are_refused(impl):
    for template in oracle.UNSAFE_TEMPLATES:
        messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
        got = support.outcome(impl.render_chat, template, messages)
        want = oracle.outcome(template, messages)
        check_equal(
            got[:2],
            want[:2],
            name=f"render_chat({template!r}, ...): the outcome",
            hint="jinja2.sandbox.ImmutableSandboxedEnvironment: no dunder attributes, no list.append, "
            "dict.update, list.pop",
            suspects=oracle.render_suspects(template, messages),
        )


# --- react_agent (10 points) ---------------------------------------------------------------


@pytest.mark.points(2)
@settings(max_examples=25)
@given(case=support.agent_case(mix=("act",), finish=True, max_steps="enough"))
@example(case=support.EXAMPLES["honest"])
def test_agent_honest_runs(impl, case):
    support.check_run(
        support.run_agent(impl, case),
        case,
        hint="prompt = react_header(question, tools), then prompt += text + '\\nObservation: ' + "
        "observation + '\\n' after each step",
    )


@pytest.mark.points(2)
@settings(max_examples=25)
@given(case=support.agent_case(mix=("act", "invent", "bad"), must=("invent",), finish=True))
@example(case=support.EXAMPLES["made_up"])
def test_agent_discards_made_up_observations(impl, case):
    support.check_run(
        support.run_agent(impl, case), case, hint="keep only what comes before the first '\\nObservation:'"
    )


@pytest.mark.points(2)
@settings(max_examples=25)
@given(case=support.agent_case(mix=("act", "error", "unknown", "bad"), must=("error", "unknown", "bad")))
@example(case=support.EXAMPLES["errors"])
def test_agent_reports_errors_to_the_model(impl, case):
    support.check_run(
        support.run_agent(impl, case),
        case,
        hint="UNKNOWN_TOOL for a name not in tools, TOOL_ERROR for an exception, FORMAT_ERROR for a reply "
        "without Action and Action Input; nothing is raised",
    )


@pytest.mark.points(1)
@settings(max_examples=30)
@given(
    case=st.sampled_from(["loop", "short", "exact"]).flatmap(
        lambda kind: support.agent_case(
            mix=("act", "error", "unknown", "bad"),
            finish=kind == "exact",
            max_steps={"loop": "any", "short": "short", "exact": "exact"}[kind],
        )
    )
)
@example(case=support.EXAMPLES["loop"])
def test_agent_stops_after_max_steps(impl, case):
    support.check_run(support.run_agent(impl, case), case, hint="at most max_steps calls of the model")


@pytest.mark.points(2)
@settings(max_examples=40)
@given(
    case=support.agent_case(
        mix=("act", "error", "unknown", "invent", "bad"), finish=None, max_steps="any", max_len=6
    )
)
@example(case=support.EXAMPLES["errors"])
def test_agent_adversarial_mixtures(impl, case):
    support.check_run(support.run_agent(impl, case), case)


@pytest.mark.points(1)
def test_agent_max_steps_zero_and_negative(impl):
    llm = impl.ScriptedLLM(["Final Answer: too late"])
    check_equal(
        support.outcome(impl.react_agent, llm, {}, "Why?", max_steps=0),
        ("returned", (None, [])),
        name="react_agent(..., max_steps=0)",
    )
    check_equal(list(llm.prompts), [], name="the prompts the model got with max_steps=0")
    result = support.outcome(impl.react_agent, llm, {}, "Why?", max_steps=-1)
    if result[:2] != ("raised", "ValueError"):
        raise CheckFailure(f"react_agent(..., max_steps=-1) must raise ValueError, got {result!r:.200}")
