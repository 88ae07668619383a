"""Gradescope autograder bundles: ``llmkit gradescope build -o autograder.zip [--only IDS]``.

The zip holds what grading needs and nothing else::

    setup.sh                  run once by Gradescope, as root, while it builds the image
    run_autograder            run for every submission
    llmkit-bundle.json        what this bundle grades and how it was built
    pyproject.toml README.md  so pip can install the kit from the bundle
    src/llmkit/...            the engine
    catalog.toml              the chosen exercises only
    graders/sectionN/...      their hidden graders (never graders/mutants/, never solutions/)
    exercises/support/sectionN/*.py   their support modules (oracles, inputs; llmkit.support)
    cache/...                 the assets they list (llmkit.assets) that the builder has cached

``setup.sh`` makes a virtual environment in ``/opt/llmkit-venv`` with Python 3.11+
(the image's own when new enough, else ``python3.11`` from apt or the deadsnakes
PPA), installs the CPU build of torch first, then the kit from the bundle (not
editable: sandbox workers run as ``nobody`` and must find the engine in the
world-readable venv), the extra libraries the chosen exercises list (the catalog's
``needs``) as pyproject.toml's extras pin them, and their assets into ``source/cache``
when they were not bundled. It then makes ``source/`` readable by root only.

``run_autograder`` calls :func:`autograde` (``python -m llmkit.gradescope_bundle``),
which finds the learner's modules in ``/autograder/submission`` (laid out like
``exercises/``, at any depth, or flat: ``attention.py`` is graded as
``section2/attention.py`` when no other catalog module has that file name), grades
them with the hidden graders in the sandbox and writes
``/autograder/results/results.json``. A results.json is written whatever happens:
an empty submission, a crash of the grader or a broken Python install all end in
score 0 with an ``output`` that says why. ``AUTOGRADER_ROOT`` (default
``/autograder``) and ``LLMKIT_PYTHON`` (default: the venv's Python) let tests run
the same script in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from llmkit.catalog import CATALOG_FILE, Catalog, Exercise

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

VENV = "/opt/llmkit-venv"
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
MANIFEST = "llmkit-bundle.json"
CACHE_DIR = "cache"  # under the bundle root: LLMKIT_CACHE for the graders
# Gradescope stops a run after its autograder timeout (10 minutes unless the assignment
# raises it); grading stops a little earlier so that results.json is still written.
DEFAULT_TIMEOUT_S = 540
SKIP_DIRS = {"__pycache__", "__MACOSX"}


class BundleError(Exception):
    """The bundle cannot be built. The message is for the instructor."""


# --- the scripts ------------------------------------------------------------------

SETUP_SH = r"""#!/usr/bin/env bash
# llmkit autograder set-up, written by `llmkit gradescope build`. Gradescope runs it once,
# as root and with network access, while it builds the autograder image.
set -euo pipefail

SOURCE="${AUTOGRADER_ROOT:-/autograder}/source"
VENV="@VENV@"
TORCH_VERSION="@TORCH_VERSION@"
TORCH_INDEX="@TORCH_INDEX@"
EXTRA_REQUIREMENTS=(@EXTRA_REQUIREMENTS@)
FETCH_ASSETS=@FETCH_ASSETS@
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1

# 1. Python 3.11+. Gradescope's Ubuntu images ship 3.12 (24.04), 3.10 (22.04) or older:
#    use the image's own when it is new enough, else python3.11 from apt (22.04: universe),
#    else from the deadsnakes PPA (20.04 and older).
python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }
PY=""
for candidate in python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
        PY="$(command -v "$candidate")"
        break
    fi
done
if [ -z "$PY" ]; then
    apt-get update
    if ! apt-get install -y --no-install-recommends python3.11 python3.11-venv; then
        apt-get install -y --no-install-recommends software-properties-common
        add-apt-repository -y ppa:deadsnakes/ppa
        apt-get update
        apt-get install -y --no-install-recommends python3.11 python3.11-venv
    fi
    PY="$(command -v python3.11)"
fi
echo "llmkit set-up: $("$PY" --version) at $PY; virtual environment $VENV"

