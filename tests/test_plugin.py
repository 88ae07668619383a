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
    assert "llmkit/plugin.py" not in out and "llmkit/impl.py" not in out
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
    }
    speed = [t for t in tests if t["id"].endswith("test_sdpa_speed_is_vectorised")]
    assert speed and 0 < speed[0]["metrics"]["speed_ratio"] < 3


def test_failure_message_states_expected_got_tolerance_and_hint(kit):
    mutant = "graders/mutants/section2/attention__no_scale.py"
    result = run(kit, "exercises/section2/test_attention.py::test_attention_matches_torch", "--impl", mutant)
    assert result.ret == 1
    out = result.stdout.str()
    assert "attention output:" in out and "expected" in out and ", got" in out
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
