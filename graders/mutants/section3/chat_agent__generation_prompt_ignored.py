"""Mutant: add_generation_prompt is accepted but never handed to the template.

Misconception: the generation prompt is something the caller adds. The template
decides what it is (ChatML: "<|im_start|>assistant\\n", Llama-2: nothing) and reads the
variable add_generation_prompt; left undefined, it is false.
"""


def render_chat(template, messages, add_generation_prompt=False, **variables):
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    environment.filters["tojson"] = _tojson
    environment.globals["raise_exception"] = _raise_exception
    context = {"tools": None, "documents": None, **variables}
    return environment.from_string(template).render(messages=messages, **context)
