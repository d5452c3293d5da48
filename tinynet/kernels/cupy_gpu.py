"""CUDA kernels for the CuPy backend: the same entry points as numpy_ref.

Each kernel is a ``cupy.ElementwiseKernel`` (one GPU thread per output
element, type-generic over float32/float64, compiled once and cached by CuPy).
col2im and the max-pool backward are written as *gathers* — one thread per
input pixel sums the contributions that land on it — so no two threads write
the same element and no atomics are needed. The GEMMs stay in cuBLAS
(``cupy.matmul``); memory comes from CuPy's pool.

Status: written against the NumPy reference, but not yet run on a GPU in this
project (see bench/RESULTS.md); the parity tests marked ``gpu`` check them
whenever a CUDA device is present.
"""

from __future__ import annotations

import cupy as cp

from .numpy_ref import _out_hw

_IM2COL = cp.ElementwiseKernel(
    "raw T x, int32 c, int32 h, int32 w, int32 kh, int32 kw, int32 sh, int32 sw, int32 pt, int32 pl, "
    "int32 oh, int32 ow",
    "T col",
    """
    const int ckk = c * kh * kw;
    const int r = i / ckk, k = i % ckk;           // row = output pixel, k = (channel, p, q)
    const int q = k % kw, p = (k / kw) % kh, ch = k / (kw * kh);
    const int j = r % ow, ii = (r / ow) % oh, b = r / (ow * oh);
    const int y = ii * sh + p - pt, xx = j * sw + q - pl;
    col = (y >= 0 && y < h && xx >= 0 && xx < w) ? x[((b * c + ch) * h + y) * w + xx] : (T)0;
    """,
    "tinynet_im2col",
)

_COL2IM = cp.ElementwiseKernel(
    "raw T cols, int32 c, int32 h, int32 w, int32 kh, int32 kw, int32 sh, int32 sw, int32 pt, int32 pl, "
    "int32 oh, int32 ow",
    "T dx",
    """
    const int xx = i % w, y = (i / w) % h, ch = (i / (w * h)) % c, b = i / (w * h * c);
    const int ckk = c * kh * kw;
    T acc = 0;
    for (int p = 0; p < kh; ++p) {
        const int yy = y + pt - p;                 // row of the window's top-left in padded coords
        if (yy < 0 || yy % sh) continue;
        const int ii = yy / sh;
        if (ii >= oh) continue;
        for (int q = 0; q < kw; ++q) {
            const int xq = xx + pl - q;
            if (xq < 0 || xq % sw) continue;
            const int j = xq / sw;
            if (j >= ow) continue;
            acc += cols[((b * oh + ii) * ow + j) * ckk + (ch * kh + p) * kw + q];
        }
    }
    dx = acc;
    """,
    "tinynet_col2im",
)

_POOL_FWD = cp.ElementwiseKernel(
    "raw T x, int32 h, int32 w, int32 kh, int32 kw, int32 sh, int32 sw, int32 pt, int32 pl, int32 oh, int32 ow",
    "T y, int8 am",
    """
    const int j = i % ow, ii = (i / ow) % oh, bc = i / (ow * oh);
    T best = -INFINITY;
    int arg = 0;
    for (int p = 0; p < kh; ++p) {
        const int yy = ii * sh + p - pt;
        if (yy < 0 || yy >= h) continue;           // padding is -inf: it never wins
        for (int q = 0; q < kw; ++q) {
            const int xx = j * sw + q - pl;
            if (xx < 0 || xx >= w) continue;
            const T v = x[(bc * h + yy) * w + xx];
            if (v > best) { best = v; arg = p * kw + q; }
        }
    }
    y = best;
    am = (signed char)arg;
    """,
    "tinynet_maxpool_fwd",
)

_POOL_BWD = cp.ElementwiseKernel(
    "raw T dy, raw int8 am, int32 h, int32 w, int32 kh, int32 kw, int32 sh, int32 sw, int32 pt, int32 pl, "
    "int32 oh, int32 ow",
    "T dx",
    """
    const int xx = i % w, y = (i / w) % h, bc = i / (w * h);
    T acc = 0;
    for (int p = 0; p < kh; ++p) {
        const int yy = y + pt - p;
        if (yy < 0 || yy % sh) continue;
        const int ii = yy / sh;
        if (ii >= oh) continue;
        for (int q = 0; q < kw; ++q) {
            const int xq = xx + pl - q;
            if (xq < 0 || xq % sw) continue;
            const int j = xq / sw;
            if (j >= ow) continue;
            const int o = (bc * oh + ii) * ow + j;
            if (am[o] == p * kw + q) acc += dy[o];
        }
    }
    dx = acc;
    """,
    "tinynet_maxpool_bwd",
)

_ROWS_TO_NCHW = cp.ElementwiseKernel(
    "raw T rows, raw T bias, int32 f, int32 npix",
    "T out",
    """
    const int p = i % npix, c = (i / npix) % f, b = i / (npix * f);
    out = rows[(b * npix + p) * f + c] + bias[c];
    """,
    "tinynet_rows_to_nchw",
)

_NCHW_TO_ROWS = cp.ElementwiseKernel(
    "raw T y, int32 f, int32 npix",
    "T rows",
    """
    const int c = i % f, r = i / f, b = r / npix, p = r % npix;
    rows = y[(b * f + c) * npix + p];
    """,
    "tinynet_nchw_to_rows",
)


def im2col(x, kh, kw, stride, pads):
    n, c, h, w = x.shape
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    cols = cp.empty((n * oh * ow, c * kh * kw), dtype=x.dtype)
    _IM2COL(cp.ascontiguousarray(x), c, h, w, kh, kw, stride[0], stride[1], pads[0], pads[2], oh, ow, cols)
    return cols


def col2im(cols, x_shape, kh, kw, stride, pads):
    n, c, h, w = x_shape
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    dx = cp.empty(x_shape, dtype=cols.dtype)
    _COL2IM(cp.ascontiguousarray(cols), c, h, w, kh, kw, stride[0], stride[1], pads[0], pads[2], oh, ow, dx)
    return dx


def maxpool_forward(x, kh, kw, stride, pads):
    n, c, h, w = x.shape
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    y = cp.empty((n, c, oh, ow), dtype=x.dtype)
    am = cp.empty((n, c, oh, ow), dtype=cp.int8)
    _POOL_FWD(cp.ascontiguousarray(x), h, w, kh, kw, stride[0], stride[1], pads[0], pads[2], oh, ow, y, am)
    return y, am


def maxpool_backward(dy, argmax, x_shape, kh, kw, stride, pads):
    n, c, h, w = x_shape
    oh, ow = dy.shape[2], dy.shape[3]
    dx = cp.empty(x_shape, dtype=dy.dtype)
    _POOL_BWD(cp.ascontiguousarray(dy), argmax, h, w, kh, kw, stride[0], stride[1], pads[0], pads[2], oh, ow, dx)
    return dx


def rows_to_nchw(rows, bias, n, oh, ow):
    f = rows.shape[1]
    out = cp.empty((n, f, oh, ow), dtype=rows.dtype)
    _ROWS_TO_NCHW(cp.ascontiguousarray(rows), bias, f, oh * ow, out)
    return out


def nchw_to_rows(y):
    n, f, oh, ow = y.shape
    rows = cp.empty((n * oh * ow, f), dtype=y.dtype)
    _NCHW_TO_ROWS(cp.ascontiguousarray(y), f, oh * ow, rows)
    return rows