# 2. A virtual environment outside /autograder (pip may not write to the system Python on
#    newer images), readable by everyone: sandbox workers run learner code as `nobody`.
#    Debian and Ubuntu ship venv's pip bootstrap in a package of its own (python3.X-venv).
umask 022
if ! "$PY" -m venv "$VENV"; then
    rm -rf "$VENV"
    apt-get update
    apt-get install -y --no-install-recommends "$(basename "$PY")-venv"
    "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install --upgrade pip

# 3. torch, the CPU build, first: the kit's open torch requirement is then already met and
#    pip never fetches a CUDA build. The constraint keeps it at this version from here on.
"${PIP[@]}" install "torch==$TORCH_VERSION" --index-url "$TORCH_INDEX"
CONSTRAINTS="$(mktemp)"
echo "torch==$TORCH_VERSION" >"$CONSTRAINTS"

# 4. The kit from this bundle (not editable: the engine must live in the venv, not in
#    source/), and the libraries the chosen graders use.
"${PIP[@]}" install -c "$CONSTRAINTS" "$SOURCE" ${EXTRA_REQUIREMENTS[@]+"${EXTRA_REQUIREMENTS[@]}"}
rm -f "$CONSTRAINTS"

# 5. The assets the chosen exercises list (this bundle's catalog), if the bundle does not
#    carry them.
if [ "$FETCH_ASSETS" = 1 ]; then
    (cd "$SOURCE" && LLMKIT_CACHE="$SOURCE/@CACHE_DIR@" "$VENV/bin/llmkit" fetch-assets)
fi

# 6. Graders and assets are for the grader process (root) only: where the container
#    refuses namespaces, workers run as `nobody`, which must not read them.
#    bubblewrap (namespaces) and libseccomp (system-call filter) make the jail.
chmod -R go-rwx "$SOURCE"
apt-get install -y --no-install-recommends bubblewrap libseccomp2 || {
    apt-get update && apt-get install -y --no-install-recommends bubblewrap libseccomp2
} || echo "llmkit set-up: bubblewrap not installed; workers will run as a dedicated user"

# 7. Smoke test: the engine imports and reads this bundle's catalog.
cd "$SOURCE"
"$VENV/bin/python" -c '
from llmkit.catalog import load_catalog
print("llmkit set-up done; grading", ", ".join(e.id for e in load_catalog(".").exercises))'
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# llmkit autograder, written by `llmkit gradescope build`. Gradescope runs it for every
# submission: it grades $ROOT/submission with the hidden graders and writes
# $ROOT/results/results.json, whatever happens.
set -u

ROOT="${AUTOGRADER_ROOT:-/autograder}"
if [ -n "${LLMKIT_PYTHON:-}" ]; then
    PY="$LLMKIT_PYTHON"
elif [ -x "@VENV@/bin/python" ]; then
    PY="@VENV@/bin/python"
else
    PY=python3
fi
export LLMKIT_CACHE="${LLMKIT_CACHE:-$ROOT/source/@CACHE_DIR@}"
RESULTS="$ROOT/results/results.json"
mkdir -p "$ROOT/results"
rm -f "$RESULTS"

status=0
if cd "$ROOT/source"; then
    "$PY" -m llmkit.gradescope_bundle --root "$ROOT" || status=$?
else
    status=$?
fi

if [ ! -s "$RESULTS" ]; then
    # The grader could not even start (no Python, the kit not installed): say so, score 0.
    cat >"$RESULTS" <<'JSON'
{
  "score": 0.0,
  "output": "The autograder could not start: not graded, score 0 for now. Please tell your instructor.",
  "visibility": "visible",
  "stdout_visibility": "hidden",
  "tests": []
}
JSON
    echo "llmkit autograder: no results written (exit status $status); wrote a score-0 results.json" >&2
