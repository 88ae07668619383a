"""Public tests for exercise 3.1 (chat templates and a ReAct agent loop). Run: pytest exercises/section3

render_chat: the kit's ChatML, Llama-2 and Zephyr templates on small conversations,
against the strings transformers' renderer writes for them (pinned in the support
module), and the environment's rules one at a time: trimmed blocks, the generation
prompt, loop controls, raise_exception, tojson, the sandbox.

react_agent: scripted models (honest ones, and ones that make up observations, loop,
misspell or call tools that do not exist) and table tools, drawn by hypothesis; the
answer, the trace, every prompt the model got and every tool call must be the ones
the docstring's rules give. When a check fails it says which known mistake your
output looks like. The hidden graders draw many more cases and render with
transformers itself.
"""

import pytest
from hypothesis import example, given, settings

from llmkit.testing import CheckFailure, check_equal, load_support

pytestmark = pytest.mark.exercise("3.1")
support = load_support("3.1")
mistakes = support.MISCONCEPTIONS


def render(impl, case):
    return impl.render_chat(
        case["template"],
        case["messages"],
        add_generation_prompt=case["add_generation_prompt"],
        **case["variables"],
    )


# --- render_chat ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", support.PINNED_CASES)
def test_kit_templates_render_as_transformers_does(impl, name):
    case = support.render_case(name)
    check_equal(
        render(impl, case),
        case["expected"],
        name=f"render_chat(TEMPLATES[{name.split('/')[0]!r}], CONVERSATIONS[{name.split('/')[1]!r}], "
        f"add_generation_prompt={case['add_generation_prompt']})",
        hint="ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, ...); pass "
        "add_generation_prompt and the variables (bos_token, eos_token) to render()",
        suspects=mistakes.on("render_chat", name),
    )


def test_indented_block_tags_leave_no_whitespace(impl):
    case = support.render_case("indented")
    check_equal(
        render(impl, case),
        case["expected"],
        name="an indented template (block tags on lines of their own)",
        hint="trim_blocks drops the newline after a block tag, lstrip_blocks the spaces before one",
        suspects=mistakes.on("render_chat", "indented"),
    )


@settings(max_examples=8)
@given(messages=support.conversations(), template=support.st.sampled_from(["chatml", "zephyr"]))
@example(messages=support.CONVERSATIONS["two_turns"], template="chatml")
def test_generation_prompt_is_appended(impl, messages, template):
    variables = support.TEMPLATE_VARIABLES[template]
    without = impl.render_chat(
        support.TEMPLATES[template], messages, add_generation_prompt=False, **variables
    )
    check_equal(
        impl.render_chat(support.TEMPLATES[template], messages, add_generation_prompt=True, **variables),
        without + support.GENERATION_PROMPTS[template],
        name=f"render_chat(TEMPLATES[{template!r}], {len(messages)} messages, add_generation_prompt=True)",
        hint="the text without the generation prompt, then the assistant header",
        suspects=mistakes.on("render_chat_with_prompt", without),
    )


def test_loop_controls(impl):
    case = support.render_case("loop_controls")
    result = support.outcome(render, impl, case)
    if result[0] == "raised" and result[1] == "TemplateSyntaxError" and "tag" in result[2]:
        raise mistakes.failure(
            "no_loopcontrols",
            f"a template with {{% continue %}} and {{% break %}} raised {result[1]}: {result[2]}",
        )
    check_equal(result, ("returned", case["expected"]), name="a template with {% continue %} and {% break %}")


def test_raise_exception_raises_a_template_error(impl):
    turns = [{"role": "user", "content": "Hallo"}, {"role": "user", "content": "Hallo?"}]
    result = support.outcome(
        impl.render_chat, support.TEMPLATES["llama2"], turns, **support.TEMPLATE_VARIABLES["llama2"]
    )
    expected = ("raised", "TemplateError", support.LLAMA2_ROLES_ERROR)
    if result != expected and result[0] == "raised" and "raise_exception" in result[2]:
        raise mistakes.failure(
            "no_raise_exception", f"the Llama-2 template on two user turns raised {result[1]}: {result[2]}"
        )
    check_equal(
        result,
        expected,
        name="the Llama-2 template on two user turns in a row (it calls raise_exception)",
        hint="raise_exception(message) raises jinja2.TemplateError(message), that exact class",
    )
    custom = "{{ raise_exception('Rôle inconnu : ' + messages[0]['role']) }}"
    check_equal(
        support.outcome(impl.render_chat, custom, [{"role": "robot", "content": "beep"}]),
        ("raised", "TemplateError", "Rôle inconnu : robot"),
        name=f"render_chat({custom!r}, ...)",
    )


