"""Mutant: jinja2's built-in tojson filter is left in place.

Misconception: Jinja already has tojson. Its filter is made for HTML: it sorts the keys
and writes <, >, & and ' as \\u003c, \\u003e, \\u0026, \\u0027 (and escapes non-ASCII).
"""


def render_chat(template, messages, add_generation_prompt=False, **variables):
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    environment.globals["raise_exception"] = _raise_exception
    context = {"tools": None, "documents": None, **variables}
    return environment.from_string(template).render(
        messages=messages, add_generation_prompt=add_generation_prompt, **context
    )
