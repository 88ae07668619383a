"""The sandbox: its wire format, remote handles, limits and failure modes."""

from __future__ import annotations

import collections
import math
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import llmkit
from llmkit.checks import CheckFailure, poison
from llmkit.sandbox import wire
from llmkit.sandbox.launch import Limits, SandboxFailure
from llmkit.sandbox.remote import RemoteObject
from llmkit.sandbox.script import run_learner_script
from llmkit.sandbox.session import Sandbox

# --- wire format -------------------------------------------------------------------------


def round_trip(value, *, allow_pickle=False):
    encoder = wire.Encoder(lambda obj: (_ for _ in ()).throw(TypeError("no refs")), allow_pickle=allow_pickle)
    doc = encoder.encode(value)
    buffers = [bytes(b) for b in encoder.buffers]
    return wire.Decoder(buffers, lambda d: None, allow_pickle=allow_pickle).decode(doc)


def test_plain_data_round_trips():
    base = torch.arange(24.0).reshape(4, 6)
    value = {
        "floats": [1.5, math.inf, -math.inf, 3],
        1: (b"\x00\xff", "text", None, True),
        "dtype": torch.bfloat16,
        "slice": slice(1, None, 2),
        "array": np.arange(6, dtype=np.int16).reshape(2, 3),
        "scalar": np.float32(2.5),
        "tensors": [
            base,
            base.t(),
            base[1:, 2:],
            torch.tensor(7),
            torch.zeros(0, 3),
            torch.ones(2, dtype=torch.bool),
        ],
        "bf16": torch.randn(3, dtype=torch.bfloat16),
    }
    got = round_trip(value)
    assert got["floats"][:3] == [1.5, math.inf, -math.inf] and type(got["floats"][3]) is int
    assert got[1] == (b"\x00\xff", "text", None, True)
    assert got["dtype"] is torch.bfloat16 and got["slice"] == slice(1, None, 2)
    assert got["array"].dtype == np.int16 and np.array_equal(got["array"], value["array"])
    assert type(got["scalar"]) is np.float32 and got["scalar"] == 2.5
    for want, have in zip(value["tensors"], got["tensors"]):
        assert type(have) is torch.Tensor and have.dtype == want.dtype and torch.equal(have, want)
        assert have.stride() == want.stride()
    # views of one storage stay views of one storage
    a, at, part = got["tensors"][:3]
    assert (
        a.untyped_storage().data_ptr() == at.untyped_storage().data_ptr() == part.untyped_storage().data_ptr()
    )
    assert torch.equal(got["bf16"], value["bf16"])
    assert math.isnan(round_trip(float("nan")))


def test_counters_and_defaultdicts_arrive_as_plain_dicts():
    counts = collections.Counter({("a", "b"): 2})
    nested = collections.defaultdict(collections.Counter, {"a": collections.Counter({"b": 1})})
    got = round_trip([counts, nested])
    assert got == [{("a", "b"): 2}, {"a": {"b": 1}}]
    assert type(got[0]) is dict and type(got[1]) is dict and type(got[1]["a"]) is dict


def test_tensor_subclasses_arrive_as_plain_tensors():
    class Liar(torch.Tensor):
        def __eq__(self, other):
            return True

    got = round_trip(torch.zeros(3).as_subclass(Liar))
    assert type(got) is torch.Tensor and not torch.equal(got, torch.ones(3))


def test_pickle_is_refused_unless_allowed():
    class Thing:
        pass

    with pytest.raises(TypeError, match="no refs"):
        round_trip(Thing())
    doc, buffers = {"pickle": 0}, [b"cos\nsystem\n(S'true'\ntR."]
    with pytest.raises(wire.WireError, match="unknown tag 'pickle'"):
        wire.Decoder(buffers, lambda d: None).decode(doc)


@pytest.mark.parametrize(
    "doc, buffers, message",
    [
        ([1, 2], [], "untagged list"),
        ({"what": 1}, [], "unknown tag"),
        (
            {"tensor": {"dtype": "float32", "shape": [4], "stride": [1], "offset": 0, "storage": 0}},
            [b"\0" * 8],
            "past",
        ),
        (
            {"tensor": {"dtype": "float32", "shape": [2], "stride": [-1], "offset": 0, "storage": 0}},
            [b"\0" * 8],
            "bad",
        ),
        (
            {"tensor": {"dtype": "object", "shape": [1], "stride": [1], "offset": 0, "storage": 0}},
            [b"\0" * 8],
            "dtype",
        ),
        ({"ndarray": {"dtype": "|O", "shape": [1], "buffer": 0}}, [b"\0" * 8], "object"),
        ({"ndarray": {"dtype": "<f8", "shape": [3], "buffer": 0}}, [b"\0" * 8], "size"),
        ({"bytes": 5}, [], "buffer index"),
        ({"float": "1e400"}, [], "bad float"),
    ],
)
def test_garbage_is_refused(doc, buffers, message):
    with pytest.raises(wire.WireError, match=message):
        wire.Decoder(buffers, lambda d: None).decode(doc)


