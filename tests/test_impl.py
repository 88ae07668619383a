"""Unit tests for llmkit.impl: resolving --impl values and loading modules from a root."""

from __future__ import annotations

import inspect
import sys
import textwrap
from pathlib import Path

import pytest

from llmkit.catalog import Exercise
from llmkit.impl import ImplementationError, ImplementationRoot, module_files, resolve_root

EX = Exercise(
    id="2.3", module="section2/attention.py", title="t", difficulty="basic", track="beginner", points=1
)
OTHER = Exercise(
    id="2.4", module="section2/other.py", title="o", difficulty="basic", track="beginner", points=1
)


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _impl_modules() -> set[str]:
    return {name for name in sys.modules if name.startswith("llmkit_impl_")}


# --- resolve_root ------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "kind"), [("exercises", "exercises"), ("solutions", "solutions"), (None, "exercises")]
)
def test_resolve_root_named_trees(tmp_path, spec, kind):
    root = resolve_root(spec, tmp_path)
    assert root.kind == kind
    assert root.path == tmp_path / kind
    assert root.mutant is None and root.mutant_module is None
    assert root.label == f"{kind}/"


def test_resolve_root_named_trees_ignore_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "cwd" / "solutions").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "cwd")
    assert resolve_root("solutions", tmp_path / "project").path == tmp_path / "project" / "solutions"


def test_resolve_root_directory(tmp_path):
    sub = tmp_path / "submission"
    sub.mkdir()
    root = resolve_root(str(sub), tmp_path / "project")
    assert root.kind == "directory"
    assert root.path == sub
    assert root.label == str(sub)


def test_resolve_root_relative_directory_is_made_absolute(tmp_path, monkeypatch):
    (tmp_path / "submission").mkdir()
    monkeypatch.chdir(tmp_path)
    root = resolve_root("submission", tmp_path / "project")
    assert root.kind == "directory"
    assert root.path.is_absolute()
    assert root.path == (tmp_path / "submission").resolve()


def test_resolve_root_mutant(tmp_path):
    mutant = _write(tmp_path / "graders" / "mutants" / "section2" / "attention__no_scale.py", "x = 1\n")
    root = resolve_root(str(mutant), tmp_path)
    assert root.kind == "mutant"
    assert root.path == tmp_path / "solutions"
    assert root.mutant == mutant
    assert root.mutant_module == "section2/attention.py"
    assert root.label == "mutant attention__no_scale.py"


def test_resolve_root_mutant_topic_with_underscores(tmp_path):
    mutant = _write(tmp_path / "section12" / "multi_head__scale_by_d_model.py", "")
    root = resolve_root(str(mutant), tmp_path)
    assert root.mutant_module == "section12/multi_head.py"


