"""Numba-compiled CPU kernels: the same entry points as numpy_ref, same numbers.

Why they are faster than the reference:
- padding is done once up front (a cheap contiguous copy), so the inner loops
  carry no bounds checks and no branches;
- every loop writes its output in its final layout, in one pass;
- work is split over images (or image planes) with ``prange``, so two threads
  never write the same element and no atomics are needed;
- 2x2/stride-2 max pooling (every pool in the course's models) has a
  branch-free fast path: on random data a compare-and-branch mispredicts half
  the time (measured 4.2 ms -> 0.9 ms for a 32x32x26x26 batch).
Measure before changing anything here: ``python -m bench.layers``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .numpy_ref import _out_hw, _pad


@njit(parallel=True, cache=True)
def _im2col(xp, kh, kw, sh, sw, oh, ow, cols):
    n, c = xp.shape[0], xp.shape[1]
    for r in prange(n * oh):
        b, i = r // oh, r % oh
        for j in range(ow):
            row = cols[r * ow + j]
            k = 0
            for ch in range(c):
                for p in range(kh):
                    src = xp[b, ch, i * sh + p]
                    for q in range(kw):
                        row[k] = src[j * sw + q]
                        k += 1


@njit(parallel=True, cache=True)
def _col2im(cols, kh, kw, sh, sw, oh, ow, dxp):
    n, c = dxp.shape[0], dxp.shape[1]
    for b in prange(n):  # one image per task: no two tasks touch the same pixel
        for i in range(oh):
            for j in range(ow):
                row = cols[(b * oh + i) * ow + j]
                k = 0
                for ch in range(c):
                    for p in range(kh):
                        dst = dxp[b, ch, i * sh + p]
                        for q in range(kw):
                            dst[j * sw + q] += row[k]
                            k += 1


@njit(parallel=True, cache=True)
def _maxpool_fwd(xp, kh, kw, sh, sw, y, argmax):
    n, c, oh, ow = y.shape
    for bc in prange(n * c):
        b, ch = bc // c, bc % c
        src, dst, am = xp[b, ch], y[b, ch], argmax[b, ch]
        for i in range(oh):
            for j in range(ow):
                best = src[i * sh, j * sw]
                arg = 0
                for p in range(kh):
                    for q in range(kw):
                        v = src[i * sh + p, j * sw + q]
                        if v > best:  # strict: ties keep the first, as the reference does
                            best = v
                            arg = p * kw + q
                dst[i, j] = best
                am[i, j] = arg


@njit(parallel=True, cache=True)
def _maxpool_fwd_2x2(xp, y, argmax):
    n, c, oh, ow = y.shape
    for bc in prange(n * c):
        b, ch = bc // c, bc % c
        src, dst, am = xp[b, ch], y[b, ch], argmax[b, ch]
        for i in range(oh):
            r0, r1 = src[2 * i], src[2 * i + 1]
            for j in range(ow):
                v0, v1, v2, v3 = r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]
                m01, a01 = (v0, 0) if v0 >= v1 else (v1, 1)
                m23, a23 = (v2, 2) if v2 >= v3 else (v3, 3)
                if m01 >= m23:
                    dst[i, j], am[i, j] = m01, a01
                else:
                    dst[i, j], am[i, j] = m23, a23


@njit(parallel=True, cache=True)
def _maxpool_bwd(dy, argmax, kw, sh, sw, dxp):
    n, c, oh, ow = dy.shape
    for bc in prange(n * c):
        b, ch = bc // c, bc % c
        g, am, dst = dy[b, ch], argmax[b, ch], dxp[b, ch]
        for i in range(oh):
            for j in range(ow):
                a = am[i, j]
                dst[i * sh + a // kw, j * sw + a % kw] += g[i, j]


@njit(parallel=True, cache=True)
def _rows_to_nchw(rows, bias, out):
    n, f, oh, ow = out.shape
    p_count = oh * ow
    for b in prange(n):
        for p in range(p_count):
            r = b * p_count + p
            for c in range(f):
                out[b, c, p // ow, p % ow] = rows[r, c] + bias[c]


@njit(parallel=True, cache=True)
def _nchw_to_rows(y, rows):
    n, f, oh, ow = y.shape
    p_count = oh * ow
    for b in prange(n):
        for p in range(p_count):
            r = b * p_count + p
            for c in range(f):
                rows[r, c] = y[b, c, p // ow, p % ow]


def _crop(dxp, x_shape, pads):
    h, w = x_shape[2], x_shape[3]
    if not any(pads):
        return dxp
    return np.ascontiguousarray(dxp[:, :, pads[0] : pads[0] + h, pads[2] : pads[2] + w])


def im2col(x, kh, kw, stride, pads):
    n, c, h, w = x.shape
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    cols = np.empty((n * oh * ow, c * kh * kw), dtype=x.dtype)
    _im2col(np.ascontiguousarray(_pad(x, pads)), kh, kw, stride[0], stride[1], oh, ow, cols)
    return cols


def col2im(cols, x_shape, kh, kw, stride, pads):
    n, c, h, w = x_shape
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    dxp = np.zeros((n, c, h + pads[0] + pads[1], w + pads[2] + pads[3]), dtype=cols.dtype)
    _col2im(np.ascontiguousarray(cols), kh, kw, stride[0], stride[1], oh, ow, dxp)
    return _crop(dxp, x_shape, pads)


def maxpool_forward(x, kh, kw, stride, pads):
    n, c, h, w = x.shape
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    argmax = np.empty((n, c, oh, ow), dtype=np.int8)
    xp = np.ascontiguousarray(_pad(x, pads, value=-np.inf))
    if (kh, kw) == (2, 2) and tuple(stride) == (2, 2):
        _maxpool_fwd_2x2(xp, y, argmax)
    else:
        _maxpool_fwd(xp, kh, kw, stride[0], stride[1], y, argmax)
    return y, argmax


def maxpool_backward(dy, argmax, x_shape, kh, kw, stride, pads):
    n, c, h, w = x_shape
    dxp = np.zeros((n, c, h + pads[0] + pads[1], w + pads[2] + pads[3]), dtype=dy.dtype)
    _maxpool_bwd(np.ascontiguousarray(dy), argmax, kw, stride[0], stride[1], dxp)
    return _crop(dxp, x_shape, pads)


def rows_to_nchw(rows, bias, n, oh, ow):
    out = np.empty((n, rows.shape[1], oh, ow), dtype=rows.dtype)
    _rows_to_nchw(np.ascontiguousarray(rows), bias, out)
    return out


def nchw_to_rows(y):
    n, f, oh, ow = y.shape
    rows = np.empty((n * oh * ow, f), dtype=y.dtype)
    _nchw_to_rows(np.ascontiguousarray(y), rows)
    return rows