# --- remote handles ------------------------------------------------------------------------

LEARNER = """
import os, sys, time
import torch

class Value:
    def __init__(self, data):
        self.data = float(data)
        self.grad = 0.0
    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data)
    __radd__ = __add__
    def __neg__(self):
        return Value(-self.data)

def count(n):
    for i in range(n):
        yield i

def double(x):
    return x * 2

def zero_in_place(x):
    x.zero_()
    return x

def fill_out(x, out):
    out.copy_(x + 1)
    return out

def stub():
    raise NotImplementedError

def bad_value(x):
    raise ValueError(f"x has shape {tuple(x.shape)}")

def die():
    os._exit(7)

def spin():
    while True:
        pass

def busy(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

def read(path):
    with open(path) as fh:
        return fh.read()

def listing(path):
    return os.listdir(path)

def write(path):
    with open(path, "w") as fh:
        fh.write("x")

def spawn():
    import subprocess
    return subprocess.run(["true"]).returncode

def hoard():
    return bytearray(2**33)
"""


@pytest.fixture
def sandbox(tmp_path):
    protected = tmp_path / "protected"
    protected.mkdir()
    (protected / "secret.txt").write_text("the answers")
    allowed = [Path(sys.prefix), Path(sys.base_prefix), Path(llmkit.__file__).parent]
    box = Sandbox(protected=[protected], allowed=allowed, limits=Limits(call_timeout_s=3, memory_bytes=2**32))
    yield box
    box.close()


@pytest.fixture
def learner(tmp_path):
    path = tmp_path / "section9" / "toy.py"
    path.parent.mkdir()
    path.write_text(LEARNER)
    return [path]


def test_calls_attributes_operators_and_iteration(sandbox, learner):
    m = sandbox.module("9.1", learner, ())
    a = m.Value(2)
    assert isinstance(a, RemoteObject)
    b = 1 + a + 3  # reflected and plain operators
    assert (-b).data == -6.0 and type(b.data) is float
    a.grad = 5.0
    assert a.grad == 5.0
    assert list(m.count(600)) == list(range(600))
    x = torch.randn(3, 4)
    assert torch.equal(m.double(x), x * 2)
    assert m.double([1, 2]) == [1, 2, 1, 2]
    assert a == a and a != m.Value(2)  # identity only: the learner's __eq__ never decides


def test_learner_exceptions_keep_their_builtin_type_and_say_where(sandbox, learner):
    m = sandbox.module("9.1", learner, ())
    with pytest.raises(ValueError, match=r"x has shape \(2, 3\)") as info:
        m.bad_value(torch.zeros(2, 3))
    assert "toy.py" in info.value.__notes__[0] and str(learner[0]) in info.value.__notes__[0]
    with pytest.raises(NotImplementedError) as info:
        m.stub()
    assert info.value.llmkit_remote["in_learner_code"] and info.value.llmkit_remote["where"][1] == "stub"


def test_output_buffers_are_written_back_and_inputs_are_read_only(sandbox, learner):
    m = sandbox.module("9.1", learner, ())
    x, out = torch.randn(4), poison(torch.empty(4))
    m.fill_out(x, out)
    assert torch.equal(out, x + 1)
    before = x.clone()
    with pytest.raises(CheckFailure, match="changed one of its inputs in place"):
        m.zero_in_place(x)
    assert torch.equal(x, before)


def test_a_dead_worker_fails_the_test_and_is_replaced(sandbox, learner):
    m = sandbox.module("9.1", learner, ())
    with pytest.raises(SandboxFailure, match="exited with code 7") as first:
        m.die()
    with pytest.raises(SandboxFailure) as again:  # the same failure, for hypothesis' replays
        m.double(1)
    assert str(again.value) == str(first.value)
    assert sandbox.module("9.1", learner, ()).double(2) == 4


def test_a_hang_is_stopped_and_ends_the_exercise(sandbox, learner):
    m = sandbox.module("9.1", learner, ())
    start = time.monotonic()
    with pytest.raises(SandboxFailure, match="more than 3 s"):
        m.spin()
    assert time.monotonic() - start < 10
    with pytest.raises(SandboxFailure, match="not run"):
        sandbox.module("9.1", learner, ())


