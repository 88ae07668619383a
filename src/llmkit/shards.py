"""Grading a large class on many machines: ``llmkit grade --shard K/N`` grades a fixed
part of the submissions, ``llmkit report SHARD_DIR ...`` merges the parts.

Every machine is handed the same submissions (the same folder of clones) and the same
``--seed``. Ids are assigned over the whole list first (:func:`llmkit.grading.assign_ids`),
then submission ``sid`` belongs to shard ``shard_of(sid, N)``: a SHA-256 of the id, the
same on every machine and in every Python. A shard's output directory holds, beside
the usual ``submissions/<id>/result.json``, a manifest ``shard.json``::

    {"schema": "llmkit.shard/1", "shard": 2, "of": 4, "seed": 1234,
     "kit": "0.1.0", "graders": "<sha256 of catalog.toml and the exercises' graders>",
     "exercises": ["2.1", "2.3"], "submissions": ["alice", "carol"]}

:func:`merge_shards` reads N such directories and refuses, naming the directory, a
set that is not shards 1..N of one run (a shard missing or given twice, another N,
seed, kit version, grader tree or exercise selection), a submission graded in two
shards, or one a manifest lists whose result is missing or was graded with another seed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from llmkit.catalog import Catalog
from llmkit.result import SubmissionResult, write_json_atomically

MANIFEST = "shard.json"
SCHEMA = "llmkit.shard/1"
SHARD_SPEC = re.compile(r"^(\d+)/(\d+)$")


class ShardError(Exception):
    """A shard specification or a set of shard directories that cannot be used; the
    message names what is wrong."""


def parse_shard(spec: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``; K runs from 1 to N."""
    match = SHARD_SPEC.match(spec.strip())
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise ShardError(f"--shard {spec!r}: expected K/N with 1 <= K <= N, e.g. --shard 2/4")
    return int(match[1]), int(match[2])


def shard_of(sid: str, shards: int) -> int:
    """The shard (1..``shards``) that grades submission ``sid``."""
    digest = hashlib.sha256(sid.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards + 1


def kit_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llmkit")
    except PackageNotFoundError:
        return "unknown"


def graders_digest(catalog: Catalog, exercises) -> str:
    """SHA-256 over catalog.toml and what grades ``exercises`` (each one's graders, hidden
    oracle and support module: paths and bytes): shards graded by different graders do not merge."""
    sha = hashlib.sha256()
    root = catalog.root
    files = [root / "catalog.toml"]
    for ex in exercises:
        oracle = Path(ex.grader).with_name(Path(ex.module).stem + "_oracle.py")
        files += [root / ex.grader, root / oracle, root / ex.support]
    for path in files:
        if path.is_file():
            sha.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()


@dataclass(frozen=True)
class Manifest:
    shard: int
    of: int
    seed: int
    kit: str
    graders: str
    exercises: list[str]
    submissions: list[str]
    schema: str = SCHEMA

    def run(self) -> tuple:
        """What every shard of one run shares."""
        return (self.of, self.seed, self.kit, self.graders, tuple(self.exercises))

    def write(self, outdir: Path) -> None:
        write_json_atomically(Path(outdir) / MANIFEST, asdict(self))

    @classmethod
    def read(cls, outdir: Path) -> Manifest:
        path = Path(outdir) / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("schema") != SCHEMA:
                raise ValueError(f"schema {data.get('schema')!r}, expected {SCHEMA!r}")
            return cls(**data)
        except FileNotFoundError:
            raise ShardError(f"{outdir}: no {MANIFEST}, so not the output of llmkit grade --shard") from None
        except (ValueError, TypeError) as exc:
            raise ShardError(f"{path}: not a shard manifest ({exc})") from None


def check_manifest_fits(outdir: Path, manifest: Manifest) -> None:
    """An output directory holds one shard of one run: refuse to grade another one into it."""
    if not (Path(outdir) / MANIFEST).exists():
        return
    old = Manifest.read(outdir)
    if (old.shard, old.run()) != (manifest.shard, manifest.run()):
        raise ShardError(
            f"{outdir} already holds shard {old.shard}/{old.of} (seed {old.seed}, kit {old.kit}) of another "
            f"run; grade shard {manifest.shard}/{manifest.of} into a new directory"
        )


def merge_shards(outdirs: list[Path]) -> list[SubmissionResult]:
    """The results of shards 1..N of one run, each submission once; :class:`ShardError` otherwise."""
    manifests = [(Path(d), Manifest.read(d)) for d in outdirs]
    first_dir, first = manifests[0]
    seen_shards: dict[int, Path] = {}
    for outdir, m in manifests:
        if m.run() != first.run():
            raise ShardError(f"{outdir} is not from the same run as {first_dir}: {_difference(first, m)}")
        if m.shard in seen_shards:
            raise ShardError(f"shard {m.shard}/{m.of} is given twice: {seen_shards[m.shard]} and {outdir}")
        seen_shards[m.shard] = outdir
    missing = sorted(set(range(1, first.of + 1)) - set(seen_shards))
    if missing:
        absent = ", ".join(f"{k}/{first.of}" for k in missing)
        raise ShardError(f"shard(s) {absent} missing: give all {first.of}")
    results: list[SubmissionResult] = []
    graded_in: dict[str, Path] = {}
    for outdir, m in sorted(manifests, key=lambda item: item[1].shard):
        for sid in m.submissions:
            if sid in graded_in:
                raise ShardError(f"submission {sid} was graded twice: in {graded_in[sid]} and {outdir}")
            graded_in[sid] = outdir
            path = outdir / "submissions" / sid / "result.json"
            try:
                result = SubmissionResult.read(path)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ShardError(f"{path}: listed in the shard, unreadable ({exc})") from None
            if result.seed != m.seed:
                raise ShardError(f"{path}: graded with seed {result.seed}, the run's seed is {m.seed}")
            results.append(result)
    return results


def _difference(a: Manifest, b: Manifest) -> str:
    names = ("number of shards", "seed", "kit version", "graders (digest)", "exercises")
    return "; ".join(f"{n} {x!r:.20} vs {y!r:.20}" for n, x, y in zip(names, a.run(), b.run()) if x != y)
