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
    """The same network in PyTorch, with tinynet's initial weights copied in (the zoo's layers; for speed runs).

    Keras's BatchNorm momentum m is PyTorch's 1 - m. PyTorch updates the running variance with the unbiased
    batch variance, Keras and tinynet with the biased one: training is the same, evaluation differs slightly.
    """
    import torch
    from torch import nn

    from tinynet.backend import to_numpy
    from tinynet.layers import BatchNorm, Dropout, Flatten, MaxPool2D, ReLU

    mods = []
    for layer in model.layers:
        if isinstance(layer, Conv2D):
            if layer.stride != (1, 1) or len(set(layer.pads)) != 1:
                raise ValueError("the PyTorch twin covers stride-1 convolutions with symmetric padding only")
            m = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel, padding=layer.pads[0])
            m.weight.data = torch.tensor(to_numpy(layer.params["W"].data))
            m.bias.data = torch.tensor(to_numpy(layer.params["b"].data))
        elif isinstance(layer, BatchNorm):
            kind = nn.BatchNorm2d if len(layer.input_shape) == 3 else nn.BatchNorm1d
            m = kind(layer.input_shape[0], eps=layer.eps, momentum=1 - layer.momentum)
        elif isinstance(layer, Dense):
            m = nn.Linear(layer.in_features, layer.out_features)
            m.weight.data = torch.tensor(to_numpy(layer.params["W"].data).T.copy())
            m.bias.data = torch.tensor(to_numpy(layer.params["b"].data))
        elif isinstance(layer, ReLU):
            m = nn.ReLU()
        elif isinstance(layer, MaxPool2D):
            # Keras's "same" pooling pads at the bottom/right only, which is what ceil_mode does
            if layer.pads[0] or layer.pads[2]:
                raise ValueError("the PyTorch twin covers pools padded at the bottom/right only")
            m = nn.MaxPool2d(layer.kernel, layer.stride, ceil_mode=bool(layer.pads[1] or layer.pads[3]))
        elif isinstance(layer, Flatten):
            m = nn.Flatten()
        elif isinstance(layer, Dropout):
            m = nn.Dropout(layer.rate)
        else:
            raise ValueError(f"no PyTorch twin for {type(layer).__name__}")
        mods.append(m)
    return nn.Sequential(*mods)
