"""Output sizes and padding amounts for windowed ops (Conv2D, MaxPool2D)."""

from __future__ import annotations

import math
import numbers

from .checks import integer


def _is_int(v, low):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= low


def pair(v, name: str) -> tuple[int, int]:
    """3 -> (3, 3); (2, 3) -> (2, 3) (NumPy integers too); anything else is a clear error."""
    if _is_int(v, 1):
        v = (v, v)
    if not isinstance(v, (tuple, list)) or len(v) != 2 or not all(_is_int(i, 1) for i in v):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {v!r}")
    return integer(v[0], name), integer(v[1], name)


def check_padding(padding):
    if isinstance(padding, str) and padding in ("valid", "same"):
        return padding
    if _is_int(padding, 0):
        return int(padding)
    raise ValueError(f"padding must be 'valid', 'same' or an int >= 0, got {padding!r}")


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


def window_geometry(padding, size, kernel, stride, what) -> tuple[tuple, int, int]:
    """(pads, out_h, out_w) of a window op on an input of ``size`` (h, w); a clear error when nothing fits."""
    pads = pads_for(padding, size, kernel, stride)
    oh, ow = output_size(size, kernel, stride, pads)
    if oh < 1 or ow < 1:
        raise ValueError(f"{what} {kernel} does not fit input {size[0]}x{size[1]} with padding {padding!r}")
    return pads, oh, ow


def output_size(size, kernel, stride, pads) -> tuple[int, int]:
    h = (size[0] + pads[0] + pads[1] - kernel[0]) // stride[0] + 1
    w = (size[1] + pads[2] + pads[3] - kernel[1]) // stride[1] + 1
    return h, w