def test_limits_and_the_audit_hook(sandbox, learner, tmp_path):
    m = sandbox.module("9.1", learner, ())
    with pytest.raises(PermissionError, match="does not allow reading"):
        m.read(str(tmp_path / "protected" / "secret.txt"))
    with pytest.raises(PermissionError, match="does not allow writing"):
        m.write(str(tmp_path / "outside.txt"))
    assert not (tmp_path / "outside.txt").exists()
    with pytest.raises(PermissionError, match="subprocess.Popen"):
        m.spawn()
    with pytest.raises(MemoryError):
        m.hoard()
    with pytest.raises(PermissionError, match="does not allow listing"):
        m.listing(str(tmp_path))
    with pytest.raises(PermissionError, match="does not allow reading"):
        m.read(str(learner[0]))  # outside its directory: the original of its own module
    m.write("notes.txt")
    assert m.read("notes.txt") == "x"  # its own directory is fine
    assert m.read("/proc/self/status").startswith("Name:")


def test_learner_time_is_the_workers_cpu_time(sandbox, learner):
    m = sandbox.module("9.1", learner, ())
    clock = sandbox.learner_cpu_clock()
    start = clock()
    m.busy(0.3)
    assert 0.25 < clock() - start < 1.0


def test_run_learner_script_reports_output_and_peak_memory(tmp_path):
    module = tmp_path / "big.py"
    module.write_text("import json, sys\nblob = bytearray(64 * 2**20)\nprint('size', len(blob))\n")
    script = "import json, sys\nexec(open(json.loads(sys.argv[1])[0]).read())\n"
    run = run_learner_script(script, [], module_files=[str(module)])
    assert run.returncode == 0 and run.stdout.strip() == f"size {64 * 2**20}"
    assert 64 * 2**20 < run.peak_rss_bytes < 512 * 2**20
    slow = run_learner_script("import time\ntime.sleep(60)\n", [], module_files=[], timeout_s=1)
    assert slow.timed_out


# --- queued operations and gradients driven from the grader's side --------------------------

AUTOGRAD_LEARNER = """
import sys
import torch

def engine_modules():
    return sorted(name for name in sys.modules if name.startswith("llmkit"))

def run(model, tokens):
    return model(tokens)

class Value:
    def __init__(self, data):
        self.data = float(data)
    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data)
    def __rsub__(self, other):
        return Value(other - self.data)
    def __neg__(self):
        return Value(-self.data)

def stub():
    raise NotImplementedError

def pair(x, y):
    return (x * y).tanh(), (x.sum() * 2, {"z": y.exp()})

class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(3, 2).double()
        self.frozen = torch.nn.Parameter(torch.ones(2, dtype=torch.float64), requires_grad=False)
    def forward(self, x):
        return self.lin(x) * self.frozen
"""


@pytest.fixture
def autograd_learner(tmp_path):
    path = tmp_path / "section9" / "autograd.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(AUTOGRAD_LEARNER)
    return [path]


def count_requests(worker, monkeypatch) -> list[str]:
    ops: list[str] = []
    request = worker.request

    def counting(op, *args, **kwargs):
        ops.append(op)
        return request(op, *args, **kwargs)

    monkeypatch.setattr(worker, "request", counting)
    return ops


def test_queued_operations_travel_in_one_request(sandbox, autograd_learner, monkeypatch):
    from llmkit.checks import attributes
    from llmkit.sandbox import pipelined, worker_of

    m = sandbox.module("9.2", autograd_learner, ())
    monkeypatch.setattr(llmkit.sandbox, "_active", sandbox)
    ops = count_requests(worker_of(m), monkeypatch)
    with pipelined(m):
        a = m.Value(2)
        b = 2 - (a + 3)  # a reflected operator: run with Python's whole protocol in the worker
        c = -b
        assert isinstance(c, RemoteObject)
        assert attributes([a, b, c], "data") == [2.0, -3.0, 3.0]
    assert ops == ["getattrs"]
    assert object.__getattribute__(c, "_llmkit_type") == "Value"
    assert c.data == 3.0  # outside the block, handles behave as usual
    with pytest.raises(NotImplementedError), pipelined(m):  # an error in the queue: raised at the end
        m.stub()
        m.Value(1)
    with pytest.raises(TypeError), pipelined(m):
        attributes([a * 2], "data")  # no __mul__: the error comes with the request that needs an answer
    assert m.Value(5).data == 5.0  # the worker goes on


