"""Instructor grading: submissions in, one canonical result per submission out.

A submission is a directory mirroring ``exercises/`` or a zip of one. Only the
catalog's exercise modules are taken from it (:func:`prepare_submission`), so
a ``conftest.py``, ``pytest.ini`` or anything else a learner adds never runs.
Each submission is graded by the hidden graders in a child pytest process
(:func:`grade_submission`), with learner code confined to sandbox workers
(:mod:`llmkit.sandbox`) unless ``sandbox=False``. :func:`grade_batch` grades
many, in parallel, writing each result atomically and reading back, on a
rerun, only the results that verify.

Which paths are submissions (:func:`expand_sources`): a file is one
submission. A directory is ONE submission when it holds a catalog module path
(``sectionN/<topic>.py`` of some catalog exercise) directly, under ``exercises/`` (a
clone of the learner edition), or under its only
top folder (``alice/alice/section2/attention.py``: the one non-hidden child
that is a directory or a ``.zip``); otherwise it is a folder of submissions,
and each non-hidden child directory or ``.zip`` is one (names starting with
``.`` or ``__`` are skipped; other files are ignored, with a note).
``mode="one"`` / ``mode="folder"`` (``llmkit grade --one-submission`` /
``--folder-of-submissions``) force either reading for every directory given.

Ids (:func:`assign_ids`): a submission's id is its file-name-safe name (a zip
without ``.zip``). When two sources would share an id, case-insensitively
(``alice/`` beside ``alice.zip``), the first by absolute source path keeps it
and the later ones get ``alice-2``, ``alice-3``, ... (skipping ids another
source has), so every submission has a row of its own.

The output directory of :func:`grade_batch`::

    outdir/                                   mode 0700 when grade_batch creates it
    outdir/.llmkit-key                        the MAC key: 32 random bytes, mode 0600, created once
    outdir/submissions/<id>/result.json       the canonical result (llmkit.result/1)
    outdir/submissions/<id>/result.json.mac   its MAC, one line: "hmac-sha256:<64 hex digits>"

and :func:`llmkit.reports.write_reports` adds ``gradebook.csv`` and
``report.html`` at the top and the per-learner files beside each
``result.json``: a learner-chosen name can never collide with a class file.

The MAC is HMAC-SHA256 under the key over ``b"llmkit-result-mac/1\0" + id +
b"\0" + source + b"\0" + the exact bytes of result.json`` (id in UTF-8;
source: the absolute path of what was graded, ``os.fsencode``; the bytes are
:meth:`SubmissionResult.to_bytes`). A rerun without ``force`` reads a result
back only when its MAC verifies for the same id and the same source; any other
stored result (edited, written without the key, moved from another id,
missing its MAC, interrupted half-written) is regraded, and ``on_note`` says
so: ``regraded alice: its stored result did not verify``. A key that is not a
regular 32-byte file owned by the grader with mode 0600 is replaced, so every
stored result is then regraded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from llmkit.catalog import Catalog, Exercise, load_catalog
from llmkit.reports import SUBMISSIONS_DIR, safe_name
from llmkit.result import ExerciseResult, SubmissionResult, write_bytes_atomically
from llmkit.runner import run_pytest

MAX_MODULE_BYTES = 2_000_000  # a larger "module" is not source code a learner wrote
MAX_ZIP_BYTES = 50_000_000  # total uncompressed size read from a zip
DEFAULT_TIMEOUT_S = 900.0  # outer guard for one submission's grading process
RESULT_NAME = "result.json"
MAC_SUFFIX = ".mac"  # result.json.mac
KEY_NAME = ".llmkit-key"
KEY_BYTES = 32
MAC_DOMAIN = b"llmkit-result-mac/1"
MAC_PREFIX = "hmac-sha256:"
SOURCE_MODES = ("auto", "one", "folder")
NOT_VERIFIED = "its stored result did not verify"

log = logging.getLogger(__name__)


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


def _hidden(path: Path) -> bool:
    return path.name.startswith((".", "__"))


def _has_module(directory: Path, modules: Iterable[str]) -> bool:
    """Whether ``directory/<module>`` is a regular file for some catalog module path."""
    for module in modules:
        path = directory / module
        if path.is_file() and not path.is_symlink():
            return True
    return False


def _candidates(folder: Path) -> list[Path]:
    """The children of a folder that can be submissions: non-hidden directories and ``.zip`` files."""
    try:
        children = sorted(folder.iterdir())
    except OSError:
        return []
    return [c for c in children if not _hidden(c) and (c.is_dir() or c.suffix.lower() == ".zip")]


def is_one_submission(directory: Path, modules: Iterable[str]) -> bool:
    """The rule for a directory given to ``llmkit grade``: ONE submission when it holds a catalog
    module path (``section2/attention.py``) directly, under ``exercises/`` (a clone of the
    learner edition, ``llmkit release``) or under its only top folder (its one non-hidden
    child directory or zip); otherwise a folder of submissions."""
    modules = list(modules)
    if _has_module(directory, modules) or _has_module(directory / "exercises", modules):
        return True
    tops = _candidates(directory)
    return len(tops) == 1 and tops[0].is_dir() and _has_module(tops[0], modules)


def expand_sources(
    paths: list[Path],
    catalog: Catalog | None = None,
    *,
    mode: str = "auto",
    on_note: Callable[[str], None] | None = None,
) -> list[Path]:
    """The submissions that the paths given to ``llmkit grade`` stand for (the rule is in the module
    docstring). ``mode``: ``auto`` applies the rule, ``one`` reads every directory as one
    submission, ``folder`` every directory as a folder of submissions. A path given twice counts once."""
    if mode not in SOURCE_MODES:
        raise ValueError(f"mode must be one of {SOURCE_MODES}, not {mode!r}")
    note = on_note or log.warning
    modules = [ex.module for ex in (catalog or load_catalog()).exercises]
    sources: list[Path] = []
    seen: set[str] = set()

    def add(path: Path) -> None:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            sources.append(path)

    for path in map(Path, paths):
        if not path.is_dir() or mode == "one" or (mode == "auto" and is_one_submission(path, modules)):
            add(path)
            continue
        children = _candidates(path)
        try:
            ignored = [c.name for c in sorted(path.iterdir()) if not _hidden(c) and c not in children]
        except OSError as exc:
            note(f"{path} cannot be read ({exc.strerror or exc}): nothing graded from it")
            continue
        if ignored:
            note(f"{path}: ignored {', '.join(ignored)} (a submission is a directory or a .zip)")
        if not children:
            note(
                f"{path} holds no catalog module (such as {modules[0]}) and no submission "
                "directories or zips: nothing graded from it (--one-submission grades it as one)"
            )
        for child in children:
            add(child)
    return sources


def assign_ids(sources: list[Path]) -> list[str]:
    """One id per source, in the order given, unique case-insensitively: each source's
    :func:`submission_id`, except that when several share one, the first by absolute source path
    keeps it and the later ones get ``-2``, ``-3``, ... (the first such id no source has)."""
    paths = [Path(s) for s in sources]
    natural = [submission_id(p) for p in paths]
    taken = {n.lower() for n in natural}
    claimed: set[str] = set()
    ids = [""] * len(paths)
    for i in sorted(range(len(paths)), key=lambda i: (os.path.abspath(paths[i]), i)):
        sid, n = natural[i], 1
        while sid.lower() in claimed or (n > 1 and sid.lower() in taken):
            n += 1
            sid = f"{natural[i]}-{n}"
        claimed.add(sid.lower())
        taken.add(sid.lower())
        ids[i] = sid
    return ids


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
    sid: str | None = None,
) -> SubmissionResult:
    """Grade one submission (directory or zip) with the hidden graders; never raises for bad input.
    ``sid``: its id (default :func:`submission_id` of ``source``)."""
    import random

    exercises = exercises or list(catalog.exercises)
    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    sid = sid or submission_id(Path(source))
    if sandbox:
        from llmkit.sandbox.launch import JailUnavailable, choose_jail

        try:
            choose_jail()
        except JailUnavailable as exc:
            return failed_result(sid, exercises, seed, f"not graded: {exc}")
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
    result.implementation = f"submission {sid}"  # not the grader's temporary directory
    for test in result.tests:
        test.implementation = result.implementation
    if prepared.notes:
        result.error = "; ".join(prepared.notes)
    return result


# --- the output directory: its key, and results that verify -----------------------------
#
# The key lives in the output directory, which learner code never sees: a sandbox worker's jail
# holds only its own private directory (plus the interpreter and the engine's oracle-free files,
# read-only), never the output directory, so no submission can read the key and sign a result of
# its own making, nor write a result at all. (With sandbox=False, learner code runs with the
# grader's rights and could reach both: that mode is for trusted code only.) What the MAC stops is
# a result that reached the output directory by any other way than this grader writing it: an
# edited score, a file written without the key, a result copied from another learner's directory.


def _key_problem(fd: int) -> str | None:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        return "it is not a regular file"
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        return "another user owns it"
    if stat.S_IMODE(info.st_mode) & 0o077:
        return f"its mode is {stat.S_IMODE(info.st_mode):o}, not 600"
    if info.st_size != KEY_BYTES:
        return f"it holds {info.st_size} bytes, not {KEY_BYTES}"
    return None


def _create_key(path: Path) -> bytes:
    key = secrets.token_bytes(KEY_BYTES)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)  # O_EXCL: never a file (or link) someone else put there
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # whatever the umask
        view = memoryview(key)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def output_key(outdir: Path, on_note: Callable[[str], None] | None = None) -> bytes:
    """The output directory's MAC key, ``outdir/.llmkit-key``: created once, else read back. A key
    file that is not a regular 32-byte file of ours with mode 0600 is replaced by a new key."""
    note = on_note or log.warning
    path = Path(outdir) / KEY_NAME
    try:
        return _create_key(path)
    except FileExistsError:
        pass
    problem = None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        problem = f"it cannot be opened ({exc.strerror or exc})"
    else:
        try:
            problem = _key_problem(fd)
            if problem is None:
                key = os.read(fd, KEY_BYTES + 1)
                if len(key) == KEY_BYTES:
                    return key
                problem = "it could not be read whole"
        finally:
            os.close(fd)
    note(f"replaced {path}: {problem}; every stored result will be regraded")
    if path.is_dir() and not path.is_symlink():
        raise SubmissionError(f"{path} is a directory; remove it so that the grader can keep its key there")
    path.unlink()
    return _create_key(path)


def prepare_output_dir(outdir: Path, on_note: Callable[[str], None] | None = None) -> bytes:
    """Create ``outdir`` (mode 0700) and ``outdir/submissions`` when missing; return the MAC key."""
    note = on_note or log.warning
    outdir = Path(outdir)
    try:
        try:
            outdir.parent.mkdir(parents=True, exist_ok=True)
            outdir.mkdir(mode=0o700)
            os.chmod(outdir, 0o700)  # the umask may have taken bits, never added them; be exact
        except FileExistsError:
            if not outdir.is_dir():
                raise SubmissionError(f"the output directory {outdir} is not a directory") from None
            if hasattr(os, "geteuid") and stat.S_IMODE(outdir.stat().st_mode) & 0o022:
                note(f"{outdir} is writable by other users: results there are checked, not hidden")
        (outdir / SUBMISSIONS_DIR).mkdir(mode=0o700, exist_ok=True)
        return output_key(outdir, note)
    except OSError as exc:
        raise SubmissionError(f"cannot use the output directory {outdir}: {exc}") from None


def result_mac(key: bytes, sid: str, source: Path, data: bytes) -> str:
    """HMAC-SHA256 (hex) of a stored result's bytes, bound to its submission id and source path."""
    message = b"\0".join([MAC_DOMAIN, sid.encode("utf-8"), os.fsencode(os.path.abspath(source)), data])
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def store_result(path: Path, result: SubmissionResult, key: bytes, source: Path) -> None:
    """Write ``result.json`` and its MAC beside it, each atomically. Interrupted between the two,
    the pair does not verify, so the rerun regrades it."""
    data = result.to_bytes()
    write_bytes_atomically(path, data)
    mac = result_mac(key, result.submission, source, data)
    write_bytes_atomically(path.with_name(path.name + MAC_SUFFIX), f"{MAC_PREFIX}{mac}\n".encode("ascii"))


