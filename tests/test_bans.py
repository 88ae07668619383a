"""Unit tests for llmkit.bans: the static scan and the runtime trap."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llmkit.bans import (
    DISPATCH_OPS,
    PYTHON_ONLY,
    RUNS,
    BannedCallError,
    Violation,
    _resolve,
    assert_no_banned_mentions,
    is_installed,
    scan_files,
    scan_source,
    trap_banned_calls,
)
from llmkit.catalog import load_catalog
from llmkit.checks import CheckFailure

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BANNED = load_catalog(PROJECT_ROOT).get("2.3").banned
SOFTMAX_BANS = {name for name in BANNED if name.endswith(".softmax")}


def test_the_catalog_ban_list_covers_the_attention_shortcuts():
    assert "torch.nn.functional.scaled_dot_product_attention" in BANNED
    assert "torch.nn.MultiheadAttention" in BANNED
    assert {"torch.softmax", "torch.nn.functional.softmax", "torch.Tensor.softmax"} <= SOFTMAX_BANS


# --- static scan -------------------------------------------------------------

HEADER = "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n"  # 3 lines


@pytest.mark.parametrize(
    ("snippet", "banned_names"),
    [
        ("y = F.scaled_dot_product_attention(q, k, v)", {"torch.nn.functional.scaled_dot_product_attention"}),
        ("y = torch.nn.functional.softmax(x)", SOFTMAX_BANS),
        ("y = x.softmax(-1)", SOFTMAX_BANS),
        ("y = torch.softmax(x, -1)", SOFTMAX_BANS),
        ("from torch.nn.functional import softmax as s", SOFTMAX_BANS),
        (
            "f = getattr(F, 'scaled_dot_product_attention')",
            {"torch.nn.functional.scaled_dot_product_attention"},
        ),
        ("m = nn.MultiheadAttention(4, 2)", {"torch.nn.MultiheadAttention"}),
        ("from torch.nn import MultiheadAttention", {"torch.nn.MultiheadAttention"}),
        ("y = F.multi_head_attention_forward(*args)", {"torch.nn.functional.multi_head_attention_forward"}),
    ],
)
def test_scan_flags_each_kind_of_mention_with_its_line(snippet, banned_names):
    source = HEADER + "\n" + "def f(q, k, v, x, args):\n    " + snippet + "\n"
    found = scan_source(source, "learner.py", BANNED)
    assert len(found) == 1, found
    (v,) = found
    assert v.line == 6
    assert v.file == "learner.py"
    assert set(v.name.split(" / ")) & set(banned_names)
    assert v.source.strip() == snippet


def test_scan_reports_every_mention_sorted_by_line():
    source = textwrap.dedent(
        """\
        import torch.nn.functional as F
        from torch import nn


        def attention(q, k, v):
            m = nn.MultiheadAttention(4, 2)
            w = (q @ k.transpose(-2, -1)).softmax(-1)
            return F.scaled_dot_product_attention(q, k, v)
        """
    )
    found = scan_source(source, "a.py", BANNED)
    assert [v.line for v in found] == [6, 7, 8]
    assert found[0].name == "torch.nn.MultiheadAttention"
    assert found[2].name == "torch.nn.functional.scaled_dot_product_attention"


def test_scan_does_not_flag_the_learners_own_functions():
    source = textwrap.dedent(
        '''\
        """Attention without library shortcuts; softmax is written by hand."""
        import torch


        def softmax(x, dim=-1):
            # a stable softmax: subtract the max first
            e = torch.exp(x - x.amax(dim, keepdim=True))
            return e / e.sum(dim, keepdim=True)


        def scaled_dot_product_attention(q, k, v):
            return softmax(q @ k.transpose(-2, -1), dim=-1) @ v


        out = scaled_dot_product_attention(1, 2, 3)
        name = "softmax"
        '''
    )
    assert scan_source(source, "attention.py", BANNED) == []


def test_scan_ignores_names_that_are_not_banned():
    assert scan_source("import torch\ny = torch.log_softmax(x, -1)\nz = x.exp()\n", "a.py", BANNED) == []


def test_reference_solution_scans_clean():
    assert scan_files([str(PROJECT_ROOT / "solutions" / "section2" / "attention.py")], BANNED) == []


def test_violation_str_names_file_line_source_and_ban():
    v = Violation("/some/dir/attention.py", 12, "torch.softmax", "    y = torch.softmax(x, -1)\n")
    assert str(v) == "attention.py line 12: y = torch.softmax(x, -1)  (bans torch.softmax)"


def test_scan_files_and_assert_no_banned_mentions(tmp_path):
    clean = tmp_path / "clean.py"
    clean.write_text("def softmax(x):\n    return x\n", encoding="utf-8")
    dirty = tmp_path / "dirty.py"
    dirty.write_text("import torch\n\n\ny = torch.softmax(x, -1)\n", encoding="utf-8")
    assert scan_files([str(clean)], BANNED) == []
    found = scan_files([str(clean), str(dirty)], BANNED)
    assert [(v.file, v.line) for v in found] == [(str(dirty), 4)]

    assert_no_banned_mentions([str(clean)], BANNED, "2.3")
    with pytest.raises(CheckFailure, match="exercise 2.3 must be written without") as info:
        assert_no_banned_mentions([str(clean), str(dirty)], BANNED, "2.3")
    assert "dirty.py line 4: y = torch.softmax(x, -1)" in str(info.value)
    assert "clean.py" not in str(info.value)


# --- runtime trap ------------------------------------------------------------

LEARNER_SOURCE = textwrap.dedent(
    """\
    import torch
    import torch.nn.functional as F
    from torch import nn


    def use_softmax(x):
        return torch.softmax(x, -1)  # MARK torch.softmax


    def use_sdpa(q, k, v):
        return F.scaled_dot_product_attention(q, k, v)  # MARK sdpa


    def use_mha():
        return nn.MultiheadAttention(4, 2)  # MARK mha


    def use_method(x):
        return x.softmax(-1)  # MARK method


    def use_functional_softmax(x):
        return F.softmax(x, dim=-1)  # MARK F.softmax


    def use_special(x):
        return torch.special.softmax(x, -1)  # MARK special


    def swallow(x):
        try:
            return torch.softmax(x, -1)  # MARK swallow
        except Exception:
            return x


    def call_back(fn, x):
        return fn(x)


    def allowed(x):
        e = torch.exp(x - x.amax(-1, keepdim=True))
        return e / e.sum(-1, keepdim=True)
    """
)


def _line(mark: str) -> int:
    for number, text in enumerate(LEARNER_SOURCE.splitlines(), start=1):
        if text.endswith(f"# MARK {mark}"):
            return number
    raise AssertionError(mark)


@pytest.fixture
def learner(tmp_path):
    path = tmp_path / "learner_attention.py"
    path.write_text(LEARNER_SOURCE, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("llmkit_test_bans_learner", str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.use_softmax.__code__.co_filename == str(path)
    return module


def _qkv():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(1, 2, 3, 4, generator=g) for _ in range(3)]


def _originals():
    return {
        "torch.softmax": torch.__dict__["softmax"],
        "F.softmax": F.__dict__["softmax"],
        "F.sdpa": F.__dict__["scaled_dot_product_attention"],
        "F.mhaf": F.__dict__["multi_head_attention_forward"],
        "special.softmax": torch.special.__dict__["softmax"],
        "Tensor.softmax": torch.Tensor.softmax,
        "MHA.__init__": nn.MultiheadAttention.__dict__["__init__"],
    }


# Recorded at import, before any test installs a trap.
TENSOR_DICT_HAS_SOFTMAX = "softmax" in torch.Tensor.__dict__


def _assert_restored(before):
    after = _originals()
    for key, value in before.items():
        assert after[key] is value, key
    assert ("softmax" in torch.Tensor.__dict__) == TENSOR_DICT_HAS_SOFTMAX


CALLS = [
    ("use_softmax", "torch.softmax", "torch.softmax", lambda: (torch.randn(2, 3),)),
    ("use_sdpa", "torch.nn.functional.scaled_dot_product_attention", "sdpa", _qkv),
    ("use_mha", "torch.nn.MultiheadAttention", "mha", lambda: ()),
    ("use_method", "torch.Tensor.softmax", "method", lambda: (torch.randn(2, 3),)),
    ("use_functional_softmax", "torch.nn.functional.softmax", "F.softmax", lambda: (torch.randn(2, 3),)),
    ("use_special", "torch.special.softmax", "special", lambda: (torch.randn(2, 3),)),
]


@pytest.mark.parametrize(("fn_name", "banned_name", "mark", "make_args"), CALLS)
def test_trap_raises_when_learner_code_calls_a_banned_object(learner, fn_name, banned_name, mark, make_args):
    args = make_args()
    with trap_banned_calls(BANNED, [learner.__file__], "2.3") as trap:
        with pytest.raises(BannedCallError) as info:
            getattr(learner, fn_name)(*args)
    msg = str(info.value)
    where = f"learner_attention.py line {_line(mark)}"
    assert f"exercise 2.3 bans {banned_name}, and your code called it ({where})" in msg
    assert "Hint:" in msg
    assert trap.calls == [f"{banned_name} ({where})"]
    assert isinstance(info.value, CheckFailure)


def test_banned_calls_work_from_code_that_is_not_the_learners(learner):
    q, k, v = _qkv()
    x = torch.randn(2, 3)
    with trap_banned_calls(BANNED, [learner.__file__], "2.3") as trap:
        expected = torch.exp(x) / torch.exp(x).sum(-1, keepdim=True)
        assert torch.allclose(torch.softmax(x, -1), expected)
        assert torch.allclose(F.softmax(x, dim=-1), expected)
        assert torch.allclose(x.softmax(-1), expected)
        assert torch.allclose(torch.special.softmax(x, -1), expected)
        out = F.scaled_dot_product_attention(q, k, v)
        assert torch.allclose(out, torch.softmax(q @ k.transpose(-2, -1) / 2.0, -1) @ v, atol=1e-6)
        mha = nn.MultiheadAttention(4, 2, batch_first=True)
        assert isinstance(mha, nn.MultiheadAttention)
        y, _ = mha(q[0], q[0], q[0])  # forward uses F.multi_head_attention_forward
        assert y.shape == (2, 3, 4)
        assert torch.allclose(learner.allowed(x), expected, atol=1e-6)  # learner code without bans
    assert trap.calls == []


def test_trap_catches_indirect_calls_through_learner_frames(learner):
    with trap_banned_calls(BANNED, [learner.__file__], "2.3") as trap:
        with pytest.raises(BannedCallError, match="bans torch.softmax"):
            learner.call_back(lambda t: torch.softmax(t, -1), torch.randn(3))
    assert len(trap.calls) == 1


def test_trap_records_calls_the_learner_swallows(learner):
    x = torch.randn(2, 3)
    with trap_banned_calls(BANNED, [learner.__file__], "2.3") as trap:
        result = learner.swallow(x)
        assert result is x  # the learner's except clause ran
    assert trap.calls == [f"torch.softmax (learner_attention.py line {_line('swallow')})"]


def test_trap_does_nothing_for_files_it_was_not_given(learner, tmp_path):
    x = torch.randn(2, 3)
    with trap_banned_calls(BANNED, [str(tmp_path / "other.py")], "2.3") as trap:
        assert torch.allclose(learner.use_softmax(x), x.softmax(-1))
    assert trap.calls == []


def test_trap_restores_the_original_objects(learner):
    before = _originals()
    with trap_banned_calls(BANNED, [learner.__file__], "2.3"):
        assert torch.softmax is not before["torch.softmax"]
        assert F.scaled_dot_product_attention is not before["F.sdpa"]
        assert torch.Tensor.softmax is not before["Tensor.softmax"]
        assert nn.MultiheadAttention.__init__ is not before["MHA.__init__"]
        assert torch.softmax.__wrapped__ is before["torch.softmax"]
    _assert_restored(before)
    assert torch.softmax is before["torch.softmax"]
    assert torch.nn.functional.scaled_dot_product_attention is before["F.sdpa"]
    assert torch.Tensor.softmax is before["Tensor.softmax"]
    assert nn.MultiheadAttention.__init__ is before["MHA.__init__"]
    if not TENSOR_DICT_HAS_SOFTMAX:
        assert "softmax" not in torch.Tensor.__dict__
    x = torch.randn(2, 3)
    assert torch.allclose(learner.use_softmax(x), learner.use_method(x))  # no longer trapped


def test_trap_restores_after_an_exception_in_the_block(learner):
    before = _originals()
    with pytest.raises(BannedCallError):
        with trap_banned_calls(BANNED, [learner.__file__], "2.3"):
            learner.use_mha()
    _assert_restored(before)
    with pytest.raises(KeyError):
        with trap_banned_calls(BANNED, [learner.__file__], "2.3"):
            raise KeyError("boom")
    _assert_restored(before)
    assert isinstance(learner.use_mha(), nn.MultiheadAttention)


def test_trap_restores_what_it_installed_when_a_banned_name_cannot_be_resolved():
    before = _originals()
    with pytest.raises((AttributeError, ValueError)):
        with trap_banned_calls(
            ["torch.softmax", "torch.Tensor.softmax", "torch.no_such_function"], [], "2.3"
        ):
            pytest.fail("the block must not run")
    _assert_restored(before)


def test_trap_rejects_a_misspelt_name_in_an_installed_package():
    with pytest.raises(ValueError, match="cannot resolve banned name 'torch.nn.functional.no_such_fn'"):
        with trap_banned_calls(["torch.nn.functional.no_such_fn"], [], "2.3"):
            pass


# --- runtime trap at torch's dispatcher ---------------------------------------

CAPTURED_SOURCE = textwrap.dedent(
    """\
    import importlib
    import threading

    import torch

    _sdpa = getattr(importlib.import_module("torch.nn." + "functional"), "scaled_dot_" + "product_attention")
    _method = getattr(torch.Tensor, "soft" + "max")
    _aten = getattr(torch.ops.aten, "_soft" + "max")
    _later = lambda t: _method(t, -1)  # MARK stored
    exported = _sdpa  # handed out as the module's own


    def captured(q, k, v):
        return _sdpa(q, k, v)  # MARK captured


    def aten_direct(x):
        return _aten(x, -1, False)  # MARK aten


    def method(x):
        return _method(x, -1)  # MARK method


    def stored_lambda(x):
        return _later(x)


    def inference(q, k, v):
        with torch.inference_mode():
            return _sdpa(q, k, v)  # MARK inference


    def three_d(q, k, v):
        return _sdpa(q[0], k[0], v[0])  # MARK 3d


    def on_a_thread(x):
        out = []

        def work():
            try:
                out.append(_method(x, -1))  # MARK thread
            except Exception as exc:
                out.append(exc)

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        return out[0]


    def allowed(x, w, target):
        y = torch.nn.functional.linear(x, w) @ w  # matmul and nn.Linear are allowed in 2.3
        return torch.nn.functional.cross_entropy(y, target)  # runs _log_softmax, not banned in 2.3
    """
)


def _captured_line(mark: str) -> int:
    for number, text in enumerate(CAPTURED_SOURCE.splitlines(), start=1):
        if text.endswith(f"# MARK {mark}"):
            return number
    raise AssertionError(mark)


@pytest.fixture
def captured(tmp_path):
    """A learner module that looked the banned functions up at import, outside any trap."""
    path = tmp_path / "captured_attention.py"
    path.write_text(CAPTURED_SOURCE, encoding="utf-8")
    assert scan_source(CAPTURED_SOURCE, str(path), BANNED) == []  # the static scan cannot see them
    spec = importlib.util.spec_from_file_location("llmkit_test_bans_captured", str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SDPA_NAME = "torch.nn.functional.scaled_dot_product_attention"
SOFTMAX_NAMES = "torch.softmax / torch.nn.functional.softmax / torch.special.softmax / torch.Tensor.softmax"


@pytest.mark.parametrize(
    ("fn_name", "mark", "names", "op", "make_args"),
    [
        ("captured", "captured", SDPA_NAME, "aten.scaled_dot_product_attention", _qkv),
        ("aten_direct", "aten", SOFTMAX_NAMES, "aten._softmax", lambda: (torch.randn(2, 3),)),
        ("method", "method", SOFTMAX_NAMES, "aten.softmax", lambda: (torch.randn(2, 3),)),
        ("stored_lambda", "stored", SOFTMAX_NAMES, "aten.softmax", lambda: (torch.randn(2, 3),)),
        ("inference", "inference", SDPA_NAME, "aten.scaled_dot_product_attention", _qkv),
        ("three_d", "3d", SDPA_NAME, "aten.scaled_dot_product_attention", _qkv),
    ],
)
def test_dispatcher_catches_banned_work_however_it_was_looked_up(
    captured, fn_name, mark, names, op, make_args
):
    args = make_args()
    with trap_banned_calls(BANNED, [captured.__file__], "2.3") as trap:
        with pytest.raises(BannedCallError) as info:
            getattr(captured, fn_name)(*args)
    where = f"captured_attention.py line {_captured_line(mark)}"
    assert f"exercise 2.3 bans {names}, and your code ran it ({op}, {where})" in str(info.value)
    assert "Hint:" in str(info.value)
    assert trap.calls == [f"{names} ({op}, {where})"]


def test_dispatcher_catches_each_sdpa_backend(captured):
    """The CPU flash kernel and the math fallback, reached with autograd on."""
    q, k, v = (t.requires_grad_() for t in _qkv())
    with trap_banned_calls(["torch._scaled_dot_product_flash_attention_for_cpu"], [captured.__file__], "7.1"):
        with pytest.raises(
            BannedCallError, match=r"ran it \(aten._scaled_dot_product_flash_attention_for_cpu"
        ):
            captured.captured(q, k, v)
    with trap_banned_calls(["torch._scaled_dot_product_attention_math"], [captured.__file__], "7.1"):
        with pytest.raises(BannedCallError, match=r"ran it \(aten._scaled_dot_product_attention_math"):
            captured.three_d(q, k, v)


def test_grader_side_calls_are_not_counted(captured):
    """The grader's own calls (its oracles, and even the learner's captured objects called
    from grader code) run normally while a trap is installed in-process."""
    q, k, v = _qkv()
    x = torch.randn(2, 3)
    with trap_banned_calls(BANNED, [captured.__file__], "2.3") as trap:
        want = torch.exp(x) / torch.exp(x).sum(-1, keepdim=True)
        assert torch.allclose(torch.ops.aten._softmax(x, -1, False), want)
        assert torch.allclose(captured._method(x, -1), want)
        with torch.inference_mode():
            out = F.scaled_dot_product_attention(q, k, v)
        assert torch.allclose(captured.exported(q, k, v), out)
        mha = nn.MultiheadAttention(4, 2, batch_first=True)
        y, w = mha(q[0], q[0], q[0])
        y.sum().backward()
        assert w.shape == (2, 3, 3)
    assert trap.calls == []


def test_learner_work_on_another_thread_is_caught(captured):
    x = torch.randn(2, 3)
    with trap_banned_calls(BANNED, [captured.__file__], "2.3") as trap:
        error = captured.on_a_thread(x)
    assert isinstance(error, BannedCallError)
    assert trap.calls == [
        f"{SOFTMAX_NAMES} (aten.softmax, captured_attention.py line {_captured_line('thread')})"
    ]


def test_allowed_library_functions_are_not_caught(captured):
    x, w = torch.randn(4, 3, requires_grad=True), torch.randn(3, 3)
    with trap_banned_calls(BANNED, [captured.__file__], "2.3") as trap:
        captured.allowed(x, w, torch.tensor([0, 1, 2, 0])).backward()
    assert trap.calls == []
    assert x.grad is not None


def test_in_the_sandbox_block_every_banned_kernel_counts(captured):
    """block_is_learner_code (the sandbox worker, where only learner code runs in the
    block): a library function the module handed out as its own counts, though no
    learner frame is on the stack."""
    q, k, v = _qkv()
    x = torch.randn(2, 3)
    with trap_banned_calls(BANNED, [captured.__file__], "2.3", block_is_learner_code=True) as trap:
        with pytest.raises(BannedCallError) as info:
            captured.exported(q, k, v)
        assert str(info.value).startswith(
            f"exercise 2.3 bans {SDPA_NAME}, and your code ran it (aten.scaled_dot_product_attention)"
        )
        with pytest.raises(BannedCallError):
            captured._method(x, -1)  # grader-side in-process, but the whole block is the learner's here
    assert trap.calls == [
        f"{SDPA_NAME} (aten.scaled_dot_product_attention)",
        f"{SOFTMAX_NAMES} (aten.softmax)",
    ]


def test_the_reference_solution_is_not_caught():
    """Everything the 2.3 reference does, with every banned kernel counted (the sandbox's
    setting), autograd on and off."""
    from llmkit.impl import resolve_root

    catalog = load_catalog(PROJECT_ROOT)
    exercise = catalog.get("2.3")
    ref = resolve_root("solutions", catalog.root).load(exercise)
    files = [ref.__file__]
    q, k, v = (t.requires_grad_() for t in _qkv())
    mask = torch.rand(3, 3) > 0.5
    with trap_banned_calls(exercise.banned, files, "2.3", block_is_learner_code=True) as trap:
        ref.softmax(torch.randn(2, 5), dim=0)
        ref.scaled_dot_product_attention(q, k, v, mask=mask, is_causal=True).sum().backward()
        with torch.inference_mode():
            ref.scaled_dot_product_attention(q, k, v)
        mha = ref.MultiHeadAttention(4, 2)
        mha(q[0], mask=mask).sum().backward()
    assert trap.calls == []


def test_a_ban_outside_torch_is_guarded_and_an_uninstalled_one_only_scanned(tmp_path):
    """sklearn-style bans have no aten operators: the guard catches a direct call. A ban of
    a package that is not installed is flagged by the scan; the trap has nothing to guard."""
    banned = ["json.dumps", "no_such_package_llmkit.estimate"]
    learner = tmp_path / "learner.py"
    learner.write_text("import json\n\ndef run():\n    return json.dumps([1])\n")
    found = scan_source("from no_such_package_llmkit import estimate\n", "learner.py", banned)
    assert [v.name for v in found] == ["no_such_package_llmkit.estimate"]
    spec = importlib.util.spec_from_file_location("llmkit_ban_learner", learner)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with trap_banned_calls(banned, [str(learner)], "9.9") as trap, pytest.raises(BannedCallError):
        module.run()
    assert len(trap.calls) == 1 and trap.calls[0].startswith("json.dumps")
    import json

    assert json.dumps([1]) == "[1]"  # restored


def test_every_catalog_ban_is_known_to_the_dispatcher():
    """Each banned torch name maps to aten operators (some of which this torch has), or
    runs only through banned names that the same exercise bans too. A ban outside torch
    has no operators, but must name an object of its (installed) library."""
    for exercise in load_catalog(PROJECT_ROOT).exercises:
        banned = set(exercise.banned)
        for name in banned:
            if not name.startswith("torch.") or name in PYTHON_ONLY:
                if is_installed(name):
                    _resolve(name)  # raises ValueError naming a misspelt ban
                continue
            ops = DISPATCH_OPS.get(name)
            assert ops is not None, f"{exercise.id}: {name} is missing from bans.DISPATCH_OPS"
            if not any(hasattr(torch.ops.aten, op) for op in ops) or name in RUNS:
                runs = RUNS.get(name, ())
                assert runs, f"{exercise.id}: {name} has no aten operator here and no RUNS entry"
                assert set(runs) <= banned, f"{exercise.id} bans {name} but not all of {runs}"
