"""No engine file names one exercise: everything an exercise needs lives beside it.

An exercise's oracles, inputs and figure live in its support module
(``exercises/support/sectionN/<topic>.py``), oracles that would solve it in
``graders/sectionN/<topic>_oracle.py``, and what grading must install, cache or
preload in its catalog entry (``needs``, ``assets``, ``preload``). So a new exercise
never needs an engine edit, and this test reads the syntax tree of every module under
``src/llmkit`` and fails on:

* a string literal that is exactly an exercise id of the catalog (``"2.3"``);
* an import whose module path has a catalog topic as a component
  (``from llmkit.oracles import bpe``) or names a library only exercises use (the
  catalog's ``needs`` and ``preload``: ``import tiktoken``);
* a definition, name, attribute or argument that is exactly a topic (``def attention()``);
* a string literal that is exactly such a library's name (``"triton" in sys.modules``).

Limits: it reads code, not prose: docstrings, comments and examples inside longer
strings ("e.g. section2/attention.py") are not checked, nor are other files (the report
templates). An id built at run time, a topic inside a longer identifier
(``attention_mask``) or a string equal to a topic (torch's op ``"lstm"`` in the ban
tables) passes. A library counts as exercise-only when the catalog lists it, under its
pip name: one whose import name differs (scikit-learn, sklearn) is not caught.
ALLOWED lists the generic engine uses of such names, each with its reason.
"""

from __future__ import annotations

import ast

import pytest

from .conftest import PROJECT_ROOT

ENGINE = PROJECT_ROOT / "src" / "llmkit"
# (engine file, name) -> why an engine file may name it.
ALLOWED = {
    ("nbgrader/runtime.py", "triton"): "the notebook kernel picks Triton's CPU interpreter "
    "(TRITON_INTERPRET) before anything imports triton: generic GPU set-up, as in the plugin",
    ("doctor.py", "triton"): "the machine check reports whether Triton is installed and how it runs",
    ("release.py", "triton"): "the learner edition installs the gpu extra (Triton) when an exercise uses it",
    ("triton_bounds.py", "triton"): "the bounds check for Triton's interpreter, for any Triton exercise",
}


def offences(source: str, where: str, ids: set[str], topics: set[str], libraries: set[str]) -> list[str]:
    """What ``source`` (the engine file ``where``, relative to src/llmkit) says that names
    one exercise, as 'file:line: what' strings."""
    found = []

    def flag(node: ast.AST, what: str, name: str) -> None:
        if (where, name) not in ALLOWED:
            found.append(f"src/llmkit/{where}:{node.lineno}: {what} {name!r}")

    for node in ast.walk(ast.parse(source, where)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in ids:
                flag(node, "exercise id", node.value)
            elif node.value in libraries:
                flag(node, "exercise library", node.value)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom):
                modules += [f"{node.module}.{a.name}" for a in node.names]  # from llmkit.oracles import bpe
            for name in sorted(topics & {part for m in modules for part in m.split(".")}):
                flag(node, "import of topic", name)
            for name in sorted({m.split(".")[0] for m in modules} & libraries):
                flag(node, "import of exercise library", name)
        elif not isinstance(node, ast.alias):  # import names: above
            names = (getattr(node, key, None) for key in ("name", "id", "attr", "arg"))  # def, use, .x, x=
            name = next((n for n in names if n), None)
            if isinstance(name, str) and name in topics:
                flag(node, f"{type(node).__name__} named after topic", name)
    return found


def test_no_engine_file_names_an_exercise(catalog):
    ids = {ex.id for ex in catalog.exercises}
    topics = {ex.topic for ex in catalog.exercises}
    libraries = {name.lower() for ex in catalog.exercises for name in ex.needs}
    libraries |= {module.split(".")[0] for ex in catalog.exercises for module in ex.preload}
    libraries.discard("llmkit")  # a preloaded engine module (llmkit.triton_bounds) is the engine's own
    assert ids and topics and libraries, "the catalog should give this test something to look for"
    found = [
        line
        for path in sorted(ENGINE.rglob("*.py"))
        if "__pycache__" not in path.parts
        for line in offences(
            path.read_text("utf-8"), path.relative_to(ENGINE).as_posix(), ids, topics, libraries
        )
    ]
    assert not found, (
        "engine files name one exercise; move it beside the exercise (its support module, "
        "its graders' oracle, its catalog entry), or allow it in ALLOWED with a reason:\n  "
        + "\n  ".join(found)
    )


@pytest.mark.parametrize(
    "source, flagged",
    [
        ('FIGURES = {"2.3": draw}', "exercise id '2.3'"),
        ("from llmkit.oracles import bpe as oracle", "import of topic 'bpe'"),
        ("import llmkit.oracles.attention", "import of topic 'attention'"),
        ("import tiktoken", "import of exercise library 'tiktoken'"),
        ('preload = ["triton"] if "triton" in text else []', "exercise library 'triton'"),
        ("def lora():\n    pass", "FunctionDef named after topic 'lora'"),
        ("x = y.lstm(h)", "Attribute named after topic 'lstm'"),
    ],
)
def test_the_scan_catches_what_it_is_for(source, flagged):
    found = offences(
        source, "module.py", {"2.3"}, {"bpe", "attention", "lora", "lstm"}, {"tiktoken", "triton"}
    )
    assert any(flagged in line for line in found), found


def test_the_scan_passes_prose_and_longer_names():
    source = (
        '"""Figures, e.g. for 2.3 (attention)."""\nattention_mask = f"exercise {ex.id}: see 2.3"  # lstm\n'
    )
    assert offences(source, "module.py", {"2.3"}, {"attention", "lstm"}, {"triton"}) == []