fi
exit 0
"""


def _render(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    left = re.findall(r"@[A-Z_]+@", template)
    if left:  # pragma: no cover - a template/values mismatch is a bug in this module
        raise AssertionError(f"unfilled placeholders {left}")
    return template


def _shell_word(text: str) -> str:
    """``text`` single-quoted for bash."""
    return "'" + text.replace("'", "'\"'\"'") + "'"


# --- what the chosen graders need -------------------------------------------------


@dataclass
class Needs:
    requirements: list[str] = field(default_factory=list)  # pip requirements, as pyproject.toml pins them
    assets: list[str] = field(default_factory=list)  # names in llmkit.assets


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return match.group(1).lower().replace("-", "_") if match else ""


def grader_needs(exercises: list[Exercise], pyproject: dict) -> Needs:
    """The extra libraries and the assets the chosen exercises list in the catalog (``needs``,
    ``assets``); a library is installed as pyproject.toml's extras pin it, else by name."""
    extras = pyproject.get("project", {}).get("optional-dependencies", {})
    pinned = {_requirement_name(r): r for requirements in extras.values() for r in requirements}
    needs = Needs()
    for ex in exercises:
        for name in ex.needs:
            requirement = pinned.get(_requirement_name(name), name)
            if requirement not in needs.requirements:
                needs.requirements.append(requirement)
        needs.assets += [name for name in ex.assets if name not in needs.assets]
    return needs


def default_torch_version() -> str:
    """The torch release the builder's kit runs with, without a local tag (``2.13.0+cpu`` -> ``2.13.0``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch").split("+", 1)[0]
    except PackageNotFoundError:
        raise BundleError("torch is not installed here; pass --torch VERSION") from None


# --- catalog.toml, reduced to the chosen exercises ---------------------------------

_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(#.*)?$")


def reduced_catalog_text(text: str, keep: set[str]) -> str:
    """``catalog.toml`` with only the ``[[exercise]]`` tables whose id is in ``keep``; comments,
    sections and everything else stay as written. The result is checked by parsing both."""
    blocks: list[list[str]] = [[]]
    for line in text.splitlines(keepends=True):
        match = _HEADER.match(line)
        if match and not match.group(1).startswith("exercise."):
            blocks.append([])
        blocks[-1].append(line)
    kept = []
    for block in blocks:
        match = _HEADER.match(block[0]) if block else None
        if match and match.group(1) == "exercise":
            try:
                ids = [t.get("id") for t in tomllib.loads("".join(block)).get("exercise", [])]
            except tomllib.TOMLDecodeError:
                raise BundleError(f"{CATALOG_FILE} could not be split into its [[exercise]] tables") from None
            if not set(ids) & keep:
                continue
        kept.append("".join(block))
    reduced = "".join(kept)
    original, parsed = tomllib.loads(text), tomllib.loads(reduced)
    expected = dict(original, exercise=[t for t in original.get("exercise", []) if t.get("id") in keep])
    if parsed != expected:
        raise BundleError(f"{CATALOG_FILE} could not be reduced to the exercises {sorted(keep)}")
    return reduced


# --- building the zip --------------------------------------------------------------


@dataclass
class Bundle:
    path: Path
    exercises: list[Exercise]
    files: list[str]  # paths inside the zip
    torch_version: str
    needs: Needs
    bundled_assets: list[str]

    @property
    def points(self) -> int:
        return sum(ex.points for ex in self.exercises)


def _package_files(root: Path, package: Path) -> list[Path]:
    return sorted(
        p
        for p in package.rglob("*")
        if p.is_file() and not SKIP_DIRS & set(p.relative_to(root).parts) and p.suffix not in (".pyc", ".pyo")
    )


def _grader_files(catalog: Catalog, exercises: list[Exercise]) -> list[Path]:
    """The chosen exercises' graders and whatever else graders/ holds (conftest.py, helpers,
    data), except other exercises' graders and oracles, and graders/mutants/."""
    root, graders = catalog.root, catalog.root / "graders"
    missing = sorted(ex.grader for ex in exercises if not (root / ex.grader).is_file())
    if missing:
        raise BundleError(f"hidden graders missing: {', '.join(missing)}")
    others = {
        root / path for ex in catalog.exercises if ex not in exercises for path in (ex.grader, ex.oracle)
    }
    files = []
    for path in _package_files(root, graders):
        if path.relative_to(graders).parts[0] == "mutants" or path in others:
            continue
        files.append(path)
    return files


def _support_files(catalog: Catalog, exercises: list[Exercise]) -> list[Path]:
    """The chosen exercises' support modules and those they load (llmkit.support)."""
    from llmkit.support import SupportError, support_files

    files: list[Path] = []
    for ex in exercises:
        try:
            files += [p for p in support_files(ex, catalog.root) if p not in files]
        except SupportError as exc:
            raise BundleError(f"exercise {ex.id}: {exc}") from None
    return files