def read_stored_result(
    path: Path, key: bytes, sid: str, source: Path
) -> tuple[SubmissionResult | None, str | None]:
    """``(result, None)`` when ``path`` holds a result whose MAC verifies for ``sid`` and ``source``;
    ``(None, None)`` when there is no result there; ``(None, why)`` when there is one that must not be
    trusted."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"its stored result could not be read ({exc.strerror or exc})"
    try:
        stored = path.with_name(path.name + MAC_SUFFIX).read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        return None, NOT_VERIFIED
    expected = MAC_PREFIX + result_mac(key, sid, source, data)
    if not hmac.compare_digest(stored.encode("ascii", "replace"), expected.encode("ascii")):
        return None, NOT_VERIFIED
    try:
        result = SubmissionResult.from_json(json.loads(data))
    except (ValueError, KeyError, TypeError) as exc:
        return None, f"its stored result could not be read ({exc})"
    if result.submission != sid:
        return None, NOT_VERIFIED
    return result, None


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
    on_note: Callable[[str], None] | None = None,
    shard: tuple[int, int] | None = None,
) -> list[SubmissionResult]:
    """Grade each source into ``outdir/submissions/<id>/result.json``, one result per source, in the
    order given; with ``shard=(k, n)`` only the sources of shard k of n, and a manifest
    (:mod:`llmkit.shards`; ``seed`` is then required). On a rerun, a result that verifies is read
    back, not regraded (``on_done(source, None)``); one that does not is regraded, with a note.
    Ids that clash get suffixes (:func:`assign_ids`). Notes (regraded, renamed, a result that
    could not be saved) go to ``on_note``, else to the ``llmkit.grading`` logger. Raises
    :class:`SubmissionError` only when ``outdir`` cannot be used at all (or the shard's manifest
    cannot be written there); no single submission stops the batch."""
    import random

    outdir = Path(outdir)
    sources = [Path(s) for s in sources]
    note = on_note or log.warning
    ids = assign_ids(sources)
    key = prepare_output_dir(outdir, note)
    if shard is not None:
        sources, ids = _shard_part(sources, ids, shard, catalog, outdir, exercises, seed)
    for source, sid in zip(sources, ids):
        if sid != submission_id(source):
            note(f"graded {source} as {sid}: another submission has the id {submission_id(source)}")

    def grade_one(source: Path, sid: str) -> SubmissionResult:
        path = outdir / SUBMISSIONS_DIR / sid / RESULT_NAME
        if not force:
            stored, why = read_stored_result(path, key, sid, source)
            if stored is not None:
                if on_done:
                    on_done(source, None)
                return stored
            if why:
                note(f"regraded {sid}: {why}")
        try:
            result = grade_submission(
                source, catalog, exercises=exercises, seed=seed, sandbox=sandbox, sid=sid
            )
        except Exception as exc:  # noqa: BLE001 - a fault of the grader costs this row's points, not the batch
            chosen = list(exercises or catalog.exercises)
            used = seed if seed is not None else random.SystemRandom().randrange(2**31)
            result = failed_result(sid, chosen, used, f"grading failed: {type(exc).__name__}: {exc}")
            if on_done:
                on_done(source, result)
            return result  # not stored: the rerun tries again
        result.submission = sid
        try:
            store_result(path, result, key, source)
        except OSError as exc:
            note(f"could not save the result of {sid} to {path}: {exc}; the rerun regrades it")
        if on_done:
            on_done(source, result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(grade_one, sources, ids))


def _shard_part(sources, ids, shard, catalog, outdir, exercises, seed):
    """The (sources, ids) of shard ``shard`` = (k, n), after writing its manifest."""
    from llmkit.shards import Manifest, ShardError, check_manifest_fits, graders_digest, kit_version, shard_of

    k, n = shard
    if seed is None:
        raise SubmissionError("grading a shard needs a --seed shared by every shard")
    kept = [(source, sid) for source, sid in zip(sources, ids) if shard_of(sid, n) == k]
    chosen = list(exercises or catalog.exercises)
    digest = graders_digest(catalog, chosen)
    manifest = Manifest(k, n, seed, kit_version(), digest, [ex.id for ex in chosen], [sid for _, sid in kept])
    try:
        check_manifest_fits(outdir, manifest)
        manifest.write(outdir)
    except (ShardError, OSError) as exc:
        raise SubmissionError(str(exc)) from None
    return [source for source, _ in kept], [sid for _, sid in kept]
