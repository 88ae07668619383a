"""The pytest plugin as learners and instructors see it (pytester, in-process)."""

import json

import pytest

from llmkit.catalog import load_catalog

from .conftest import PROJECT_ROOT

CATALOG_TITLE = load_catalog(PROJECT_ROOT).get("2.3").title

PROBE = """
import pytest
pytestmark = pytest.mark.exercise("2.3")

def test_probe(impl, draw):
    print("DRAW", draw.tensor(3).tolist())
    assert impl.softmax(draw.tensor(2, 3)).shape == (2, 3)

@pytest.mark.gpu
@pytest.mark.points(2)
def test_needs_gpu(impl):
    pass
"""


def write_submission(tmp_path, attention_source: str) -> str:
    """A submission directory holding only section2/attention.py; returns its path."""
    module = tmp_path / "submission" / "section2" / "attention.py"
    module.parent.mkdir(parents=True)
    module.write_text(attention_source)
    return str(module.parent.parent)


def run(kit: pytest.Pytester, *args: str) -> pytest.RunResult:
    return kit.runpytest_inprocess("--import-mode=importlib", "-p", "no:cacheprovider", *args)


def test_stubs_report_not_started_without_tracebacks(kit):
    result = run(kit, "exercises/section2/test_attention.py")
    assert result.ret == 1
    out = result.stdout.str()
    assert "not started: softmax() still raises NotImplementedError" in out
    assert "not started: MultiHeadAttention.__init__() still raises NotImplementedError" in out
    assert "Traceback" not in out
    assert not [line for line in out.splitlines() if line.startswith(("E ", ">"))]  # no pytest traceback
    assert "llmkit/plugin/" not in out and "llmkit/impl.py" not in out
    summary = [line for line in out.splitlines() if line.startswith("2.3 ")]
    assert summary and "not started" in summary[0] and "0/6" in summary[0]


def test_solutions_pass_and_summary_says_done(kit):
    result = run(kit, "exercises/section2/test_attention.py", "--impl", "solutions")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*2.3*Scaled dot-product*done*6/6*"])


def test_report_json_has_points_status_and_visibility(kit, tmp_path):
    report = tmp_path / "r.json"
    result = run(
        kit,
        "exercises/section2/test_attention.py",
        "graders/section2/test_attention.py",
        "--impl",
        "solutions",
        "--seed",
        "11",
        "--llmkit-report",
        str(report),
    )
    assert result.ret == 0
    payload = json.loads(report.read_text())
    assert payload["schema"] == "llmkit.result/1"
    assert payload["seed"] == 11 and payload["implementation"] == "solutions/"
    assert payload["exercises"] == [
        {
            "id": "2.3",
            "title": CATALOG_TITLE,
            "points": 20.0,
            "max_points": 20.0,
            "status": "graded",
            "message": "",
        }
    ]
    assert payload["points"] == payload["max_points"] == 20.0
    tests = payload["tests"]
    hidden = [t for t in tests if t["visibility"] == "hidden"]
    visible = [t for t in tests if t["visibility"] == "visible"]
    assert len(visible) == 6 and len(hidden) == 11
    assert sum(t["points"] for t in hidden) == sum(t["max_points"] for t in hidden) == 20
    assert {t["status"] for t in tests} == {"passed"}
    assert set(tests[0]) == {
        "id",
        "exercise",
        "status",
        "points",
        "max_points",
        "message",
        "duration",
        "visibility",
        "metrics",
        "implementation",
    }
    assert {t["implementation"] for t in tests} == {"solutions/"}
    speed = [t for t in tests if t["id"].endswith("test_sdpa_speed_is_vectorised")]
    assert speed and 0 < speed[0]["metrics"]["speed_ratio"] < 3


def test_failure_message_states_mistake_expected_got_tolerance_and_hint(kit):
    mutant = "graders/mutants/section2/attention__no_scale.py"
    result = run(kit, "exercises/section2/test_attention.py::test_attention_matches_torch", "--impl", mutant)
    assert result.ret == 1
    out = result.stdout.str()
    assert "Likely mistake [no_scale]: scores not scaled" in out
    assert "elements differ" in out and "expected" in out and ", got" in out
    assert "rtol=1e-05, atol=1e-05" in out
    assert "Hint: scores are q @ k^T / sqrt(d)" in out
    assert "Traceback" not in out


def test_seed_replays_draws_and_gpu_tests_skip_visibly(kit):
    kit.makepyfile(**{"exercises/section2/test_probe": PROBE})
    first = run(kit, "exercises/section2/test_probe.py", "--impl", "solutions", "--seed", "5", "-s", "-rs")
    again = run(kit, "exercises/section2/test_probe.py", "--impl", "solutions", "--seed", "5", "-s")
    other = run(kit, "exercises/section2/test_probe.py", "--impl", "solutions", "--seed", "6", "-s")
    draws = [[line for line in r.stdout.lines if "DRAW [" in line] for r in (first, again, other)]
    assert draws[0] and draws[0] == draws[1] != draws[2]
    first.stdout.fnmatch_lines(["*SKIPPED*not graded: no GPU*"])
    first.stdout.fnmatch_lines(["*implementation: solutions/*seed: 5*"])


def test_unknown_impl_is_a_clear_error(kit):
    result = run(kit, "exercises/section2", "--impl", "no/such/place")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stderr.str()
    assert "--impl no/such/place: expected 'exercises', 'solutions', a directory" in out
    assert "Traceback" not in out


