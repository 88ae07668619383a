"""Mutant: the environment has no loop controls extension.

Misconception: {% break %} and {% continue %} are part of Jinja. They come with the
jinja2.ext.loopcontrols extension, which transformers turns on; without it a template
that uses them does not even compile.
"""


def render_chat(template, messages, add_generation_prompt=False, **variables):
    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    environment.filters["tojson"] = _tojson
    environment.globals["raise_exception"] = _raise_exception
    context = {"tools": None, "documents": None, **variables}
    return environment.from_string(template).render(
        messages=messages, add_generation_prompt=add_generation_prompt, **context
    )
