"""Instructor grading: submissions in, one canonical result per submission out.

A submission is a directory mirroring ``exercises/`` or a zip of one. Only the
catalog's exercise modules are taken from it (:func:`prepare_submission`), so
a ``conftest.py``, ``pytest.ini`` or anything else a learner adds never runs.
Each submission is graded by the hidden graders in a child pytest process
(:func:`grade_submission`), with learner code confined to sandbox workers
(:mod:`llmkit.sandbox`) unless ``sandbox=False``. :func:`grade_batch` grades
many, in parallel, writing ``<outdir>/<id>/result.json`` atomically and
skipping those already written.
"""

from __future__ import annotations

import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from llmkit.catalog import Catalog, Exercise
from llmkit.reports import safe_name
from llmkit.result import ExerciseResult, SubmissionResult
from llmkit.runner import run_pytest

MAX_MODULE_BYTES = 2_000_000  # a larger "module" is not source code a learner wrote
MAX_ZIP_BYTES = 50_000_000  # total uncompressed size read from a zip
DEFAULT_TIMEOUT_S = 900.0  # outer guard for one submission's grading process


class SubmissionError(Exception):
    """The submission cannot be graded at all. The message is for the instructor and the learner."""


@dataclass
class PreparedSubmission:
    id: str
    directory: Path  # holds only the catalog's modules that the submission has
    found: list[str]  # module paths taken, e.g. "section2/attention.py"
    notes: list[str]  # e.g. "section2/bpe.py is not UTF-8"


def submission_id(path: Path) -> str:
    name = path.name[: -len(".zip")] if path.name.lower().endswith(".zip") else path.name
    return safe_name(name) or "submission"


def _zip_members(path: Path) -> dict[str, zipfile.ZipInfo]:
    """Members of a zip by normalised posix path; refuses traversal, links and bombs."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SubmissionError(f"{path.name} is not a readable zip file ({exc})") from None
    members, total = {}, 0
    with archive:
        infos = archive.infolist()
        if not infos:
            raise SubmissionError(f"{path.name} is an empty zip file")
        for info in infos:
            name = info.filename.replace("\\", "/")
            parts = PurePosixPath(name).parts
            if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
                raise SubmissionError(
                    f"{path.name} contains the path {info.filename!r}, which points outside the "
                    "submission; nothing from this zip was graded"
                )
            if stat.S_ISLNK(info.external_attr >> 16):
                continue  # symbolic links are never followed
            total += info.file_size
            if total > MAX_ZIP_BYTES:
                raise SubmissionError(f"{path.name} unpacks to more than {MAX_ZIP_BYTES // 10**6} MB")
            if not info.is_dir():
                members[str(PurePosixPath(*parts))] = info
    return members


def _strip_common_prefix(names: Iterable[str], modules: set[str]) -> str:
    """Zips often hold one top folder (``alice/section2/attention.py`` or
    ``exercises/section2/...``): the prefix before the first catalog module path."""
    for name in sorted(names, key=len):
        for module in modules:
            if name == module or name.endswith("/" + module):
                return name[: len(name) - len(module)]
    return ""


def prepare_submission(source: Path, catalog: Catalog, workdir: Path) -> PreparedSubmission:
    """Copy the submission's exercise modules (and nothing else) into ``workdir``."""
    source = Path(source)
    modules = {ex.module for ex in catalog.exercises}
    sid = submission_id(source)
    if source.is_dir():
        candidates = {}
        for path in source.rglob("*.py"):
            if path.is_symlink() or not path.is_file():
                continue
            candidates[path.relative_to(source).as_posix()] = path
        prefix = _strip_common_prefix(candidates, modules)
        read = {m: candidates[prefix + m].read_bytes for m in modules if prefix + m in candidates}
    elif source.is_file() and source.suffix.lower() == ".zip":
        members = _zip_members(source)
        prefix = _strip_common_prefix(members, modules)

        def reader(info: zipfile.ZipInfo) -> Callable[[], bytes]:
            def read() -> bytes:
                with zipfile.ZipFile(source) as archive:
                    return archive.read(info)

            return read

        read = {m: reader(members[prefix + m]) for m in modules if prefix + m in members}
    elif not source.exists():
        raise SubmissionError(f"{source} does not exist")
    else:
        raise SubmissionError(f"{source.name} is neither a directory nor a .zip file")

    found, notes = [], []
    for module in sorted(read):
        data = read[module]()
        if len(data) > MAX_MODULE_BYTES:
            notes.append(f"{module} is {len(data)} bytes; larger than {MAX_MODULE_BYTES} it is not graded")
            continue
        target = workdir / module
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        found.append(module)
    if not found:
        expected = ", ".join(sorted(modules))
        raise SubmissionError(f"no exercise modules found in {source.name} (looked for {expected})")
    return PreparedSubmission(sid, workdir, found, notes)


