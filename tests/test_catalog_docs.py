"""The catalog is the one source of exercise metadata, and everything agrees with it."""

import pytest

from llmkit.catalog import CatalogError, load_catalog
from llmkit.docs import stale_files

from .conftest import PROJECT_ROOT


def test_readmes_are_generated_from_the_catalog(catalog):
    stale = stale_files(catalog)
    assert not stale, f"run `llmkit docs --write`: {stale}"


def test_every_exercise_has_its_mirror_files_and_metadata(catalog):
    for ex in catalog.exercises:
        mirror = (f"exercises/{ex.module}", f"solutions/{ex.module}", ex.public_test, ex.grader)
        for path in (*mirror, ex.support):
            assert (PROJECT_ROOT / path).is_file(), path
        assert (PROJECT_ROOT / "exercises" / ex.section_dir / "README.md").is_file()
        assert ex.hints and ex.resources and ex.summary
        assert ex.section in {s.number for s in catalog.sections}


def test_every_section_0_to_7_is_listed(catalog):
    assert [s.number for s in catalog.sections] == list(range(8))


@pytest.mark.parametrize(
    "edit, message",
    [
        (('difficulty = "intermediate"', 'difficulty = "hard"'), "difficulty 'hard' is not one of"),
        (('track = "beginner"', 'track = "expert"'), "track 'expert' is not one of"),
        (("points = 20", 'points = "twenty"'), "'points' should be int"),
        (('module = "section2/attention.py"', 'module = "attention.py"'), "should be section<N>/<topic>.py"),
        (('id = "2.3"\n', ""), "missing required field 'id'"),
        (("[[exercise]]", "[[exercise]"), "is not valid TOML"),
        (('id = "2.3"', 'id = "two"'), "id should look like 2.3 or 1.2a"),
        (('needs = ["tiktoken"]', 'needs = "tiktoken"'), "'needs' should be a list of strings"),
        (
            ('needs = ["tiktoken"]', 'needs = ["tiktoken>=0.7"]'),
            "'needs' holds 'tiktoken>=0.7', which is not a pip",
        ),
        (('assets = ["gpt2"]', 'assets = ["gpt3"]'), "'assets' holds 'gpt3', which is not a known asset"),
        (
            ('preload = ["triton",', 'preload = ["triton-lang",'),
            "'preload' holds 'triton-lang', which is not a module",
        ),
    ],
)
def test_malformed_catalog_gives_a_clear_error(tmp_path, edit, message):
    text = (PROJECT_ROOT / "catalog.toml").read_text()
    assert edit[0] in text
    (tmp_path / "catalog.toml").write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(CatalogError, match=message):
        load_catalog(tmp_path)
