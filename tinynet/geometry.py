"""Window geometry of Conv2D and MaxPool2D: padding amounts and output sizes. Pure arithmetic, no checks.

A leaf module: the layers' argument checks (padding.py) and every kernel (the reference, the Numba and CUDA ones,
and the plain-loop versions the tests compare with) compute sizes with these two functions.
"""

from __future__ import annotations

import math


def pads_for(padding, size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int]):
    """Return (top, bottom, left, right).

    'same' follows Keras/TensorFlow: output = ceil(input / stride), and when the
    total padding is odd the extra row/column goes at the bottom/right.
    """
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        out = []
        for n, k, s in zip(size, kernel, stride, strict=True):
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            out += [total // 2, total - total // 2]
        return tuple(out)
    p = int(padding)
    return (p, p, p, p)


def output_size(size, kernel, stride, pads) -> tuple[int, int]:
    """(out_h, out_w) of a window of ``kernel`` moved by ``stride`` over ``size`` padded by ``pads``."""
    h = (size[0] + pads[0] + pads[1] - kernel[0]) // stride[0] + 1
    w = (size[1] + pads[2] + pads[3] - kernel[1]) // stride[1] + 1
    return h, w
