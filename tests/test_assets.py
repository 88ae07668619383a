"""The engine's asset cache (llmkit.assets): what the catalog lists is fetched once, checked
against its sha256 when fetched and when read, and never downloaded by a test."""

from __future__ import annotations

import pytest

from llmkit import assets
from llmkit.catalog import assets_in_use

from .conftest import PROJECT_ROOT

REAL = assets.path("gpt2")  # the developer's own cache, if `llmkit fetch-assets` ran


def test_the_catalog_lists_known_assets():
    assert assets_in_use(PROJECT_ROOT) == ["gpt2"]
    with pytest.raises(assets.AssetError, match="unknown asset 'gpt3' \\(known: gpt2\\)"):
        assets.get("gpt3")


def test_a_missing_asset_reads_as_none_and_says_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMKIT_CACHE", str(tmp_path))
    assert assets.read("gpt2") is None
    assert str(tmp_path / "gpt2.tiktoken") in assets.missing("gpt2")
    assert "llmkit fetch-assets" in assets.missing("gpt2")


def test_wrong_bytes_are_refused_when_fetched_and_when_read(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMKIT_CACHE", str(tmp_path / "cache"))
    impostor = tmp_path / "gpt2.tiktoken"
    impostor.write_bytes(b"not the ranks\n")
    with pytest.raises(assets.AssetError, match="sha256 mismatch"):
        assets.fetch("gpt2", impostor)
    assert not assets.path("gpt2").exists()
    assets.path("gpt2").parent.mkdir()
    assets.path("gpt2").write_bytes(b"corrupted\n")
    with pytest.raises(assets.AssetError, match="is corrupt"):
        assets.read("gpt2")


@pytest.mark.skipif(not REAL.is_file(), reason="GPT-2's ranks are not cached here (llmkit fetch-assets)")
def test_fetch_from_a_local_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMKIT_CACHE", str(tmp_path))
    assert assets.fetch("gpt2", REAL) == tmp_path / "gpt2.tiktoken"
    assert assets.read("gpt2") == REAL.read_bytes()