@pytest.mark.parametrize("name", ["tojson", "tojson_indent"])
def test_tojson_keeps_unicode_and_key_order(impl, name):
    case = support.render_case(name)
    check_equal(
        render(impl, case),
        case["expected"],
        name=f"render_chat({case['template']!r}, data=TOJSON_DATA)",
        hint="tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) "
        "returns json.dumps(x, ...) with those keywords",
        suspects=mistakes.on("render_chat", name),
    )


def test_templates_are_sandboxed_and_read_only(impl):
    messages = [{"role": "user", "content": "hi"}]
    for template in [
        "{{ messages.__class__.__mro__ }}",
        "{% set ignored = messages.append({'role': 'user', 'content': 'injected'}) %}{{ messages | length }}",
    ]:
        result = support.outcome(impl.render_chat, template, messages)
        check_equal(
            result[:2],
            ("raised", "SecurityError"),
            name=f"render_chat({template!r}, ...): the outcome",
            hint="an ImmutableSandboxedEnvironment refuses dunder attributes and methods that change "
            "lists and dicts",
        )
    check_equal(messages, [{"role": "user", "content": "hi"}], name="messages after rendering")


def test_tools_and_documents_default_to_none(impl):
    template = "{{ tools is none }} {{ documents is none }} {{ tools | length if tools else 0 }}"
    check_equal(impl.render_chat(template, []), "True True 0", name=f"render_chat({template!r}, [])")
    check_equal(
        impl.render_chat(template, [], tools=[{"name": "f"}]),
        "False True 1",
        name="... with tools=[{'name': 'f'}]",
    )


# --- react_agent ---------------------------------------------------------------------------


@settings(max_examples=8)
@given(case=support.agent_case(mix=("act",), finish=True))
@example(case=support.EXAMPLES["honest"])
def test_agent_calls_tools_and_answers(impl, case):
    support.check_run(
        support.run_agent(impl, case),
        case,
        hint="prompt = react_header(question, tools); after each step prompt += text + "
        "'\\nObservation: ' + observation + '\\n'",
    )


@settings(max_examples=8)
@given(case=support.agent_case(mix=("act", "invent"), must=("invent",), finish=True))
@example(case=support.EXAMPLES["made_up"])
def test_agent_discards_made_up_observations(impl, case):
    support.check_run(
        support.run_agent(impl, case), case, hint="cut each reply before the first STOP ('\\nObservation:')"
    )


@settings(max_examples=8)
@given(case=support.agent_case(mix=("act", "error", "unknown", "bad"), must=("error", "unknown", "bad")))
@example(case=support.EXAMPLES["errors"])
def test_agent_reports_errors_to_the_model(impl, case):
    support.check_run(
        support.run_agent(impl, case),
        case,
        hint="an unknown tool, a tool's exception and a malformed reply each become the observation",
    )


@settings(max_examples=8)
@given(case=support.agent_case(mix=("act", "error", "bad"), finish=False, max_steps="any"))
@example(case=support.EXAMPLES["loop"])
def test_agent_stops_after_max_steps(impl, case):
    # No Final Answer in the script: the model repeats its last reply until max_steps.
    support.check_run(support.run_agent(impl, case), case, hint="at most max_steps calls of the model")


@settings(max_examples=5)
@given(case=support.agent_case(mix=("act",), finish=True, max_steps="exact"))
@example(case=support.EXAMPLES["exact"])
def test_agent_answer_at_the_last_allowed_step(impl, case):
    support.check_run(support.run_agent(impl, case), case, hint="the last allowed step may answer")


def test_agent_with_no_steps_and_negative_steps(impl):
    llm = impl.ScriptedLLM(["Final Answer: too late"])
    check_equal(
        impl.react_agent(llm, {}, "Why?", max_steps=0), (None, []), name="react_agent(..., max_steps=0)"
    )
    check_equal(len(llm.prompts), 0, name="calls of the model with max_steps=0")
    result = support.outcome(impl.react_agent, llm, {}, "Why?", max_steps=-1)
    if result[0] != "raised" or result[1] != "ValueError":
        raise CheckFailure(f"react_agent(..., max_steps=-1) must raise ValueError, got {result!r:.200}")
