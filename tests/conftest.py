"""Fixtures for the engine's own tests."""

import shutil
from pathlib import Path

import pytest

from llmkit.catalog import load_catalog

pytest_plugins = ["pytester"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("catalog.toml", "pyproject.toml", "README.md", "exercises", "solutions", "graders")


@pytest.fixture(scope="session")
def catalog():
    return load_catalog(PROJECT_ROOT)


def copy_project(root: Path) -> Path:
    """Copy the kit's course content (not the engine) into ``root``; return it."""
    root.mkdir(exist_ok=True)
    for name in PROJECT_FILES:
        src = PROJECT_ROOT / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, root / name)
    return root


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A private copy of the kit's course content, to break on purpose."""
    return copy_project(tmp_path / "kit")


@pytest.fixture
def kit(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester whose directory holds a copy of the kit's course content."""
    copy_project(pytester.path)
    return pytester
