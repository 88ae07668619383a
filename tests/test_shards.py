"""Sharded grading: `llmkit grade --shard K/N` on N machines, `llmkit report` merging the shards."""

import json
import shutil
import subprocess
import sys
from collections import Counter

import pytest

from llmkit.shards import MANIFEST, ShardError, merge_shards, parse_shard, shard_of

from .conftest import PROJECT_ROOT

EXERCISE = "6.3"  # one quick exercise keeps the six gradings short
MODULE = "section6/pass_at_k.py"
# With 3 shards these ids fall one per shard (shard_of: ann 3, cy 1, eli 2).
SUBMISSIONS = {"ann": "solutions", "cy": "exercises", "eli": None}  # eli's submission lacks the module


def llmkit(*args):
    command = [sys.executable, "-m", "llmkit.cli", *args]
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)


def test_shard_of_is_a_stable_partition():
    ids = [f"learner-{i}" for i in range(600)]
    for n in (1, 2, 5):
        shards = Counter(shard_of(sid, n) for sid in ids)
        assert set(shards) == set(range(1, n + 1))
        assert min(shards.values()) > 600 / n * 0.7  # roughly even
    assert [shard_of(s, 3) for s in SUBMISSIONS] == [3, 1, 2]  # SHA-256: the same on every machine


@pytest.mark.parametrize("spec", ["0/3", "4/3", "3", "a/b", "1/0"])
def test_bad_shard_specs_are_refused(spec):
    with pytest.raises(ShardError, match="K/N"):
        parse_shard(spec)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The same three submissions graded once whole and once as three shards."""
    root = tmp_path_factory.mktemp("shards")
    for sid, tree in SUBMISSIONS.items():
        (root / "subs" / sid / "section6").mkdir(parents=True)
        if tree:
            shutil.copy(PROJECT_ROOT / tree / MODULE, root / "subs" / sid / MODULE)
        else:
            (root / "subs" / sid / "section6" / "notes.txt").write_text("not done")
    common = ["--only", EXERCISE, "--no-sandbox", "--seed", "11", "--folder-of-submissions"]
    whole = llmkit("grade", str(root / "subs"), "-o", str(root / "whole"), *common)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    for k in (1, 2, 3):
        run = llmkit("grade", str(root / "subs"), "-o", str(root / f"shard{k}"), "--shard", f"{k}/3", *common)
        assert run.returncode == 0, run.stdout + run.stderr
    return root


def _rows(gradebook):
    return sorted(gradebook.read_text().splitlines()[1:])


def test_the_shards_together_are_the_unsharded_run(graded):
    manifests = [json.loads((graded / f"shard{k}" / MANIFEST).read_text()) for k in (1, 2, 3)]
    assert [m["submissions"] for m in manifests] == [["cy"], ["eli"], ["ann"]]  # each once, none missing
    merged = llmkit("report", *(str(graded / f"shard{k}") for k in (1, 2, 3)), "-o", str(graded / "merged"))
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "3 submissions from 3 shards" in merged.stdout
    assert _rows(graded / "merged" / "gradebook.csv") == _rows(graded / "whole" / "gradebook.csv")
    assert any(row.startswith("ann,") and ",15" in row for row in _rows(graded / "merged" / "gradebook.csv"))


def _copy_shards(graded, tmp_path):
    for k in (1, 2, 3):
        shutil.copytree(graded / f"shard{k}", tmp_path / f"shard{k}")
    return [tmp_path / f"shard{k}" for k in (1, 2, 3)]


def _edit_manifest(directory, **changes):
    path = directory / MANIFEST
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_merging_refuses_a_missing_or_repeated_shard(graded, tmp_path):
    one, two, three = _copy_shards(graded, tmp_path)
    with pytest.raises(ShardError, match="shard\\(s\\) 3/3 missing"):
        merge_shards([one, two])
    with pytest.raises(ShardError, match="shard 1/3 is given twice"):
        merge_shards([one, two, three, one])


def test_merging_refuses_another_seed_kit_or_a_submission_graded_twice(graded, tmp_path):
    one, two, three = _copy_shards(graded, tmp_path)
    _edit_manifest(two, seed=12)
    with pytest.raises(ShardError, match=f"{two} is not from the same run.*seed 11 vs 12"):
        merge_shards([one, two, three])
    _edit_manifest(two, seed=11, kit="0.0.1")
    with pytest.raises(ShardError, match="kit version"):
        merge_shards([one, two, three])
    _edit_manifest(two, kit=json.loads((one / MANIFEST).read_text())["kit"], submissions=["eli", "cy"])
    shutil.copytree(one / "submissions" / "cy", two / "submissions" / "cy")
    with pytest.raises(ShardError, match="submission cy was graded twice"):
        merge_shards([one, two, three])


def test_report_says_why_and_writes_nothing(graded, tmp_path):
    one, two, _ = _copy_shards(graded, tmp_path)
    run = llmkit("report", str(one), str(two), "-o", str(tmp_path / "out"))
    assert run.returncode == 2 and "missing" in run.stdout and "nothing written" in run.stdout
    assert not (tmp_path / "out").exists()
    assert "Traceback" not in run.stdout + run.stderr


def test_a_shard_needs_a_seed(tmp_path):
    run = llmkit("grade", str(tmp_path), "-o", str(tmp_path / "out"), "--shard", "1/2")
    assert run.returncode == 2 and "--shard needs --seed" in run.stdout
