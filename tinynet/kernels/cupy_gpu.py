"""CUDA kernels for the CuPy backend: the same entry points as numpy_ref.

Each conv/pool kernel is a ``cupy.ElementwiseKernel`` (one GPU thread per output
element, type-generic over float32/float64, compiled once and cached by CuPy);
ReLU and Adam reuse the NumPy reference, whose ``xp`` calls run on CuPy as is.
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

from . import numpy_ref
from .numpy_ref import _out_hw

# ReLU and Adam: the reference's xp code runs as is on CuPy arrays.
relu_forward = numpy_ref.relu_forward
relu_backward = numpy_ref.relu_backward
adam_update = numpy_ref.adam_update

_IM2COL = cp.ElementwiseKernel(
    "raw T x, int32 c, int32 h, int32 w, int32 kh, int32 kw, int32 sh, int32 sw, int32 pt, int32 pl, "
    "int32 oh, int32 ow, int32 np_",
    "T col",
    """
    const int k = i / np_, r = i % np_;           // row k = (channel, p, q), column r = output pixel
    const int q = k % kw, p = (k / kw) % kh, ch = k / (kw * kh);
    const int j = r % ow, ii = (r / ow) % oh, b = r / (ow * oh);
    const int y = ii * sh + p - pt, xx = j * sw + q - pl;
    col = (y >= 0 && y < h && xx >= 0 && xx < w) ? x[((b * c + ch) * h + y) * w + xx] : (T)0;
    """,
    "tinynet_im2col",
)

_COL2IM = cp.ElementwiseKernel(
    "raw T cols, int32 c, int32 h, int32 w, int32 kh, int32 kw, int32 sh, int32 sw, int32 pt, int32 pl, "
    "int32 oh, int32 ow, int32 np_",
    "T dx",
    """
    const int xx = i % w, y = (i / w) % h, ch = (i / (w * h)) % c, b = i / (w * h * c);
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
            acc += cols[((ch * kh + p) * kw + q) * np_ + (b * oh + ii) * ow + j];
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

_GEMM_TO_NCHW = cp.ElementwiseKernel(
    "raw T src, raw T bias, int32 f, int32 npix, int32 np_",
    "T out",
    """
    const int p = i % npix, c = (i / npix) % f, b = i / (npix * f);
    out = src[c * np_ + b * npix + p] + bias[c];
    """,
    "tinynet_gemm_to_nchw",
)

_NCHW_TO_GEMM = cp.ElementwiseKernel(
    "raw T y, int32 f, int32 npix, int32 np_",
    "T dst",
    """
    const int c = i / np_, r = i % np_, b = r / npix, p = r % npix;
    dst = y[(b * f + c) * npix + p];
    """,
    "tinynet_nchw_to_gemm",
)


def im2col(x, kh, kw, stride, pads):
    n, c, h, w = x.shape
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    cols = cp.empty((c * kh * kw, n * oh * ow), dtype=x.dtype)
    _IM2COL(cp.ascontiguousarray(x), c, h, w, kh, kw, stride[0], stride[1], pads[0], pads[2], oh, ow, n * oh * ow, cols)
    return cols


def col2im(cols, x_shape, kh, kw, stride, pads):
    n, c, h, w = x_shape
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    dx = cp.empty(x_shape, dtype=cols.dtype)
    _COL2IM(cp.ascontiguousarray(cols), c, h, w, kh, kw, stride[0], stride[1], pads[0], pads[2], oh, ow, n * oh * ow,
            dx)
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


def gemm_to_nchw(out, bias, n, oh, ow):
    f = out.shape[0]
    y = cp.empty((n, f, oh, ow), dtype=out.dtype)
    _GEMM_TO_NCHW(cp.ascontiguousarray(out), bias, f, oh * ow, n * oh * ow, y)
    return y


def nchw_to_gemm(y):
    n, f, oh, ow = y.shape
    dst = cp.empty((f, n * oh * ow), dtype=y.dtype)
    _NCHW_TO_GEMM(cp.ascontiguousarray(y), f, oh * ow, n * oh * ow, dst)
    return dst
