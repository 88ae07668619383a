# target: section7/flash_attention.py
"""A naive attention that builds the whole N x N score matrix (its values are right),
plus every trick on the memory measurement it can reach from inside its own process:
it replaces whatever looks like a memory helper in ``sys.modules["__main__"]`` (the
worker's or the measuring harness's main module) and in the engine modules it finds
loaded (``llmkit.memory.measure_memory`` reporting a zero peak, the storage tracker
switched off, ``peak_memory_of_call``), makes ``resource.getrusage`` report a tiny
peak, and tries to reset the kernel's peak-RSS counter through
``/proc/self/clear_refs``. It should keep the points a naive attention earns (the
values) and lose every memory point."""

import math
import sys

import torch


def _zero_peak(fn, inputs=(), *args, kwargs=None, **more):
    from llmkit.memory import MemoryUse

    out = fn(*inputs, **(kwargs or {}))
    return MemoryUse(out, 0, 0, 0, 0, 0, "", (), -1)


def _patch_everything():
    main = sys.modules.get("__main__")
    for name in list(vars(main)) if main is not None else []:
        if any(word in name.lower() for word in ("memory", "rss", "peak", "usage")):
            try:
                setattr(main, name, _zero_peak)
            except (AttributeError, TypeError):
                pass
    for module_name in ("llmkit.memory", "llmkit.sandbox.script", "llmkit.timing"):
        module = sys.modules.get(module_name)
        if module is None:
            continue
        for name in ("measure_memory", "peak_memory_of_call", "run_learner_script"):
            if hasattr(module, name):
                setattr(module, name, _zero_peak)
        tracker = getattr(module, "_StorageTracker", None)
        if tracker is not None:
            tracker._created = lambda self, t, op: None
    try:
        import resource

        real = resource.getrusage

        def tiny(who):
            usage = real(who)
            return resource.struct_rusage((*usage[:2], 1, *usage[3:]))

        resource.getrusage = tiny
    except Exception:  # noqa: BLE001
        pass
    try:
        with open("/proc/self/clear_refs", "w") as fh:  # 5: reset the peak RSS
            fh.write("5")
    except Exception:  # noqa: BLE001
        pass


_patch_everything()


def flash_attention_torch(q, k, v, causal=False, sm_scale=None, block_q=64, block_k=64):
    scale = 1.0 / math.sqrt(q.shape[-1]) if sm_scale is None else sm_scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (B, H, N, N)
    if causal:
        n = q.shape[-2]
        future = torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
    m = scores.amax(dim=-1, keepdim=True)
    p = torch.exp(scores - m)
    l_sum = p.sum(dim=-1, keepdim=True)
    _patch_everything()  # again, in case the measuring code was loaded after this module
    return (p / l_sum) @ v, (m + torch.log(l_sum)).squeeze(-1)
