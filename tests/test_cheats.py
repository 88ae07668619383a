"""The cheating catalogue: every submission in tests/cheats/ is graded the instructor's
way (sandboxed hidden graders, one batch) and must score no more than the untouched
stub, leave no trace outside its sandbox, and leave the batch running."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from llmkit.grading import grade_batch

CHEATS_DIR = Path(__file__).parent / "cheats"
CHEATS = sorted(CHEATS_DIR.glob("*.py"))
# Files cheats try to create.
TRACES = ["/tmp/llmkit-cheat-was-here", "/tmp/llmkit-unpickled", "/tmp/llmkit-cheat-survivor"]
CANARY = "llmkit-canary-7f3a"  # in the grader's environment: no cheat may read it
PYTEST_INI = "[pytest]\naddopts = -p no:llmkit --impl solutions\n"


def target_of(cheat: Path) -> str:
    first = cheat.read_text().splitlines()[0]
    assert first.startswith("# target: "), f"{cheat.name}: first line must be '# target: <module>'"
    return first.removeprefix("# target: ").strip()


def build_submission(cheat: Path, root: Path, project: Path, catalog) -> tuple[Path, str]:
    """A submission directory holding the cheat; returns it and the exercise it targets."""
    sub = root / cheat.stem
    target = target_of(cheat)
    if target == "conftest.py":  # beside an untouched stub, with a pytest.ini
        module = "section2/attention.py"
        (sub / module).parent.mkdir(parents=True)
        shutil.copy(project / "exercises" / module, sub / module)
        shutil.copy(cheat, sub / "conftest.py")
        (sub / "pytest.ini").write_text(PYTEST_INI)
        (sub / "section2" / "conftest.py").write_text(cheat.read_text())
    else:
        module = target
        (sub / module).parent.mkdir(parents=True)
        shutil.copy(cheat, sub / module)
    exercise = catalog.by_module(module)
    assert exercise is not None, f"{cheat.name}: {module} is not a catalog module"
    return sub, exercise.id


@pytest.fixture(scope="module")
def graded(tmp_path_factory, catalog):
    """{cheat name: (its result, the untouched stub's result)} from one sandboxed batch per exercise."""
    for trace in TRACES:
        Path(trace).unlink(missing_ok=True)
    WORKERS_BEFORE.update(sandbox_workers())
    root = tmp_path_factory.mktemp("cheats")
    groups: dict[str, list[Path]] = {}
    for cheat in CHEATS:
        sub, exercise_id = build_submission(cheat, root / "submissions", catalog.root, catalog)
        groups.setdefault(exercise_id, []).append(sub)
    saved = os.environ.get("LLMKIT_SANDBOX_TIMEOUT")
    os.environ["LLMKIT_SANDBOX_TIMEOUT"] = "5"  # hangs cost 5 s, not the default minute
    os.environ["LLMKIT_CHEAT_CANARY"] = CANARY
    try:
        out = {}
        for exercise_id, subs in groups.items():
            exercise = catalog.get(exercise_id)
            stub = root / f"stub-{exercise_id}" / "submission"
            (stub / exercise.module).parent.mkdir(parents=True)
            shutil.copy(catalog.root / "exercises" / exercise.module, stub / exercise.module)
            results = grade_batch(
                [*subs, stub], catalog, root / f"grades-{exercise_id}", exercises=[exercise], seed=7, jobs=2
            )
            stub_result = results[-1]
            for sub, result in zip(subs, results):
                out[sub.name] = (result, stub_result)
        return out
    finally:
        os.environ.pop("LLMKIT_CHEAT_CANARY", None)
        if saved is None:
            os.environ.pop("LLMKIT_SANDBOX_TIMEOUT", None)
        else:
            os.environ["LLMKIT_SANDBOX_TIMEOUT"] = saved


def test_the_catalogue_is_large_enough():
    assert len(CHEATS) >= 20


# Cheats that also do some honest work: the grader tests that work alone passes. Each
# may pass those tests and no other, and score no more than the stub plus their points.
# A correct but naive 7.1 (the N x N scores, in torch or numpy) earns 17 of 20 points:
# everything but memory. A correct 2.3 with slow Python loops earns 19 of 20: everything
# but speed. Measured by grading the cheats with their tricks taken out.
NAIVE_FLASH_ATTENTION = {
    "test_output_matches_sdpa_float64",
    "test_lse_matches_float64_logsumexp",
    "test_float32_matches",
    "test_single_query",
    "test_causal_long_sequence",
    "test_large_logits",
    "test_sm_scale_is_used",
    "test_inputs_unchanged_and_every_element_written",
    "test_no_library_shortcuts",
}
SLOW_ATTENTION = {
    "test_softmax_matches_torch",
    "test_softmax_stable_and_all_minus_inf",
    "test_sdpa_matches_torch",
    "test_sdpa_large_logits",
    "test_sdpa_fully_masked_rows_are_zero",
    "test_sdpa_gradients",
    "test_sdpa_leaves_inputs_alone_and_writes_every_element",
    "test_mha_matches_torch",
    "test_mha_mask_and_gradients",
    "test_no_library_shortcuts",
}
HONEST_TESTS = {
    "replace_engine_helper": {"test_inputs_are_not_changed_and_ints_work"},  # a forward pass: 1 point
    "wrap_measure_memory": NAIVE_FLASH_ATTENTION,  # 17 points
    "numpy_naive_attention": NAIVE_FLASH_ATTENTION,  # 17 points
    "cache_by_identity": SLOW_ATTENTION,  # 19 points
}
# The tests those cheats aim at: each must fail on its measurement, with this in its message.
TARGETED = {
    "wrap_measure_memory": {
        "test_peak_memory_is_tiled": "to the peak resident memory of its process",
        "test_causal_peak_memory_is_tiled": "to the peak resident memory of its process",
    },
    "numpy_naive_attention": {
        "test_peak_memory_is_tiled": "to the peak resident memory of its process",
        "test_causal_peak_memory_is_tiled": "to the peak resident memory of its process",
    },
    "cache_by_identity": {"test_sdpa_speed_is_vectorised": "on fresh inputs); the limit is"},
}


@pytest.mark.parametrize("cheat", [c.stem for c in CHEATS])
def test_cheat_scores_no_more_than_the_stub(graded, cheat):
    result, stub = graded[cheat]
    honest = HONEST_TESTS.get(cheat, set())
    assert stub.points == 0 and stub.max_points > 0
    assert result.max_points == stub.max_points, "the cheat changed what was graded"
    allowance = sum(t.max_points for t in result.tests if t.name in honest)
    seen = [(t.name, t.status, t.message[:200]) for t in result.tests]
    assert result.points <= stub.points + allowance, seen
    assert result.tests, "no test ran: the grader did not get as far as grading"
    for test in result.tests:
        assert test.status in ("failed", "error", "not_started", "skipped") or test.name in honest
        assert "def test_" not in test.message, "grader source leaked into the feedback"


@pytest.mark.parametrize("cheat", sorted(TARGETED))
def test_the_measurement_a_cheat_aims_at_fails(graded, cheat):
    result, _ = graded[cheat]
    tests = {t.name: t for t in result.tests}
    for name, words in TARGETED[cheat].items():
        assert tests[name].status == "failed", (name, tests[name].status, tests[name].message[:500])
        assert words in tests[name].message, (name, tests[name].message[:500])


def test_cheats_leave_no_trace(graded, catalog):
    for trace in [*TRACES, str(catalog.root / "PWNED")]:
        assert not Path(trace).exists(), f"a cheat created {trace}"
    deadline = time.monotonic() + 5
    while (leftovers := sandbox_workers() - WORKERS_BEFORE) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not leftovers, f"sandbox workers outlived their grading run: {sorted(leftovers)}"


WORKERS_BEFORE: set[str] = set()


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def sandbox_workers() -> set[str]:
    """Pids of live sandbox worker processes on this machine, except those of another test
    process running beside this one (a pytest-xdist sibling grading something else): a
    worker counts when it descends from this process or from none of its siblings."""
    me, parent = os.getpid(), os.getppid()
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"llmkit.sandbox.worker" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
        except OSError:
            continue
        ancestor = int(pid)
        while ancestor > 1 and ancestor != me and _parent(ancestor) != parent:
            ancestor = _parent(ancestor)
        if ancestor <= 1 or ancestor == me:  # ours, or orphaned
            found.add(pid)
    return found


EXPECTED_MESSAGES = {
    "exit_at_import": "SystemExit",
    "os_exit_in_call": "exited with code",
    "infinite_loop": "more than 5 s",
    "sleep_past_limit": "more than 5 s",
    "read_solution": "No module named 'solutions'",
    "read_graders": "does not allow",
    "modify_inputs": "changed one of its inputs in place",
    "conftest_in_submission": "not started",
    "use_engine_oracle": "graders/section2/bpe_oracle.py",
    "captured_banned_call": "bans torch.nn.functional.scaled_dot_product_attention, and your code ran it",
    "native_read_kit": "read nothing outside the jail (found: [])",
    "proc_peek": "loot: ",
}


@pytest.mark.parametrize("cheat", sorted(EXPECTED_MESSAGES))
def test_the_feedback_says_what_happened(graded, cheat):
    result, _ = graded[cheat]
    messages = "\n".join(t.message for t in result.tests)
    assert EXPECTED_MESSAGES[cheat] in messages, messages[:2000]
    assert "During handling" not in messages


def test_proc_peek_finds_nothing_of_the_graders(graded):
    """The worker's /proc shows only its jail: not the grader's environment, seed or report path."""
    result, _ = graded["proc_peek"]
    messages = "\n".join(t.message for t in result.tests)
    assert "loot: " in messages, "the cheat did not run"
    for secret in (CANARY, "--seed", "--llmkit-report"):
        assert secret not in messages, f"a sandboxed process read {secret!r} from /proc"
