"""Reference kernels in plain array code (NumPy, and CuPy since only ``xp`` calls are used).

The trick in all four: loop over the KH*KW positions *inside* a window (9 for a
3x3 kernel) and move whole strided slices of the image at once, instead of
looping over the output pixels.
"""

from __future__ import annotations

import numpy as np


def xp_of(a):
    """The array library ``a`` belongs to (NumPy or CuPy)."""
    return np if isinstance(a, np.ndarray) else __import__(type(a).__module__.split(".")[0])


def _out_hw(h, w, kh, kw, stride, pads):
    oh = (h + pads[0] + pads[1] - kh) // stride[0] + 1
    ow = (w + pads[2] + pads[3] - kw) // stride[1] + 1
    return oh, ow


def _pad(x, pads, value=0.0):
    xp = xp_of(x)
    if not any(pads):
        return x
    width = ((0, 0), (0, 0), (pads[0], pads[1]), (pads[2], pads[3]))
    return xp.pad(x, width, mode="constant", constant_values=value)


def im2col(x, kh, kw, stride, pads):
    """(N, C, H, W) -> (N*OH*OW, C*KH*KW): each row is one receptive field."""
    xp = xp_of(x)
    n, c, h, w = x.shape
    sh, sw = stride
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    xpad = _pad(x, pads)
    cols = xp.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xpad[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, c * kh * kw)


def col2im(cols, x_shape, kh, kw, stride, pads):
    """The adjoint of im2col: scatter-add each row back onto the image."""
    xp = xp_of(cols)
    n, c, h, w = x_shape
    sh, sw = stride
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    cols6 = cols.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    hp, wp = h + pads[0] + pads[1], w + pads[2] + pads[3]
    dxpad = xp.zeros((n, c, hp, wp), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dxpad[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += cols6[:, :, i, j]
    return dxpad[:, :, pads[0] : pads[0] + h, pads[2] : pads[2] + w]


def maxpool_forward(x, kh, kw, stride, pads):
    """Max over each window; argmax is the winner's position inside its window."""
    xp = xp_of(x)
    n, c, h, w = x.shape
    sh, sw = stride
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    xpad = _pad(x, pads, value=-np.inf)  # padding never wins a max
    y = None
    argmax = xp.zeros((n, c, oh, ow), dtype=np.int8)
    for i in range(kh):
        for j in range(kw):
            v = xpad[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw]
            if y is None:
                y = v.copy()
                continue
            better = v > y  # strict: ties keep the first position
            y = xp.where(better, v, y)
            argmax[better] = i * kw + j
    return y, argmax


def maxpool_backward(dy, argmax, x_shape, kh, kw, stride, pads):
    """Route each output gradient back to the one input that won its window."""
    xp = xp_of(dy)
    n, c, h, w = x_shape
    sh, sw = stride
    oh, ow = dy.shape[2], dy.shape[3]
    hp, wp = h + pads[0] + pads[1], w + pads[2] + pads[3]
    dxpad = xp.zeros((n, c, hp, wp), dtype=dy.dtype)
    for i in range(kh):
        for j in range(kw):
            routed = xp.where(argmax == i * kw + j, dy, 0)
            dxpad[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += routed
    return dxpad[:, :, pads[0] : pads[0] + h, pads[2] : pads[2] + w]


def rows_to_nchw(rows, bias, n, oh, ow):
    """Add the bias, then move channels from last (NHWC order) to second (NCHW)."""
    xp = xp_of(rows)
    f = rows.shape[1]
    return xp.ascontiguousarray((rows + bias).reshape(n, oh, ow, f).transpose(0, 3, 1, 2))


def nchw_to_rows(y):
    xp = xp_of(y)
    n, f, oh, ow = y.shape
    return xp.ascontiguousarray(y.transpose(0, 2, 3, 1)).reshape(n * oh * ow, f)
