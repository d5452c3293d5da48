"""Shared pieces: FLOP counts from the layers, the machine's GEMM peak, the PyTorch twin."""

from __future__ import annotations

import time

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
