"""Mutant: no raise_exception global.

Misconception: templates only print. Templates call raise_exception(message) to refuse a
conversation they cannot format; undefined, the call fails with an UndefinedError that
says nothing about the conversation.
"""


def render_chat(template, messages, add_generation_prompt=False, **variables):
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    environment.filters["tojson"] = _tojson
    context = {"tools": None, "documents": None, **variables}
    return environment.from_string(template).render(
        messages=messages, add_generation_prompt=add_generation_prompt, **context
    )