def expand_sources(paths: list[Path]) -> list[Path]:
    """Submissions named on the command line: a folder that holds several submissions
    (two or more directories or zips, and no ``sectionN`` folder of its own) stands for them."""
    sources = []
    for path in map(Path, paths):
        children = (
            sorted(p for p in path.iterdir() if p.is_dir() or p.suffix.lower() == ".zip")
            if path.is_dir()
            else []
        )
        children = [c for c in children if not c.name.startswith((".", "__"))]
        if len(children) >= 2 and not any(c.name.startswith("section") for c in children):
            sources.extend(children)
        else:
            sources.append(path)
    return sources


def failed_result(sid: str, exercises: list[Exercise], seed: int, error: str) -> SubmissionResult:
    """A result with zero points everywhere and a submission-level error."""
    return SubmissionResult(
        submission=sid,
        implementation="",
        seed=seed,
        graded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        exercises=[ExerciseResult(e.id, e.title, 0.0, float(e.points), "missing", error) for e in exercises],
        tests=[],
        error=error,
    )


def grade_submission(
    source: Path,
    catalog: Catalog,
    *,
    exercises: list[Exercise] | None = None,
    seed: int | None = None,
    sandbox: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> SubmissionResult:
    """Grade one submission (directory or zip) with the hidden graders; never raises for bad input."""
    import random

    exercises = exercises or list(catalog.exercises)
    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    sid = submission_id(Path(source))
    with tempfile.TemporaryDirectory(prefix="llmkit-grade-") as tmp:
        try:
            prepared = prepare_submission(Path(source), catalog, Path(tmp) / "submission")
        except SubmissionError as exc:
            return failed_result(sid, exercises, seed, str(exc))
        args = ["-p", "no:terminal", "--submission-id", sid]
        if sandbox:
            args.append("--sandbox")
        run = run_pytest(
            catalog.root,
            [ex.grader for ex in exercises],
            impl=str(prepared.directory),
            seed=seed,
            extra_args=args,
            timeout_s=timeout_s,
        )
    if run.result is None:
        why = "timed out" if run.timed_out else f"stopped with exit code {run.returncode}"
        return failed_result(sid, exercises, seed, f"grading {why}: {run.output[-1500:]}")
    result = run.result
    if prepared.notes:
        result.error = "; ".join(prepared.notes)
    return result


def grade_batch(
    sources: list[Path],
    catalog: Catalog,
    outdir: Path,
    *,
    exercises: list[Exercise] | None = None,
    seed: int | None = None,
    jobs: int = 1,
    force: bool = False,
    sandbox: bool = True,
    on_done: Callable[[Path, SubmissionResult | None], None] | None = None,
) -> list[SubmissionResult]:
    """Grade each source into ``outdir/<id>/result.json``; finished ones are read back, not regraded."""
    outdir = Path(outdir)
    ids = [submission_id(Path(s)) for s in sources]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise SubmissionError(f"two submissions would share the id(s) {sorted(duplicates)}; rename one")

    def grade_one(source: Path) -> SubmissionResult:
        path = outdir / submission_id(Path(source)) / "result.json"
        if path.exists() and not force:
            try:
                result = SubmissionResult.read(path)
            except (OSError, ValueError, KeyError, TypeError):
                result = None  # a damaged result file is regraded
            if result is not None:
                if on_done:
                    on_done(source, None)
                return result
        result = grade_submission(source, catalog, exercises=exercises, seed=seed, sandbox=sandbox)
        result.write(path)
        if on_done:
            on_done(source, result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(grade_one, [Path(s) for s in sources]))
