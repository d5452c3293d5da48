"""Shared pieces: FLOP counts from the layers, the machine's GEMM peak, the PyTorch twin."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from tinynet.layers import Conv2D, Dense


def flops_per_image(model) -> dict:
    """Multiply-adds x 2 of the conv and dense layers (elementwise ops are ignored).

    Training = forward + backward; backward is a dW GEMM plus, except for the
    first layer (whose dx nobody needs), a dx GEMM of the same size.
    """
    fwd = train = 0
    shape = model.input_shape
    for i, layer in enumerate(model.layers):
        out = layer.output_shape(shape)
        if isinstance(layer, Conv2D):
            f = 2 * out[1] * out[2] * out[0] * shape[0] * layer.kernel[0] * layer.kernel[1]
        elif isinstance(layer, Dense):
            f = 2 * shape[0] * out[0]
        else:
            f = 0
        fwd += f
        train += f * (2 if i == 0 else 3)
        shape = out
    return {"forward": fwd, "train": train}


def gemm_peak_gflops(n=2048, repeats=5) -> float:
    """Best of a few float32 n x n GEMMs through NumPy's BLAS: this machine's practical peak."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def torch_twin(model):
    """The same network in PyTorch, with tinynet's initial weights (tinynet.interop.torch.to_torch)."""
    from tinynet.interop.torch import to_torch

    return to_torch(model, dropout="random")


_standin = None


def cupy_for_bench():
    """Real CuPy, or the CuPy stand-in (tests/fake_cupy.py) for the whole process when TINYNET_CUPY_STANDIN=1: the
    rehearsal of bench/gpu_check.sh on a machine without a GPU runs the same code, slowly, on the host."""
    if os.environ.get("TINYNET_CUPY_STANDIN") == "1":
        tests = str(Path(__file__).resolve().parents[1] / "tests")
        sys.path.insert(0, tests)
        import fake_cupy

        sys.path.remove(tests)
        global _standin  # held: the context manager uninstalls the stand-in when it is collected
        _standin = fake_cupy.installed()
        _standin.__enter__()  # left installed: the process exists for this
        return fake_cupy
    import cupy

    return cupy