def test_submission_with_syntax_error_is_named(kit, tmp_path):
    submission = write_submission(tmp_path, "def softmax(x, dim=-1):\n    return x +\n")
    result = run(kit, "exercises/section2", "--impl", submission)
    out = result.stdout.str()
    assert "exercise 2.3: attention.py line 2: SyntaxError" in out
    assert "Traceback" not in out
    result.stdout.fnmatch_lines(["*2.3*cannot load*0/6*"])


BANNED_SUBMISSION = """
import torch
import torch.nn.functional as F
from torch import nn

def softmax(x, dim=-1):
    return x.exp() / x.exp().sum(dim, keepdim=True)

def scaled_dot_product_attention(q, k, v, mask=None, is_causal=False):
    fn = getattr(F, "scaled_dot_product_" + "attention")
    try:
        return fn(q, k, v)
    except Exception:
        return fn.__wrapped__(q, k, v)

class MultiHeadAttention(nn.Module):
    pass
"""


def test_banned_call_is_trapped_even_when_swallowed(kit, tmp_path):
    submission = write_submission(tmp_path, BANNED_SUBMISSION)
    result = run(
        kit,
        "exercises/section2/test_attention.py::test_attention_matches_torch",
        "--impl",
        submission,
    )
    assert result.ret == 1
    out = result.stdout.str()
    assert "bans" in out and "torch.nn.functional.scaled_dot_product_attention" in out


IMPORT_TIME_GRAB = """
import torch

_sdpa = getattr(torch.nn.functional, "scaled_dot_product_" + "attention")  # taken at import time

def softmax(x, dim=-1):
    return x.exp() / x.exp().sum(dim, keepdim=True)

def scaled_dot_product_attention(q, k, v, mask=None, is_causal=False):
    return _sdpa(q, k, v, is_causal=is_causal)
"""


def test_banned_function_grabbed_at_import_time_is_trapped(kit, tmp_path):
    submission = write_submission(tmp_path, IMPORT_TIME_GRAB)
    result = run(
        kit,
        "exercises/section2/test_attention.py::test_attention_matches_torch",
        "--impl",
        submission,
    )
    assert result.ret == 1
    assert "bans torch.nn.functional.scaled_dot_product_attention" in result.stdout.str()


def test_unknown_exercise_id_fails_cleanly(kit):
    kit.makepyfile(
        **{
            "exercises/section2/test_unknown": "import pytest\npytestmark = pytest.mark.exercise('9.9')\n"
            "def test_x(impl):\n    pass\n"
        }
    )
    result = run(kit, "exercises/section2/test_unknown.py")
    assert result.ret == 1
    out = result.stdout.str()
    assert "no exercise '9.9' in the catalog" in out and "INTERNALERROR" not in out


def test_several_roots_run_every_test_on_each_and_a_mutant_stops_at_its_first_loss(kit, tmp_path):
    report = tmp_path / "r.json"
    mutant = "graders/mutants/section2/attention__no_scale.py"
    args = ["--impl", "solutions", "--impl", mutant, "--stop-at-first-loss", "--llmkit-report", str(report)]
    result = run(kit, "graders/section2/test_attention.py", "-p", "no:randomly", *args)
    assert result.ret == 1
    tests = json.loads(report.read_text())["tests"]
    by_root = {}
    for t in tests:
        by_root.setdefault(t["implementation"], []).append(t)
    assert set(by_root) == {"solutions/", "mutant attention__no_scale.py"}
    assert all(t["id"].endswith("[solutions]") and t["status"] == "passed" for t in by_root["solutions/"])
    statuses = [t["status"] for t in by_root["mutant attention__no_scale.py"]]
    first_loss = statuses.index("failed")
    assert set(statuses[first_loss + 1 :]) == {"skipped"}, statuses  # nothing ran after the first loss
    assert len(statuses) == len(by_root["solutions/"])
    result.stdout.fnmatch_lines(["implementation: solutions/*", "*2.3*done*", "implementation: mutant*"])


def test_the_ban_test_is_generated_for_each_root_and_scans_the_source(kit, tmp_path):
    """Exercises with banned calls get test_no_library_shortcuts (llmkit.plugin.bans): one
    point, hidden, once per root; it fails the stub (no checked call) and a mention."""
    reference = (PROJECT_ROOT / "solutions/section2/attention.py").read_text()
    mention = "\n\ndef unused(x):\n    return torch.softmax(x, dim=-1)\n"
    submission = write_submission(tmp_path, reference + mention)
    report = tmp_path / "r.json"
    roots = ["--impl", "solutions", "--impl", "exercises", "--impl", submission]
    test = "graders/section2/test_attention.py::test_no_library_shortcuts"
    result = run(kit, test, "-p", "no:randomly", *roots, "--llmkit-report", str(report))
    assert result.ret == 1
    tests = json.loads(report.read_text())["tests"]
    assert [(t["status"], t["points"], t["max_points"], t["visibility"]) for t in tests] == [
        ("passed", 1.0, 1.0, "hidden"),
        ("not_started", 0.0, 1.0, "hidden"),
        ("failed", 0.0, 1.0, "hidden"),
    ]
    assert [t["id"].rpartition("::")[2].split("[")[0] for t in tests] == ["test_no_library_shortcuts"] * 3
    assert "exercise 2.3 must be written without these library shortcuts" in tests[2]["message"]
    assert "torch.softmax" in tests[2]["message"]


def test_a_grader_may_not_define_the_generated_ban_test(kit):
    grader = kit.path / "graders/section2/test_attention.py"
    grader.write_text(grader.read_text() + "\n\ndef test_no_library_shortcuts():\n    pass\n")
    result = run(kit, "graders/section2/test_attention.py", "--collect-only")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error
    out = result.stdout.str()
    assert "graders/section2/test_attention.py defines test_no_library_shortcuts" in out
    assert "INTERNALERROR" not in out
