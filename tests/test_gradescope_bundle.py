"""The Gradescope autograder bundle: build the zip, unpack it like Gradescope, run run_autograder."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from llmkit.catalog import Catalog, Exercise, load_catalog
from llmkit.cli import main
from llmkit.gradescope_bundle import BundleError, build_bundle, reduced_catalog_text, stage_submission
from llmkit.grading import SubmissionError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 300

RESULT_FIELDS = {"score", "output", "tests", "visibility", "stdout_visibility"}
TEST_FIELDS = {"name", "score", "max_score", "status", "output", "visibility"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """The 2.3 autograder zip, built through the CLI."""
    path = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    cwd = os.getcwd()
    os.chdir(PROJECT_ROOT)
    try:
        assert main(["gradescope", "build", "-o", str(path), "--only", "2.3"]) == 0
    finally:
        os.chdir(cwd)
    return path


def gradescope_root(tmp_path: Path, bundle: Path, name: str) -> Path:
    """A directory laid out like Gradescope's /autograder, with the zip unpacked in source/."""
    root = tmp_path / name
    for sub in ("source", "submission", "results"):
        (root / sub).mkdir(parents=True)
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(root / "source")
    return root


def start_autograder(root: Path, python: str = sys.executable) -> subprocess.Popen:
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), LLMKIT_PYTHON=python)
    env.pop("LLMKIT_ROOT", None)
    return subprocess.Popen(
        ["bash", str(root / "source" / "run_autograder")],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen, root: Path) -> dict:
    output, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, output
    path = root / "results" / "results.json"
    assert path.is_file(), f"no results.json; run_autograder said:\n{output}"
    doc = json.loads(path.read_text(encoding="utf-8"))  # valid JSON, or this raises
    assert RESULT_FIELDS <= set(doc), (sorted(doc), output)
    assert doc["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
    for test in doc["tests"]:
        assert TEST_FIELDS <= set(test), test
        assert test["status"] in ("passed", "failed")
        assert 0 <= test["score"] <= test["max_score"]
    assert doc["score"] == pytest.approx(sum(t["score"] for t in doc["tests"]))
    return doc


# --- the zip ---------------------------------------------------------------------


def test_bundle_carries_only_what_grading_needs(bundle):
    with zipfile.ZipFile(bundle) as archive:
        infos = {i.filename: i for i in archive.infolist()}
        catalog_text = archive.read("catalog.toml").decode()
        manifest = json.loads(archive.read("llmkit-bundle.json"))
    names = set(infos)
    assert not [n for n in names if n.startswith("solutions/")]
    assert not [n for n in names if n.startswith("graders/mutants/")]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert {"setup.sh", "run_autograder", "pyproject.toml", "README.md", "catalog.toml"} <= names
    assert "src/llmkit/gradescope_bundle.py" in names and "src/llmkit/plugin/fixtures.py" in names
    assert [n for n in names if n.startswith("graders/")] == ["graders/section2/test_attention.py"]
    assert [n for n in names if n.startswith("exercises/")] == ["exercises/support/section2/attention.py"]
    assert not [n for n in names if n.startswith("cache/")]  # 2.3 lists no assets
    for script in ("setup.sh", "run_autograder"):
        assert infos[script].external_attr >> 16 & stat.S_IXUSR, f"{script} is not executable"
    assert manifest["exercises"] == ["2.3"] and manifest["points"] == 20
    assert manifest["requirements"] == [] and manifest["assets"] == {}
    # The bundle's catalog holds 2.3 only, and every section.
    full = load_catalog(PROJECT_ROOT)
    assert 'id = "2.3"' in catalog_text and 'id = "2.1"' not in catalog_text
    assert catalog_text.count("[[section]]") == len(full.sections)


def test_scripts_are_valid_bash_and_install_cpu_torch_first(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(tmp_path)
    for script in ("setup.sh", "run_autograder"):
        check = subprocess.run(["bash", "-n", str(tmp_path / script)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
    setup = (tmp_path / "setup.sh").read_text()
    torch_line = next(i for i, line in enumerate(setup.splitlines()) if '"torch==$TORCH_VERSION"' in line)
    kit_line = next(
        i for i, line in enumerate(setup.splitlines()) if '"$SOURCE"' in line and "install" in line
    )
    assert torch_line < kit_line, "torch (CPU build) must be installed before the kit"
    assert 'TORCH_INDEX="https://download.pytorch.org/whl/cpu"' in setup
    assert '--index-url "$TORCH_INDEX"' in setup.splitlines()[torch_line]
    assert "FETCH_ASSETS=0" in setup
    assert "-e " not in setup.splitlines()[kit_line], "the kit must not be installed editable"


def test_bpe_bundle_carries_its_assets_or_fetches_them(tmp_path):
    """2.1's catalog entry lists tiktoken (needs) and GPT-2's ranks (assets); its hidden
    oracle travels with its grader, and no other exercise's files do."""
    catalog = load_catalog(PROJECT_ROOT)
    ranks = tmp_path / "gpt2.tiktoken"
    ranks.write_bytes(b"stand-in ranks\n")
    built = build_bundle(catalog, [catalog.get("2.1")], tmp_path / "with.zip", asset_files={"gpt2": ranks})
    with zipfile.ZipFile(built.path) as archive:
        assert archive.read("cache/gpt2.tiktoken") == b"stand-in ranks\n"
        setup = archive.read("setup.sh").decode()
        names = archive.namelist()
    assert built.needs.assets == ["gpt2"] and built.bundled_assets == ["gpt2"]
    assert [r for r in built.needs.requirements if r.startswith("tiktoken")] == built.needs.requirements
    assert "FETCH_ASSETS=0" in setup and "'tiktoken" in setup
    assert [n for n in names if n.startswith(("graders/", "exercises/"))] == [
        "exercises/support/section2/bpe.py",
        "graders/section2/bpe_oracle.py",
        "graders/section2/test_bpe.py",
    ]

    built = build_bundle(
        catalog, [catalog.get("2.1")], tmp_path / "without.zip", asset_files={"gpt2": tmp_path / "none"}
    )
    with zipfile.ZipFile(built.path) as archive:
        assert "cache/gpt2.tiktoken" not in archive.namelist()
        assert "FETCH_ASSETS=1" in archive.read("setup.sh").decode()
        assert json.loads(archive.read("llmkit-bundle.json"))["assets"] == {"gpt2": "fetched by setup.sh"}


def test_triton_bundle_carries_the_support_module_it_builds_on(tmp_path):
    catalog = load_catalog(PROJECT_ROOT)
    built = build_bundle(catalog, [catalog.get("7.2")], tmp_path / "a.zip")
    with zipfile.ZipFile(built.path) as archive:
        names = archive.namelist()
    assert [n for n in names if n.startswith("exercises/")] == [
        "exercises/support/section7/flash_attention.py",
        "exercises/support/section7/triton_attention.py",
    ]
    assert [r for r in built.needs.requirements if r.startswith("triton")] == built.needs.requirements != []


def test_build_refuses_bad_output_and_ids(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(PROJECT_ROOT)

    def said() -> str:
        return " ".join(capsys.readouterr().out.split())  # the console may wrap long lines

    assert main(["gradescope", "build", "-o", str(tmp_path / "missing" / "a.zip")]) == 2
    assert f"{tmp_path / 'missing'} does not exist" in said()
    assert main(["gradescope", "build", "-o", str(tmp_path), "--only", "2.3"]) == 2
    assert "is a directory; name the zip to write" in said()
    assert main(["gradescope", "build", "-o", str(tmp_path / "a.zip"), "--only", "9.9"]) == 2
    assert "no exercise '9.9' in the catalog" in said()
    with pytest.raises(BundleError, match="release number"):
        build_bundle(load_catalog(PROJECT_ROOT), None, tmp_path / "a.zip", torch_version="latest")
    assert not list(tmp_path.iterdir())


def test_reduced_catalog_keeps_everything_but_other_exercises():
    text = (PROJECT_ROOT / "catalog.toml").read_text(encoding="utf-8")
    reduced = reduced_catalog_text(text, {"1.3", "7.2"})
    assert reduced.startswith(text.splitlines()[0])
    assert [line for line in reduced.splitlines() if line.startswith("id = ")] == ['id = "7.2"', 'id = "1.3"']


# --- grading (run_autograder end to end) ------------------------------------------


def test_run_autograder_scores_reference_stub_flat_and_empty(bundle, tmp_path):
    reference = PROJECT_ROOT / "solutions" / "section2" / "attention.py"
    stub = PROJECT_ROOT / "exercises" / "section2" / "attention.py"
    roots = {name: gradescope_root(tmp_path, bundle, name) for name in ("reference", "stub", "flat", "empty")}
    (roots["reference"] / "submission" / "section2").mkdir()
    shutil.copy(reference, roots["reference"] / "submission" / "section2" / "attention.py")
    (roots["stub"] / "submission" / "section2").mkdir()
    shutil.copy(stub, roots["stub"] / "submission" / "section2" / "attention.py")
    shutil.copy(reference, roots["flat"] / "submission" / "attention.py")
    (roots["flat"] / "submission_metadata.json").write_text(json.dumps({"id": 12345}))
    # The runs are independent (their own root, sandbox workers and seed): run them side by side.
    procs = {name: start_autograder(root) for name, root in roots.items()}
    docs = {name: finish(proc, roots[name]) for name, proc in procs.items()}

    expected = {"reference": 20.0, "stub": 0.0, "flat": 20.0, "empty": 0.0}
    assert {name: doc["score"] for name, doc in docs.items()} == expected, {
        name: doc["output"] for name, doc in docs.items()
    }
    for name, doc in docs.items():
        assert sum(t["max_score"] for t in doc["tests"]) == 20.0, name
        assert doc["stdout_visibility"] == "hidden"
    assert all(t["status"] == "passed" for t in docs["reference"]["tests"])
    assert any(t["visibility"] == "after_published" for t in docs["reference"]["tests"])
    assert "attention.py (as section2/attention.py)" in docs["flat"]["output"]
    assert docs["flat"]["extra_data"]["submission"] == "gradescope-12345"
    assert all("not started" in t["output"] for t in docs["stub"]["tests"])
    assert "no Python files" in docs["empty"]["output"] and "attention.py" in docs["empty"]["output"]
    assert [t["status"] for t in docs["empty"]["tests"]] == ["failed"]


def test_run_autograder_writes_results_when_grading_crashes(bundle, tmp_path):
    root = gradescope_root(tmp_path, bundle, "broken")
    (root / "source" / "catalog.toml").write_text("this is [not toml\n")
    (root / "submission" / "attention.py").write_text("x = 1\n")
    doc = finish(start_autograder(root), root)
    assert doc["score"] == 0.0 and doc["tests"] == []
    assert "failed while grading" in doc["output"] and "not valid TOML" in doc["output"]


def test_run_autograder_writes_results_when_python_is_missing(bundle, tmp_path):
    root = gradescope_root(tmp_path, bundle, "nopython")
    doc = finish(start_autograder(root, python=str(tmp_path / "no-such-python")), root)
    assert doc["score"] == 0.0 and doc["tests"] == []
    assert "could not start" in doc["output"]


# --- finding modules in a submission ------------------------------------------------


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(PROJECT_ROOT)


def test_stage_layout_under_any_top_folder_and_flat_files_anywhere(catalog, tmp_path):
    sub = tmp_path / "sub"
    (sub / "alice" / "exercises" / "section2").mkdir(parents=True)
    (sub / "alice" / "exercises" / "section2" / "attention.py").write_text("A = 1\n")
    (sub / "misc").mkdir()
    (sub / "misc" / "lora.py").write_text("L = 1\n")
    (sub / "attention.py").write_text("layout wins\n")
    (sub / "__MACOSX").mkdir()
    (sub / "__MACOSX" / "lstm.py").write_text("junk\n")
    staged = stage_submission(sub, catalog, tmp_path / "out")
    assert staged.found == {
        "section2/attention.py": "alice/exercises/section2/attention.py",
        "section5/lora.py": "misc/lora.py",
    }
    assert (tmp_path / "out" / "section2" / "attention.py").read_text() == "A = 1\n"
    assert (tmp_path / "out" / "section5" / "lora.py").read_text() == "L = 1\n"
    assert not (tmp_path / "out" / "section1").exists()
    assert "misc/lora.py (as section5/lora.py)" in staged.notes[0]


def test_stage_refuses_ambiguous_flat_files(catalog, tmp_path):
    sub = tmp_path / "sub"
    (sub / "old").mkdir(parents=True)
    (sub / "lora.py").write_text("new\n")
    (sub / "old" / "lora.py").write_text("old\n")
    (sub / "attention.py").write_text("A = 1\n")
    staged = stage_submission(sub, catalog, tmp_path / "out")
    assert list(staged.found) == ["section2/attention.py"]
    assert any("2 files named lora.py" in n for n in staged.notes)


def test_stage_never_guesses_between_modules_of_the_same_name(tmp_path):
    def exercise(ex_id: str, module: str) -> Exercise:
        return Exercise(ex_id, module, "t", "basic", "beginner", 1)

    catalog = Catalog(
        tmp_path, (), (exercise("2.3", "section2/attention.py"), exercise("4.1", "section4/attention.py"))
    )
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "attention.py").write_text("A = 1\n")
    with pytest.raises(SubmissionError, match="none of your files"):
        stage_submission(sub, catalog, tmp_path / "out")
    (sub / "section4").mkdir()
    (sub / "section4" / "attention.py").write_text("B = 1\n")
    staged = stage_submission(sub, catalog, tmp_path / "out")
    assert list(staged.found) == ["section4/attention.py"]
    assert any("could be any of section2/attention.py, section4/attention.py" in n for n in staged.notes)


def test_stage_reads_an_unpacked_zip_upload(catalog, tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("work/bpe.py", "B = 1\n")
        archive.writestr("work/notes.txt", "hello\n")
    (sub / "submission.zip").write_bytes(buffer.getvalue())
    staged = stage_submission(sub, catalog, tmp_path / "out")
    assert staged.found == {"section2/bpe.py": "work/bpe.py"}
    assert (tmp_path / "out" / "section2" / "bpe.py").read_text() == "B = 1\n"


def test_stage_says_what_it_expected(catalog, tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "my_attention.py").write_text("A = 1\n")
    with pytest.raises(SubmissionError) as info:
        stage_submission(sub, catalog, tmp_path / "out")
    message = str(info.value)
    assert "my_attention.py" in message and "2.3: attention.py (or section2/attention.py)" in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(SubmissionError, match="no Python files"):
        stage_submission(tmp_path / "empty", catalog, tmp_path / "out")
    with pytest.raises(SubmissionError, match="no submission was found"):
        stage_submission(tmp_path / "absent", catalog, tmp_path / "out")
