"""Reference kernels in plain array code (NumPy, and CuPy since only ``xp`` calls are used).

The trick in the convolution and pooling kernels: loop over the KH*KW
positions *inside* a window (9 for a 3x3 kernel) and move whole strided slices
of the image at once, instead of looping over the output pixels.
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
    """(N, C, H, W) -> (C*KH*KW, N*OH*OW): column r holds the receptive field of output pixel r.

    Row k = (channel, p, q) is the image shifted by (p, q): one strided slice per window position.
    """
    xp = xp_of(x)
    n, c, h, w = x.shape
    sh, sw = stride
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    xpad = _pad(x, pads)
    cols = xp.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xpad[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw].transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * oh * ow)


def col2im(cols, x_shape, kh, kw, stride, pads):
    """The adjoint of im2col: add each column back onto the pixels it was copied from."""
    xp = xp_of(cols)
    n, c, h, w = x_shape
    sh, sw = stride
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    cols6 = cols.reshape(c, kh, kw, n, oh, ow)
    hp, wp = h + pads[0] + pads[1], w + pads[2] + pads[3]
    dxpad = xp.zeros((n, c, hp, wp), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dxpad[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += cols6[:, i, j].transpose(1, 0, 2, 3)
    return dxpad[:, :, pads[0] : pads[0] + h, pads[2] : pads[2] + w]


def maxpool_forward(x, kh, kw, stride, pads):
    """Max over each window; argmax is the winner's position inside its window.

    Positions are visited in order and a later one wins only if strictly larger, so
    argmax = the largest k whose value beat everything before it (ties keep the first).
    Arithmetic instead of ``where``/boolean indexing: 19 -> 3.6 ms at batch 128.
    """
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
            xp.maximum(argmax, better * np.int8(i * kw + j), out=argmax)
            y = xp.maximum(y, v)
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
            dxpad[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += dy * (argmax == i * kw + j)
    return dxpad[:, :, pads[0] : pads[0] + h, pads[2] : pads[2] + w]


def relu_forward(x):
    """max(x, 0) elementwise; NaN stays NaN (so a diverging run is still noticed)."""
    return xp_of(x).maximum(x, 0)


def relu_backward(dy, y):
    """dy where the ReLU's output y is positive, 0 elsewhere (y > 0 exactly where x > 0)."""
    return dy * (y > 0)


def adam_update(p, g, m, v, lr_t, b1, b2, eps):
    """One Adam step, in place on p, m, v (see tinynet/optim.py for the formulas)."""
    xp = xp_of(p)
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * (g * g)
    p -= lr_t * m / (xp.sqrt(v) + eps)


def gemm_to_nchw(out, bias, n, oh, ow):
    """(F, N*OH*OW) + bias -> contiguous (N, F, OH, OW): swap the first two axes."""
    xp = xp_of(out)
    f = out.shape[0]
    return xp.ascontiguousarray((out + bias[:, None]).reshape(f, n, oh, ow).transpose(1, 0, 2, 3))


def nchw_to_gemm(y):
    """(N, F, OH, OW) -> contiguous (F, N*OH*OW): the layout the backward GEMMs want."""
    xp = xp_of(y)
    n, f, oh, ow = y.shape
    return xp.ascontiguousarray(y.transpose(1, 0, 2, 3)).reshape(f, n * oh * ow)
