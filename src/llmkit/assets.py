"""Files the engine caches for graders and public tests: never downloaded at test time.

A catalog entry lists the assets its tests read (``assets = [...]``); ``llmkit
fetch-assets`` puts them in the cache once: ``$LLMKIT_CACHE``, else
``~/.cache/llmkit``. Each asset is a member of a pip source distribution (fetched
with ``pip download``, never installed) or a local copy given with ``--from``, and is
checked against its sha256 when fetched and when read. What an asset *means* (how to
parse it) is the business of the support module that reads it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Asset:
    name: str  # what catalog entries list
    file: str  # its name in the cache
    sha256: str
    sdist: str  # the pip requirement of the source distribution that holds it
    member: str  # its path inside that sdist
    what: str  # for messages


ASSETS = {
    asset.name: asset
    for asset in (
        Asset(
            "gpt2",
            "gpt2.tiktoken",
            "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",  # tiktoken's r50k_base
            "openai-whisper==20250625",
            "whisper/assets/gpt2.tiktoken",
            "GPT-2's BPE ranks (MIT)",
        ),
    )
}


class AssetError(Exception):
    """An asset is unknown, corrupt or cannot be fetched. The message says what to do."""


def get(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        raise AssetError(f"unknown asset {name!r} (known: {', '.join(sorted(ASSETS))})") from None


def cache_dir() -> Path:
    return Path(os.environ.get("LLMKIT_CACHE") or Path.home() / ".cache" / "llmkit")


def path(name: str) -> Path:
    """Where asset ``name`` is cached (it may not be there)."""
    return cache_dir() / get(name).file


def missing(name: str) -> str:
    """Why a test that needs asset ``name`` skips."""
    return f"{get(name).what} not in the local cache ({path(name)}); run `llmkit fetch-assets` once"


def read(name: str) -> bytes | None:
    """Asset ``name``'s bytes from the cache, or None if it is not cached."""
    where = path(name)
    if not where.is_file():
        return None
    data = where.read_bytes()
    if hashlib.sha256(data).hexdigest() != get(name).sha256:
        raise AssetError(f"{where} is corrupt (sha256 mismatch); delete it and run `llmkit fetch-assets`")
    return data


def fetch(name: str, source: str | os.PathLike | None = None) -> Path:
    """Put asset ``name`` in the cache: from ``source`` (the file itself or the sdist that
    holds it) or by ``pip download`` of its sdist. Returns where it is cached."""
    asset, target = get(name), path(name)
    with tempfile.TemporaryDirectory() as tmp:
        if source is None:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", tmp]
            subprocess.run([*cmd, asset.sdist], check=True)
            source = next(p for p in Path(tmp).iterdir() if tarfile.is_tarfile(p))
        if tarfile.is_tarfile(source):
            with tarfile.open(source) as tar:
                member = next((m for m in tar.getmembers() if m.name.endswith(asset.member)), None)
                if member is None:
                    raise AssetError(f"{source} holds no {asset.member}")
                data = tar.extractfile(member).read()
        else:
            data = Path(source).read_bytes()
    if hashlib.sha256(data).hexdigest() != asset.sha256:
        raise AssetError(f"{source}: not {asset.what} (sha256 mismatch)")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp_path, target)
    return target
