"""``llmkit show``: every exercise draws the reference at work, and a stub is "not started"."""

import io
import subprocess
import sys

import pytest

from llmkit.catalog import load_catalog
from llmkit.show import draw

from .conftest import PROJECT_ROOT

CATALOG = load_catalog(PROJECT_ROOT)
LLMKIT = [sys.executable, "-c", "import sys; from llmkit.cli import main; sys.exit(main())"]


def pixels(png: bytes):
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(png), format="png")


@pytest.mark.parametrize("exercise", CATALOG.exercises, ids=lambda ex: ex.id)
def test_the_reference_draws_a_picture_that_is_not_blank(exercise, tmp_path):
    shown = draw(CATALOG, exercise, "solutions", tmp_path)
    assert shown.status == "drawn", shown.message
    assert shown.path == tmp_path / f"{exercise.id}.png" and shown.message  # the caption
    image = pixels(shown.path.read_bytes())
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.05, "the picture is (nearly) one colour"


@pytest.mark.parametrize("exercise", CATALOG.exercises, ids=lambda ex: ex.id)
def test_a_stub_is_not_started(exercise, tmp_path):
    shown = draw(CATALOG, exercise, "exercises", tmp_path)
    assert (shown.status, shown.path) == ("not started", None), shown.message
    assert shown.message.startswith(f"{exercise.id} is not started")


def test_the_command_prints_where_the_picture_is(tmp_path):
    run = subprocess.run(
        [*LLMKIT, "show", "2.3", "--impl", "solutions", "--out", str(tmp_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert str(tmp_path / "2.3.png") in run.stdout.replace("\n", "")
    stub = subprocess.run(
        [*LLMKIT, "show", "2.3"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )
    assert stub.returncode == 0 and "2.3 is not started" in stub.stdout, stub.stdout + stub.stderr


def test_code_that_fails_while_drawing_is_named(tmp_path):
    broken = tmp_path / "impl" / "section2"
    broken.mkdir(parents=True)
    reference = (PROJECT_ROOT / "solutions/section2/attention.py").read_text()
    broken.joinpath("attention.py").write_text(
        reference + "\n\ndef scaled_dot_product_attention(q, k, v, mask=None, is_causal=False):\n"
        "    raise ValueError('shapes')\n"
    )
    shown = draw(CATALOG, CATALOG.get("2.3"), str(broken.parent), tmp_path / "out")
    assert shown.status == "error"
    assert shown.message.startswith("your code raised ValueError: shapes (attention.py, line ")
