"""Kernel entry points. Each dispatches to the current backend's implementation.

The NumPy versions in :mod:`tinynet.kernels.numpy_ref` are the readable
reference; :mod:`numba_cpu` and :mod:`cupy_gpu` must produce the same numbers.
:mod:`naive` holds plain-loop versions of whole ops that the tests compare with.

Shapes (NCHW):
    x     (N, C, H, W)               pads (top, bottom, left, right)
    cols  (C*KH*KW, N*OH*OW)         one column per output pixel (the CS231n layout)
    out   (F, N*OH*OW)               the conv GEMM W @ cols, one column per output pixel
    pool  y, argmax (N, C, OH, OW)   argmax indexes the window, 0..KH*KW-1
"""

from __future__ import annotations

from ..backend import get_backend


def im2col(x, kh, kw, stride, pads):
    return get_backend().kernels.im2col(x, kh, kw, stride, pads)


def col2im(cols, x_shape, kh, kw, stride, pads):
    return get_backend().kernels.col2im(cols, x_shape, kh, kw, stride, pads)


def maxpool_forward(x, kh, kw, stride, pads):
    return get_backend().kernels.maxpool_forward(x, kh, kw, stride, pads)


def maxpool_backward(dy, argmax, x_shape, kh, kw, stride, pads):
    return get_backend().kernels.maxpool_backward(dy, argmax, x_shape, kh, kw, stride, pads)


def relu_forward(x):
    """max(x, 0), same shape and dtype."""
    return get_backend().kernels.relu_forward(x)


def relu_backward(dy, y):
    """dy where y > 0, else 0; y is the forward's output."""
    return get_backend().kernels.relu_backward(dy, y)


def adam_update(p, g, m, v, lr_t, b1, b2, eps):
    """In place: m, v <- Adam moments with gradient g; p -= lr_t * m / (sqrt(v) + eps)."""
    return get_backend().kernels.adam_update(p, g, m, v, lr_t, b1, b2, eps)


def gemm_to_nchw(out, bias, n, oh, ow):
    """(F, N*OH*OW) + bias -> contiguous (N, F, OH, OW): the conv GEMM's output in NCHW."""
    return get_backend().kernels.gemm_to_nchw(out, bias, n, oh, ow)


def nchw_to_gemm(y):
    """(N, F, OH, OW) -> contiguous (F, N*OH*OW): the layout the conv backward GEMMs want."""
    return get_backend().kernels.nchw_to_gemm(y)