def build_bundle(
    catalog: Catalog,
    exercises: list[Exercise] | None = None,
    output: str | os.PathLike = "autograder.zip",
    *,
    torch_version: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    asset_files: dict[str, Path] | None = None,
) -> Bundle:
    """Write the Gradescope autograder zip for ``exercises`` (default: all) to ``output``.

    Each asset the chosen exercises list is bundled from ``asset_files[name]`` (default: the
    builder's cache, :func:`llmkit.assets.path`) when that file exists; ``setup.sh`` fetches
    the others.
    """
    from llmkit import assets

    root = catalog.root
    exercises = sorted(exercises or catalog.exercises, key=lambda e: e.sort_key)
    if not exercises:
        raise BundleError(f"{root / CATALOG_FILE} lists no exercises")
    output = Path(output)
    if output.is_dir():
        raise BundleError(f"{output} is a directory; name the zip to write, e.g. {output}/autograder.zip")
    if not output.parent.is_dir():
        raise BundleError(f"{output.parent} does not exist")
    torch_version = torch_version or default_torch_version()
    if not re.fullmatch(r"\d+(\.\d+){1,3}", torch_version):
        raise BundleError(f"--torch {torch_version!r}: expected a release number such as 2.13.0")
    if timeout_s <= 0:
        raise BundleError(f"--timeout {timeout_s:g}: expected a positive number of seconds")
    try:
        pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BundleError(f"cannot read {root / 'pyproject.toml'}: {exc}") from None
    package = root / "src" / "llmkit"
    if not (package / "__init__.py").is_file():
        raise BundleError(f"{package} is missing: build the bundle from the kit's checkout")

    graders = _grader_files(catalog, exercises)  # refuses missing graders first
    needs = grader_needs(exercises, pyproject)
    cached = {name: (asset_files or {}).get(name) or assets.path(name) for name in needs.assets}
    bundled = [name for name, path in cached.items() if path.is_file()]

    files: dict[str, Path | bytes] = {}
    for name in ("pyproject.toml", pyproject.get("project", {}).get("readme")):
        if isinstance(name, str) and (root / name).is_file():
            files[name] = root / name
    for path in [*_package_files(root, package), *graders, *_support_files(catalog, exercises)]:
        files[path.relative_to(root).as_posix()] = path
    files[CATALOG_FILE] = reduced_catalog_text(
        (root / CATALOG_FILE).read_text(encoding="utf-8"), {ex.id for ex in exercises}
    ).encode()
    for name in bundled:  # as the cache holds it: LLMKIT_CACHE is the bundle's cache/
        files[f"{CACHE_DIR}/{assets.get(name).file}"] = cached[name]
    manifest = {
        "schema": "llmkit.gradescope-bundle/1",
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "exercises": [ex.id for ex in exercises],
        "points": sum(ex.points for ex in exercises),
        "torch": torch_version,
        "requirements": needs.requirements,
        "assets": {name: "bundled" if name in bundled else "fetched by setup.sh" for name in needs.assets},
        "timeout_s": timeout_s,
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2) + "\n").encode()
    values = {"VENV": VENV, "CACHE_DIR": CACHE_DIR}
    files["setup.sh"] = _render(
        SETUP_SH,
        {
            **values,
            "TORCH_VERSION": torch_version,
            "TORCH_INDEX": TORCH_INDEX,
            "EXTRA_REQUIREMENTS": " ".join(_shell_word(r) for r in needs.requirements),
            "FETCH_ASSETS": "1" if set(needs.assets) - set(bundled) else "0",
        },
    ).encode()
    files["run_autograder"] = _render(RUN_AUTOGRADER, values).encode()

    forbidden = [n for n in files if n.startswith(("solutions/", "graders/mutants/"))]
    if forbidden:  # pragma: no cover - guarded by construction; never ship these
        raise BundleError(f"refusing to bundle {forbidden}")
    _write_zip(output, files, executable={"setup.sh", "run_autograder"})
    return Bundle(output, exercises, sorted(files), torch_version, needs, bundled)