@pytest.mark.parametrize(
    "relative",
    [
        "section2/attention.py",  # no __<bug>
        "section2/Attention__bug.py",  # upper case
        "mutants/attention__bug.py",  # not in a sectionN directory
        "sectionX/attention__bug.py",
    ],
)
def test_resolve_root_badly_named_python_file(tmp_path, relative):
    path = _write(tmp_path / relative, "")
    with pytest.raises(ImplementationError, match=r"must be named sectionN/<topic>__<bug>\.py") as info:
        resolve_root(str(path), tmp_path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("spec", ["no_such_dir", "exercise", "notes.txt"])
def test_resolve_root_bad_value(tmp_path, monkeypatch, spec):
    (tmp_path / "notes.txt").write_text("hi", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ImplementationError, match=f"--impl {spec}: expected 'exercises', 'solutions'"):
        resolve_root(spec, tmp_path)


# --- load --------------------------------------------------------------------

BASE = """\
    def f():
        return "base f"


    def g():
        return "g sees " + f()


    VALUE = 41
    """


def _directory_root(
    tmp_path: Path, source: str | bytes = BASE, module: str = EX.module
) -> ImplementationRoot:
    sub = tmp_path / "submission"
    _write(sub / module, source)
    return resolve_root(str(sub), tmp_path)


def test_load_module_from_a_directory_root(tmp_path):
    root = _directory_root(tmp_path)
    assert root.loaded(EX) is None
    module = root.load(EX)
    assert module.g() == "g sees base f"
    assert module.VALUE == 41
    assert module.__file__ == str(root.path / "section2" / "attention.py")
    assert sys.modules[module.__name__] is module
    assert module.__name__.endswith(".section2.attention")
    assert module_files(module) == (str(root.path / "section2" / "attention.py"),)


def test_load_is_cached_per_root(tmp_path):
    root = _directory_root(tmp_path)
    first = root.load(EX)
    first.VALUE = 0
    assert root.load(EX) is first
    assert root.loaded(EX) is first
    fresh = resolve_root(str(root.path), tmp_path).load(EX)  # a new root imports afresh
    assert fresh is not first and fresh.VALUE == 41


def test_loaded_module_supports_dataclasses_and_future_annotations(tmp_path):
    source = """\
        from __future__ import annotations

        from dataclasses import dataclass


        @dataclass
        class Config:
            d_model: int = 8
        """
    module = _directory_root(tmp_path, source).load(EX)
    assert module.Config().d_model == 8


def _assert_load_fails(root: ImplementationRoot, *patterns: str) -> str:
    before = _impl_modules()
    with pytest.raises(ImplementationError) as info:
        root.load(EX)
    assert _impl_modules() == before  # nothing half-registered
    assert root.loaded(EX) is None  # nothing cached
    msg = str(info.value)
    for pattern in patterns:
        assert pattern in msg, msg
    return msg


def test_load_missing_module(tmp_path):
    sub = tmp_path / "submission"
    sub.mkdir()
    root = resolve_root(str(sub), tmp_path)
    _assert_load_fails(root, "exercise 2.3: section2/attention.py is missing from submission/")


def test_load_syntax_error_names_file_and_line(tmp_path):
    source = "def f():\n    return 1\n\ndef g(:\n    pass\n"
    root = _directory_root(tmp_path, source)
    _assert_load_fails(root, "exercise 2.3: attention.py line 4: SyntaxError")


def test_load_import_time_exception(tmp_path):
    source = """\
        import math

        raise RuntimeError("tables not built")
        """
    root = _directory_root(tmp_path, source)
    msg = _assert_load_fails(
        root, "exercise 2.3: importing attention.py raised RuntimeError: tables not built", "line 3"
    )
    assert 'raise RuntimeError("tables not built")' in msg


def test_load_sys_exit_at_import_is_reported_not_obeyed(tmp_path):
    source = """\
        import sys

        sys.exit(3)
        """
    root = _directory_root(tmp_path, source)
    _assert_load_fails(root, "importing attention.py raised SystemExit: 3", "line 3: sys.exit(3)")


def test_load_non_utf8_file(tmp_path):
    root = _directory_root(tmp_path, b"# caf\xe9 = 'latin-1'\nx = 1\n")
    _assert_load_fails(root, "attention.py is not valid UTF-8 (byte 5)", "save the file as UTF-8")


def test_load_failure_is_retried_after_the_file_is_fixed(tmp_path):
    root = _directory_root(tmp_path, "raise ValueError('not yet')\n")
    _assert_load_fails(root, "ValueError: not yet")
    _write(root.path / EX.module, BASE)
    assert root.load(EX).VALUE == 41


# --- mutant overlay ----------------------------------------------------------

MUTANT = """\
    def f():
        return "mutant f"
    """


@pytest.fixture
def mutant_root(tmp_path) -> ImplementationRoot:
    project = tmp_path / "project"
    _write(project / "solutions" / "section2" / "attention.py", BASE)
    _write(project / "solutions" / "section2" / "other.py", "def f():\n    return 'other'\n")
    mutant = _write(project / "graders" / "mutants" / "section2" / "attention__wrong_f.py", MUTANT)
    return resolve_root(str(mutant), project)


def test_mutant_overlay_replaces_only_what_it_defines(mutant_root):
    module = mutant_root.load(EX)
    assert module.f() == "mutant f"
    assert module.g() == "g sees mutant f"  # the base g calls the mutant f
    assert module.VALUE == 41
    assert module.__file__ == str(mutant_root.mutant)


def test_mutant_module_files_lists_base_then_mutant(mutant_root):
    base = mutant_root.path / "section2" / "attention.py"
    assert mutant_root.files_for(EX) == [base, mutant_root.mutant]
    module = mutant_root.load(EX)
    assert module.__llmkit_files__ == (str(base), str(mutant_root.mutant))
    assert module_files(module) == (str(base), str(mutant_root.mutant))


def test_mutant_root_loads_other_exercises_from_the_solutions(mutant_root):
    module = mutant_root.load(OTHER)
    assert module.f() == "other"
    assert module_files(module) == (str(mutant_root.path / "section2" / "other.py"),)


def test_mutant_that_crashes_is_reported_with_its_own_name(mutant_root):
    mutant_root.mutant.write_text("def f():\n    return 1\n\nf(1)\n", encoding="utf-8")
    _assert_load_fails(mutant_root, "importing attention__wrong_f.py raised TypeError", "line 4: f(1)")


def test_module_files_of_a_plain_module_is_empty():
    assert module_files(sys) == ()


# --- regressions: engine bugs found by these tests, now fixed ---------------


def test_load_utf8_file_with_byte_order_mark(tmp_path):
    root = _directory_root(tmp_path, b"\xef\xbb\xbfVALUE = 1\n")
    assert root.load(EX).VALUE == 1


def test_mutant_reference_patch_rewrites_the_reference_text(mutant_root):
    mutant_root.mutant.write_text(
        'REFERENCE_PATCH = [("return \\"g sees \\" + f()", "return \\"patched g sees \\" + f()")]\n',
        encoding="utf-8",
    )
    module = mutant_root.load(EX)
    assert module.g() == "patched g sees base f"
    patched = Path(module_files(module)[0])
    assert patched.name == "attention__wrong_f.reference.py" and patched.is_file()
    assert "patched g sees" in patched.read_text()
    assert inspect.getsource(module.g).strip().startswith("def g")  # source inspection sees the patch
    assert "patched" in inspect.getsource(module.g)


def test_mutant_reference_patch_that_does_not_match_is_a_clear_error(mutant_root):
    mutant_root.mutant.write_text('REFERENCE_PATCH = [("no such text", "x")]\n', encoding="utf-8")
    _assert_load_fails(mutant_root, "REFERENCE_PATCH text occurs 0 times in the reference")
