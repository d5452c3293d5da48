"""Numba-compiled CPU kernels: the same four entry points as numpy_ref.

Why they win: the reference builds padded copies and strided temporaries for
each of the KH*KW window positions; these loops touch each element once, write
the output in its final layout, and run in parallel over independent rows or
image planes (``prange``), so no two threads ever write the same element.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


def _out_hw(h, w, kh, kw, stride, pads):
    return (h + pads[0] + pads[1] - kh) // stride[0] + 1, (w + pads[2] + pads[3] - kw) // stride[1] + 1


@njit(parallel=True, cache=True)
def _im2col(x, kh, kw, sh, sw, pt, pl, oh, ow, cols):
    n, c, h, w = x.shape
    zero = x.dtype.type(0)  # keeps float32 float32
    for r in prange(n * oh):
        b, i = r // oh, r % oh
        for j in range(ow):
            row = r * ow + j
            for ch in range(c):
                for p in range(kh):
                    yy = i * sh + p - pt
                    for q in range(kw):
                        xx = j * sw + q - pl
                        v = zero
                        if 0 <= yy < h and 0 <= xx < w:
                            v = x[b, ch, yy, xx]
                        cols[row, (ch * kh + p) * kw + q] = v


@njit(parallel=True, cache=True)
def _col2im(cols, kh, kw, sh, sw, pt, pl, oh, ow, dx):
    n, c, h, w = dx.shape
    for bc in prange(n * c):  # one image plane per task: no write conflicts
        b, ch = bc // c, bc % c
        for i in range(oh):
            for j in range(ow):
                row = (b * oh + i) * ow + j
                for p in range(kh):
                    yy = i * sh + p - pt
                    if yy < 0 or yy >= h:
                        continue
                    for q in range(kw):
                        xx = j * sw + q - pl
                        if 0 <= xx < w:
                            dx[b, ch, yy, xx] += cols[row, (ch * kh + p) * kw + q]


@njit(parallel=True, cache=True)
def _maxpool_fwd(x, kh, kw, sh, sw, pt, pl, y, argmax):
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for bc in prange(n * c):
        b, ch = bc // c, bc % c
        for i in range(oh):
            for j in range(ow):
                best = -np.inf
                arg = 0
                for p in range(kh):
                    yy = i * sh + p - pt
                    for q in range(kw):
                        xx = j * sw + q - pl
                        if 0 <= yy < h and 0 <= xx < w:
                            v = x[b, ch, yy, xx]
                            if v > best:
                                best = v
                                arg = p * kw + q
                y[b, ch, i, j] = best
                argmax[b, ch, i, j] = arg


@njit(parallel=True, cache=True)
def _maxpool_bwd(dy, argmax, kw, sh, sw, pt, pl, dx):
    n, c, oh, ow = dy.shape
    h, w = dx.shape[2], dx.shape[3]
    for bc in prange(n * c):
        b, ch = bc // c, bc % c
        for i in range(oh):
            for j in range(ow):
                a = argmax[b, ch, i, j]
                yy = i * sh + a // kw - pt
                xx = j * sw + a % kw - pl
                if 0 <= yy < h and 0 <= xx < w:
                    dx[b, ch, yy, xx] += dy[b, ch, i, j]


def im2col(x, kh, kw, stride, pads):
    n, c, h, w = x.shape
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    cols = np.empty((n * oh * ow, c * kh * kw), dtype=x.dtype)
    _im2col(np.ascontiguousarray(x), kh, kw, stride[0], stride[1], pads[0], pads[2], oh, ow, cols)
    return cols


def col2im(cols, x_shape, kh, kw, stride, pads):
    n, c, h, w = x_shape
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    dx = np.zeros(x_shape, dtype=cols.dtype)
    _col2im(np.ascontiguousarray(cols), kh, kw, stride[0], stride[1], pads[0], pads[2], oh, ow, dx)
    return dx


def maxpool_forward(x, kh, kw, stride, pads):
    n, c, h, w = x.shape
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    argmax = np.empty((n, c, oh, ow), dtype=np.int8)
    _maxpool_fwd(np.ascontiguousarray(x), kh, kw, stride[0], stride[1], pads[0], pads[2], y, argmax)
    return y, argmax


def maxpool_backward(dy, argmax, x_shape, kh, kw, stride, pads):
    dx = np.zeros(x_shape, dtype=dy.dtype)
    _maxpool_bwd(np.ascontiguousarray(dy), argmax, kw, stride[0], stride[1], pads[0], pads[2], dx)
    return dx