def _write_zip(output: Path, files: dict[str, Path | bytes], executable: set[str]) -> None:
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(files):
                content = files[name]
                data = content.read_bytes() if isinstance(content, Path) else content
                info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (0o100755 if name in executable else 0o100644) << 16
                archive.writestr(info, data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private
        os.replace(tmp, output)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise BundleError(f"cannot write {output}: {exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- finding the learner's modules in /autograder/submission -----------------------


@dataclass
class Staged:
    directory: Path  # laid out like exercises/, holding only the modules found
    found: dict[str, str]  # catalog module -> where it came from in the submission
    notes: list[str]  # for the learner: flat files mapped, ambiguous or unused files


def _candidates(source: Path) -> dict[str, tuple[int, Callable[[], bytes]]]:
    """``.py`` files in the submission (by posix path) -> (size, reader); a submission that holds no
    ``.py`` file but one ``.zip`` (an upload Gradescope did not unpack) is read from the zip."""
    from llmkit.grading import SubmissionError, _zip_members

    py: dict[str, Path] = {}
    zips: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(source):  # never follows symbolic links
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file() or name.startswith("."):
                continue
            if name.endswith(".py"):
                py[path.relative_to(source).as_posix()] = path
            elif name.lower().endswith(".zip"):
                zips.append(path)
    if py or not zips:
        return {name: (path.stat().st_size, path.read_bytes) for name, path in py.items()}
    if len(zips) > 1:
        names = ", ".join(z.relative_to(source).as_posix() for z in zips)
        raise SubmissionError(f"your submission holds several zip files ({names}) and no .py file")
    archive = zips[0]
    members = _zip_members(archive)
    parts = {n: info for n, info in members.items() if n.endswith(".py") and not _skipped(n)}

    def reader(info: zipfile.ZipInfo) -> Callable[[], bytes]:
        def read() -> bytes:
            with zipfile.ZipFile(archive) as z:
                return z.read(info)

        return read

    return {name: (info.file_size, reader(info)) for name, info in parts.items()}


def _skipped(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p in SKIP_DIRS or p.startswith(".") for p in parts)


def stage_submission(source: Path, catalog: Catalog, target: Path) -> Staged:
    """Copy the submission's catalog modules into ``target`` laid out like ``exercises/``.

    Modules are found where ``exercises/`` would hold them (``section2/attention.py``, under
    any top folder); a catalog module not found that way is taken from a file of the same
    name anywhere in the submission (``attention.py``), when exactly one file has that name
    and no other catalog module shares it. Raises :class:`llmkit.grading.SubmissionError`
    when no module is found.
    """
    from llmkit.grading import MAX_MODULE_BYTES, SubmissionError, _strip_common_prefix

    source = Path(source)
    if not source.is_dir():
        raise SubmissionError("no submission was found (the submission folder is missing)")
    candidates = _candidates(source)
    modules = {ex.module for ex in catalog.exercises}
    prefix = _strip_common_prefix(candidates, modules)
    chosen = {m: prefix + m for m in sorted(modules) if prefix + m in candidates}
    notes = []
    by_name: dict[str, list[str]] = {}
    for module in modules:
        by_name.setdefault(PurePosixPath(module).name, []).append(module)
    used = set(chosen.values())
    for module in sorted(modules - set(chosen)):
        name = PurePosixPath(module).name
        files = [c for c in candidates if PurePosixPath(c).name == name and c not in used]
        if not files:
            continue
        if len(by_name[name]) > 1:
            notes.append(
                f"{files[0]} was not graded: {name} could be any of {', '.join(sorted(by_name[name]))}; "
                f"upload it as sectionN/{name}"
            )
        elif len(files) > 1:
            notes.append(
                f"{module} was not graded: your submission has {len(files)} files named {name} "
                f"({', '.join(files)}); keep exactly one"
            )
        else:
            chosen[module] = files[0]
            used.add(files[0])
    if not chosen:
        wanted = "; ".join(
            f"{ex.id}: {PurePosixPath(ex.module).name} (or {ex.module})" for ex in catalog.exercises
        )
        if not candidates:
            raise SubmissionError(f"your submission has no Python files. Upload your modules: {wanted}")
        seen = ", ".join(sorted(candidates)[:10]) + (", ..." if len(candidates) > 10 else "")
        raise SubmissionError(
            f"none of your files is an exercise module (found: {seen}). Upload your modules: {wanted}"
        )
    for module, origin in sorted(chosen.items()):
        size = candidates[origin][0]
        if size > MAX_MODULE_BYTES:
            notes.append(f"{origin} was not graded: it is {size} bytes, more than a module can be")
            del chosen[module]
    if not chosen:
        raise SubmissionError("; ".join(notes))
    target.mkdir(parents=True, exist_ok=True)
    for module, origin in sorted(chosen.items()):
        path = target / module
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(candidates[origin][1]())
    graded = ", ".join(
        m if o == m or o.endswith("/" + m) else f"{o} (as {m})" for m, o in sorted(chosen.items())
    )
    notes.insert(0, f"Graded from your submission: {graded}.")
    return Staged(target, chosen, notes)


# --- grading one submission (run_autograder) ----------------------------------------


def _submission_id(root: Path) -> str:
    """Gradescope's submission id from ``submission_metadata.json``, else ``submission``."""
    from llmkit.reports import safe_name

    try:
        meta = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
        sid = meta.get("id") if isinstance(meta, dict) else None
    except (OSError, ValueError):
        sid = None
    return safe_name(f"gradescope-{sid}") if sid not in (None, "") else "submission"


def crash_results(error: str) -> dict:
    """A valid results.json for a submission that could not be graded at all."""
    return {
        "score": 0.0,
        "output": (
            "The autograder failed while grading this submission, so it scored 0 for now. "
            f"Please tell your instructor. ({error})"
        ),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [],
    }


def grade_gradescope_submission(
    root: Path, *, seed: int | None = None, timeout_s: float | None = None
) -> dict:
    """Grade ``root/submission`` with the bundle in ``root/source``; the results.json document."""
    from llmkit.catalog import load_catalog
    from llmkit.grading import SubmissionError, failed_result, grade_submission
    from llmkit.reports import gradescope_results

    source = root / "source"
    catalog = load_catalog(source)
    exercises = list(catalog.exercises)
    if timeout_s is None:
        try:
            timeout_s = float(json.loads((source / MANIFEST).read_text(encoding="utf-8"))["timeout_s"])
        except (OSError, ValueError, KeyError, TypeError):
            timeout_s = DEFAULT_TIMEOUT_S
    if seed is None:
        import random

        seed = random.SystemRandom().randrange(2**31)
    sid = _submission_id(root)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="llmkit-gradescope-") as tmp:
        try:
            staged = stage_submission(root / "submission", catalog, Path(tmp) / sid)
        except SubmissionError as exc:
            result = failed_result(sid, exercises, seed, str(exc))
        else:
            notes = staged.notes
            result = grade_submission(
                staged.directory, catalog, exercises=exercises, seed=seed, sandbox=True, timeout_s=timeout_s
            )
    doc = gradescope_results(result, catalog)
    doc["output"] = "\n\n".join([*notes, doc["output"]])
    return doc


def autograde(root: Path, *, seed: int | None = None, timeout_s: float | None = None) -> dict:
    """Grade and write ``root/results/results.json``; always writes one, even on a crash."""
    from llmkit.result import write_json_atomically

    results = Path(root) / "results" / "results.json"
    try:
        doc = grade_gradescope_submission(Path(root), seed=seed, timeout_s=timeout_s)
    except BaseException as exc:  # noqa: BLE001 - whatever happens, Gradescope gets a result
        traceback.print_exc(file=sys.stdout)  # stdout is shown to instructors only
        doc = crash_results(f"{type(exc).__name__}: {exc}".strip())
    write_json_atomically(results, doc)
    print(f"llmkit autograder: {doc.get('score', 0):g} points -> {results}")
    print(doc.get("output", ""))
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llmkit.gradescope_bundle", description="grade a Gradescope submission"
    )
    parser.add_argument("--root", default=os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    parser.add_argument("--seed", type=int, default=None, help="default: $LLMKIT_SEED, else a fresh one")
    parser.add_argument("--timeout", type=float, default=None, help="default: the bundle's timeout_s")
    args = parser.parse_args(argv)
    seed = args.seed
    if seed is None and os.environ.get("LLMKIT_SEED", "").strip().isdigit():
        seed = int(os.environ["LLMKIT_SEED"])
    autograde(Path(args.root), seed=seed, timeout_s=args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
