"""Mutant: templates rendered by jinja2's default Environment (loop controls on).

Misconception: Jinja is Jinja. transformers renders in an ImmutableSandboxedEnvironment
with trim_blocks and lstrip_blocks: without them every indented block tag leaves its
spaces and newline in the text, and an untrusted template may reach Python internals.
"""


def render_chat(template, messages, add_generation_prompt=False, **variables):
    environment = jinja2.Environment(extensions=[jinja2.ext.loopcontrols])
    environment.filters["tojson"] = _tojson
    environment.globals["raise_exception"] = _raise_exception
    context = {"tools": None, "documents": None, **variables}
    return environment.from_string(template).render(
        messages=messages, add_generation_prompt=add_generation_prompt, **context
    )
