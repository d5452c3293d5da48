"""The window arguments of Conv2D and MaxPool2D (kernel size, stride, padding), checked; their geometry."""

from __future__ import annotations

import numbers

from .checks import integer
from .exceptions import InvalidValue
from .geometry import output_size, pads_for


def _is_int(v, low):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= low


def pair(v, name: str) -> tuple[int, int]:
    """3 -> (3, 3); (2, 3) -> (2, 3) (NumPy integers too); anything else is a clear error."""
    if _is_int(v, 1):
        v = (v, v)
    if not isinstance(v, (tuple, list)) or len(v) != 2 or not all(_is_int(i, 1) for i in v):
        raise InvalidValue(f"{name} must be a positive int or a pair of them, got {v!r}")
    return integer(v[0], name), integer(v[1], name)


def check_padding(padding):
    if isinstance(padding, str) and padding in ("valid", "same"):
        return padding
    if _is_int(padding, 0):
        return int(padding)
    raise InvalidValue(f"padding must be 'valid', 'same' or an int >= 0, got {padding!r}")


def window_geometry(padding, size, kernel, stride, what) -> tuple[tuple, int, int]:
    """(pads, out_h, out_w) of a window op on an input of ``size`` (h, w); a clear error when nothing fits."""
    pads = pads_for(padding, size, kernel, stride)
    oh, ow = output_size(size, kernel, stride, pads)
    if oh < 1 or ow < 1:
        raise InvalidValue(f"{what} {kernel} does not fit input {size[0]}x{size[1]} with padding {padding!r}")
    return pads, oh, ow
