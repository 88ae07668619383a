"""The interpreter's bounds check (llmkit.triton_bounds): what it reports, what it lets through."""

import os

import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")
triton = pytest.importorskip("triton")
import torch  # noqa: E402
import triton.language as tl  # noqa: E402

from llmkit import triton_bounds  # noqa: E402

pytestmark = pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1", reason="interpreter only")


@triton.jit
def _copy_rows(
    src, dst, n_rows, stride_src, stride_dst, COLS: tl.constexpr, ROWS: tl.constexpr, MASK_LOAD: tl.constexpr
):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, COLS)
    keep = (rows < n_rows)[:, None]
    if MASK_LOAD:
        x = tl.load(src + rows[:, None] * stride_src + cols[None, :], mask=keep, other=0.0)
    else:
        x = tl.load(src + rows[:, None] * stride_src + cols[None, :])
    tl.store(dst + rows[:, None] * stride_dst + cols[None, :], x, mask=keep)


def _launch(src, dst, cols, mask_load=True):
    rows = 16
    _copy_rows[(triton.cdiv(src.shape[0], rows),)](
        src, dst, src.shape[0], src.stride(0), dst.stride(0), COLS=cols, ROWS=rows, MASK_LOAD=mask_load
    )


def test_masked_kernel_passes_and_copies():
    src = torch.randn(37, 16)
    dst = torch.zeros(37, 16)
    _launch(src, dst, 16)
    assert torch.equal(src, dst)


def test_unmasked_tail_load_is_reported_and_dropped():
    backing = torch.full((64, 16), float("nan"))
    src = backing[:37]  # rows 37..63 exist in memory but are not src's
    src.copy_(torch.randn(37, 16))
    dst = torch.zeros(37, 16)
    with pytest.raises(triton_bounds.OutOfBoundsAccess) as caught:
        _launch(src, dst, 16, mask_load=False)
    message = str(caught.value)
    assert "tl.load outside src: 176 address(es)" in message  # 48 rows loaded, 37 exist, 16 columns
    assert "src[37, 0]" in message and "program (2, 0, 0)" in message
    assert triton_bounds.parse_report(message) == {("load", "src")}
    assert torch.equal(dst, src)  # the stray lanes were dropped, the launch finished


def test_padding_inside_a_strided_view_is_not_owned():
    """A view with padded rows does not own its padding: reading column 16 of a
    (37, 16) view with row stride 24 is out of bounds although the memory exists."""
    src = torch.randn(37, 24)[:, :16]
    dst = torch.zeros(37, 32)
    with pytest.raises(triton_bounds.OutOfBoundsAccess) as caught:
        _launch(src, dst, 32)
    assert ("load", "src") in triton_bounds.parse_report(str(caught.value))
    assert "src[0, 16]" in str(caught.value)


def test_parse_report_ignores_other_messages():
    assert triton_bounds.parse_report("out for case: 3 of 8 elements differ") == set()