def test_value_and_grad_drives_sandboxed_code_from_the_grader(sandbox, autograd_learner, monkeypatch):
    from llmkit.checks import value_and_grad
    from llmkit.sandbox import worker_of

    m = sandbox.module("9.2", autograd_learner, ())
    monkeypatch.setattr(llmkit.sandbox, "_active", sandbox)
    local = {}
    exec(AUTOGRAD_LEARNER, local)
    gen = torch.Generator().manual_seed(1)
    x, y = (torch.randn(4, 3, dtype=torch.float64, generator=gen) for _ in range(2))
    weights = (
        torch.randn(4, 3, dtype=torch.float64, generator=gen),
        (torch.tensor(0.5), {"z": torch.ones(4, 3)}),
    )
    got = value_and_grad(m.pair, [x, y], weights)
    want = value_and_grad(local["pair"], [x, y], weights)
    assert torch.equal(got.output[0], want.output[0])
    assert torch.equal(got.output[1][1]["z"], want.output[1][1]["z"])
    for g, w in zip(got.inputs, want.inputs):
        assert type(g) is torch.Tensor and torch.equal(g, w)
    assert got.params == {} and x.grad is None

    layer, mine = m.Layer(), local["Layer"]()
    ops = count_requests(worker_of(m), monkeypatch)
    got = value_and_grad(layer, [x], weights[0][:, :2])
    want = value_and_grad(mine, [x], weights[0][:, :2])
    assert ops == ["builtin", "value", "call"]  # is it a module; call and read; gradients
    assert set(got.params) == set(want.params) == {"lin.weight", "lin.bias"}
    for name, g in want.params.items():
        assert torch.equal(got.params[name], g)
    assert torch.equal(got.inputs[0], want.inputs[0])
    with pytest.raises(CheckFailure, match="output shaped like"):
        value_and_grad(m.pair, [x, y], torch.ones(4, 3))


def test_the_worker_imports_no_oracle(sandbox, autograd_learner):
    """Graders' toy models travel pickled, their classes from llmkit.toymodels; no exercise
    support or oracle module (llmkit.support loads them in the grader) is imported next to
    the learner's code."""
    from llmkit.support import load_support

    m = sandbox.module("9.2", autograd_learner, ())
    model = load_support("5.1").tiny_transformer(0)
    tokens = torch.randint(0, 50, (2, 5), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(m.run(model, tokens), model(tokens), atol=1e-5)
    modules = m.engine_modules()
    assert "llmkit.toymodels" in modules
    assert not [
        name for name in modules if name.startswith(("llmkit_support", "llmkit_oracle", "llmkit.support"))
    ]


# --- measurements from outside the worker: jailed scripts, timed calls ------------------------

SPEED_LEARNER = """
import torch

_first = []

def double(x):
    return x * 2

def remember_first(x):  # keeps the first answer and returns it for every later call
    if not _first:
        _first.append(x * 2)
    return _first[0]
"""


@pytest.fixture
def active_sandbox(sandbox):
    from llmkit.sandbox import activate

    activate(sandbox)
    yield sandbox
    activate(None)


def test_a_jailed_script_reports_its_own_peak_output_and_files(active_sandbox, tmp_path):
    """The launcher imports no torch (its RSS would pass to the child across exec), the
    child's stdout reaches the grader, and files come back only as regular files."""
    module = tmp_path / "big.py"
    module.write_text("blob = bytearray(64 * 2**20)\n")
    script = (
        "import json, os, sys\nexec(open(json.loads(sys.argv[1])[0]).read())\nprint('size', len(blob))\n"
        "open('out.txt', 'w').write('hello')\nos.symlink('out.txt', 'link.txt')\n"
    )
    run = run_learner_script(script, [], module_files=[str(module)], outputs=("out.txt", "link.txt", "none"))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"size {64 * 2**20}"
    assert 64 * 2**20 < run.peak_rss_bytes < 150 * 2**20
    assert run.files == {"out.txt": b"hello"}
    small = run_learner_script("print('hi')\n", [], module_files=[])
    assert small.stdout == "hi\n" and small.peak_rss_bytes < 64 * 2**20


def test_timed_calls_get_fresh_inputs_and_the_workers_cpu_time(active_sandbox, tmp_path):
    from llmkit.timing import compare_speed

    path = tmp_path / "section9" / "fast.py"
    path.parent.mkdir()
    path.write_text(SPEED_LEARNER)
    m = active_sandbox.module("9.2", [path], ())
    make = lambda i: (torch.randn(256, 256),)
    result = compare_speed(m.double, lambda x: x * 2, make, repeats=3, number=2)
    assert result.candidate_s > 0 and result.baseline_s > 0 and result.number == 2
    value, seconds = active_sandbox.current.timed_call(m.double, [torch.ones(3)], {}, doing="a call")
    assert torch.equal(value, torch.full((3,), 2.0)) and 0 < seconds < 1
    with pytest.raises(CheckFailure, match="differs from the baseline's"):
        compare_speed(m.remember_first, lambda x: x * 2, make, repeats=3, number=1)
    with pytest.raises(TypeError, match="the learner's callable itself"):
        compare_speed(lambda x: m.double(x), lambda x: x * 2, make, repeats=1)


def test_a_script_that_floods_its_output_costs_the_grader_one_tail(tmp_path):
    flood = "import sys\nfor _ in range(64):\n    sys.stdout.write('x' * 2**20)\nprint('end')\n"
    run = run_learner_script(flood, [], module_files=[])
    assert run.returncode == 0 and run.stdout.endswith("end\n") and len(run.stdout) <= 2**20
