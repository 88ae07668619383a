"""How the kit runs exercise-sized compute, wherever it runs it (pytest, `llmkit show`, a
notebook build): torch and numpy's BLAS on one thread, and without a GPU, Triton kernels
in Triton's interpreter."""

from __future__ import annotations

import os


def configure_compute() -> None:
    """One thread for torch and for numpy's BLAS: exercise-sized ops gain nothing from
    threads, and on busy shared machines idle workers made timings vary 10-100x. Without
    CUDA, Triton runs kernels on the CPU through its interpreter, which must be chosen
    before triton is imported. A BLAS loaded later (scipy bundles its own OpenBLAS) reads
    the environment when it loads, so the thread counts go there too."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
