"""Numba kernels of the convolution: im2col/col2im with the GEMM layout passes, and the direct 3x3 convolution.

Two routes to the same numbers (numpy_ref has the reference of each):
- columns: im2col gathers each output pixel's window into a column of (C*KH*KW, N*OH*OW), matmul multiplies,
  gemm_to_nchw adds the bias and writes NCHW; backward: nchw_to_gemm, matmul, col2im. Each (channel, p, q) row of
  the columns is the image shifted by (p, q), so im2col/col2im are runs of contiguous copies, and the stride-1
  loops vectorise;
- direct (conv_direct_forward/backward): 3x3 windows at stride 1 without columns, over flat padded planes that stay
  in the cache; conv_direct_pays says where it is the faster route.
Probe measurements behind these choices: bench/RESULTS.md, "Design notes behind the Numba kernels".
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

import tinynet.kernels.numpy_ref as numpy_ref  # the reference (this file's fallback for NaN and inf)

from .numpy_ref import _out_hw, _pad


# -- im2col / col2im ----------------------------------------------------------------------------------------------
@njit(parallel=True, cache=True)
def _im2col(xpad, kh, kw, sh, sw, oh, ow, cols):
    n, c = xpad.shape[0], xpad.shape[1]
    for b in prange(n):  # one image per task: its pixels are its own columns
        for ch in range(c):
            for p in range(kh):
                for q in range(kw):
                    dst = cols[(ch * kh + p) * kw + q]
                    for i in range(oh):
                        src, o = xpad[b, ch, i * sh + p], (b * oh + i) * ow
                        for j in range(ow):
                            dst[o + j] = src[j * sw + q]


@njit(parallel=True, cache=True)
def _im2col_unit_stride(xpad, kh, kw, oh, ow, cols):
    """_im2col for stride 1: each output row is a slice of an input row, copied as one slice.

    Numba turns a slice assignment into a plain copy; the element loop it replaces (dst[o + j] = src[j + q]) was not
    vectorised, as LLVM could not rule out that the two rows overlap.
    """
    n, c = xpad.shape[0], xpad.shape[1]
    for b in prange(n):
        for ch in range(c):
            for p in range(kh):
                for q in range(kw):
                    dst = cols[(ch * kh + p) * kw + q]
                    for i in range(oh):
                        o = (b * oh + i) * ow
                        dst[o:o + ow] = xpad[b, ch, i + p, q:q + ow]


@njit(parallel=True, cache=True)
def _col2im(cols, kh, kw, sh, sw, oh, ow, dxp):
    n, c = dxp.shape[0], dxp.shape[1]
    for b in prange(n):  # one image per task: no two tasks touch the same pixel
        for ch in range(c):
            for p in range(kh):
                for q in range(kw):
                    src = cols[(ch * kh + p) * kw + q]
                    for i in range(oh):
                        dst, o = dxp[b, ch, i * sh + p], (b * oh + i) * ow
                        for j in range(ow):
                            dst[j * sw + q] += src[o + j]


@njit(parallel=True, cache=True)
def _col2im_unit_stride(cols, kh, kw, oh, ow, dxp):
    """_col2im for stride 1: the sum runs over two slices taken first, so LLVM sees two arrays starting at index 0 and
    vectorises the loop (a slice += would allocate a temporary). The same additions in the same order as _col2im."""
    n, c = dxp.shape[0], dxp.shape[1]
    for b in prange(n):
        for ch in range(c):
            for p in range(kh):
                for q in range(kw):
                    src = cols[(ch * kh + p) * kw + q]
                    for i in range(oh):
                        o = (b * oh + i) * ow
                        dst, add = dxp[b, ch, i + p, q:q + ow], src[o:o + ow]
                        for j in range(ow):
                            dst[j] += add[j]


def _crop(dxp, x_shape, pads):
    h, w = x_shape[2], x_shape[3]
    if not any(pads):
        return dxp
    return np.ascontiguousarray(dxp[:, :, pads[0] : pads[0] + h, pads[2] : pads[2] + w])


def im2col(x, kh, kw, stride, pads):
    n, c, h, w = x.shape
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    cols = np.empty((c * kh * kw, n * oh * ow), dtype=x.dtype)
    xpad = np.ascontiguousarray(_pad(x, pads))
    if tuple(stride) == (1, 1):
        _im2col_unit_stride(xpad, kh, kw, oh, ow, cols)
    else:
        _im2col(xpad, kh, kw, stride[0], stride[1], oh, ow, cols)
    return cols


def col2im(cols, x_shape, kh, kw, stride, pads):
    n, c, h, w = x_shape
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    dxp = np.zeros((n, c, h + pads[0] + pads[1], w + pads[2] + pads[3]), dtype=cols.dtype)
    cols = np.ascontiguousarray(cols)
    if tuple(stride) == (1, 1):
        _col2im_unit_stride(cols, kh, kw, oh, ow, dxp)
    else:
        _col2im(cols, kh, kw, stride[0], stride[1], oh, ow, dxp)
    return _crop(dxp, x_shape, pads)


# -- the GEMM's layout: (F, N*OH*OW) <-> NCHW ---------------------------------------------------------------------
@njit(parallel=True, cache=True)
def _gemm_to_nchw(out, bias, y):
    n, f, p_count = y.shape
    for b in prange(n):
        for c in range(f):
            src, dst, bc = out[c], y[b, c], bias[c]
            for p in range(p_count):
                dst[p] = src[b * p_count + p] + bc


@njit(parallel=True, cache=True)
def _nchw_to_gemm(y, out):
    n, f, p_count = y.shape
    for b in prange(n):
        for c in range(f):
            src, dst = y[b, c], out[c]
            for p in range(p_count):
                dst[b * p_count + p] = src[p]


def gemm_to_nchw(out, bias, n, oh, ow):
    y = np.empty((n, out.shape[0], oh * ow), dtype=out.dtype)
    _gemm_to_nchw(np.ascontiguousarray(out), bias, y)
    return y.reshape(n, out.shape[0], oh, ow)


def nchw_to_gemm(y):
    n, f, oh, ow = y.shape
    out = np.empty((f, n * oh * ow), dtype=y.dtype)
    _nchw_to_gemm(np.ascontiguousarray(y).reshape(n, f, oh * ow), out)
    return out


# -- direct 3x3 convolution, stride 1 -----------------------------------------------------------------------------
# im2col copies the input 9 times into columns that do not fit in the cache (29 MB for 32 channels at 28x28, batch
# 32), and the backward pass writes and reads them again: in the 28x28 layers that memory traffic cost as much as the
# GEMMs. Here each padded input plane is flattened with its padded width wp, so window position (i, j) of output
# pixel p = h*wp + w is input element p + i*wp + j: one output plane is 9 shifted, contiguous multiply-adds per input
# channel, over planes that stay in the L1 cache. The two columns of each output row that fall in the right padding
# (w >= OW) are computed and thrown away. Where it stops paying: conv_direct_pays.
@njit(parallel=True, cache=True, fastmath={"reassoc"})
def _flat_pad(x, top, left, wp, out):
    """Copy x's planes into out (N, C, HP*WP + 2), already zeroed, at row ``top`` and column ``left`` of the padded
    plane. Returns sum(x * 0): 0 when x is finite, NaN when it holds a NaN or an inf."""
    n, c, h, w = x.shape
    check = 0.0
    for bc in prange(n * c):
        b, ch = bc // c, bc % c
        src, dst = x[b, ch], out[b, ch]
        for i in range(h):
            row = dst[(top + i) * wp + left : (top + i) * wp + left + w]
            for j in range(w):
                row[j] = src[i, j]
                check += src[i, j] * 0
    return check


@njit(inline="always")
def _block_of_4(first, f):
    """The 4 output channels first..first+3, the last repeated where f runs out (its results are not kept).

    A partial block wastes the repeated channels' work: up to 3 of 4 when F < 4 (or, for dx, C < 4)."""
    return min(first, f - 1), min(first + 1, f - 1), min(first + 2, f - 1), min(first + 3, f - 1)


# Register blocking: each pass over a plane reads one kernel row's 3 shifted inputs once and feeds 4 output channels
# from them. One output channel per pass with all 9 taps made, per step of the loop, 10 loads (9 of them unaligned)
# and 1 store for 9 multiply-adds, so the loads, not the arithmetic, set the pace. Now a step makes 3 input loads and
# 4 sum loads and stores for 12 multiply-adds. The 12 weights are read into scalar locals before the loop, so the
# loop body is only loads, multiply-adds and stores, which LLVM vectorises. 4 output channels per pass, as 8 were no
# faster.
@njit(parallel=True, cache=True, fastmath={"contract"})
def _conv3x3(xflat, w9, bias, wp, y):
    """y (N, F, OH, OW) = bias + the 3x3 convolution of the flat padded planes xflat (N, C, HP*WP + 2), w9 (F, C, 9).

    One task per image and block of 4 output channels; one pass per input channel and kernel row i:
    y[o][p] += w[o, ch, 3i] * x[p + i*wp] + w[o, ch, 3i + 1] * x[p + i*wp + 1] + w[o, ch, 3i + 2] * x[p + i*wp + 2]."""
    n, c = xflat.shape[0], xflat.shape[1]
    f, oh, ow = y.shape[1], y.shape[2], y.shape[3]
    length = oh * wp  # output pixels in the padded width, the last wp - ow of each row thrown away
    blocks = (f + 3) // 4
    for task in prange(n * blocks):
        b, first = task // blocks, 4 * (task % blocks)
        o0, o1, o2, o3 = _block_of_4(first, f)
        a0, a1, a2, a3 = (np.full(length, bias[o0], dtype=y.dtype), np.full(length, bias[o1], dtype=y.dtype),
                          np.full(length, bias[o2], dtype=y.dtype), np.full(length, bias[o3], dtype=y.dtype))
        for ch in range(c):
            x = xflat[b, ch]
            for i in range(3):
                s, t = i * wp, 3 * i
                # three slices taken first: LLVM sees arrays starting at 0 and vectorises the loop over p
                x0, x1, x2 = x[s : s + length], x[s + 1 : s + 1 + length], x[s + 2 : s + 2 + length]
                k0, k1, k2, k3 = w9[o0, ch, t : t + 3], w9[o1, ch, t : t + 3], w9[o2, ch, t : t + 3], w9[o3, ch, t : t + 3]
                k00, k01, k02, k10, k11, k12 = k0[0], k0[1], k0[2], k1[0], k1[1], k1[2]
                k20, k21, k22, k30, k31, k32 = k2[0], k2[1], k2[2], k3[0], k3[1], k3[2]
                for p in range(length):
                    v0, v1, v2 = x0[p], x1[p], x2[p]
                    a0[p] += k00 * v0 + k01 * v1 + k02 * v2
                    a1[p] += k10 * v0 + k11 * v1 + k12 * v2
                    a2[p] += k20 * v0 + k21 * v1 + k22 * v2
                    a3[p] += k30 * v0 + k31 * v1 + k32 * v2
        for r, acc in enumerate((a0, a1, a2, a3)):
            if first + r < f:
                for i in range(oh):
                    y[b, first + r, i, :] = acc[i * wp : i * wp + ow]


# The weight gradient blocked the same way: 4 output channels and one input channel per task, one pass per image and
# kernel row, 12 running sums (which stay in registers: reductions).
@njit(parallel=True, cache=True, fastmath={"contract", "reassoc"})
def _conv3x3_grads(xflat, dyw, wp, dw9, db):
    """dw9 (F, C, 9) and db (F,) from dyw (N, F, OH*WP), dy in the padded width with zeros in the thrown-away
    columns: dW[o, ch, i*3 + j] = sum over images and pixels p of dy[o][p] * x[ch][p + i*wp + j]."""
    n, c = xflat.shape[0], xflat.shape[1]
    f, length = dyw.shape[1], dyw.shape[2]
    zero = dw9.dtype.type(0)
    blocks = (f + 3) // 4
    for task in prange(blocks * c):
        first, ch = 4 * (task // c), task % c
        o0, o1, o2, o3 = _block_of_4(first, f)
        sums = np.zeros((4, 9), dtype=dw9.dtype)
        for b in range(n):
            d0, d1, d2, d3, x = dyw[b, o0], dyw[b, o1], dyw[b, o2], dyw[b, o3], xflat[b, ch]
            for i in range(3):
                s, t = i * wp, 3 * i
                x0, x1, x2 = x[s : s + length], x[s + 1 : s + 1 + length], x[s + 2 : s + 2 + length]
                s00 = s01 = s02 = s10 = s11 = s12 = s20 = s21 = s22 = s30 = s31 = s32 = zero
                for p in range(length):
                    v0, v1, v2, e0, e1, e2, e3 = x0[p], x1[p], x2[p], d0[p], d1[p], d2[p], d3[p]
                    s00, s01, s02 = s00 + e0 * v0, s01 + e0 * v1, s02 + e0 * v2  # output channel o0, taps (i, 0..2)
                    s10, s11, s12 = s10 + e1 * v0, s11 + e1 * v1, s12 + e1 * v2
                    s20, s21, s22 = s20 + e2 * v0, s21 + e2 * v1, s22 + e2 * v2
                    s30, s31, s32 = s30 + e3 * v0, s31 + e3 * v1, s32 + e3 * v2
                for k, total in enumerate((s00, s01, s02, s10, s11, s12, s20, s21, s22, s30, s31, s32)):
                    sums[k // 3, t + k % 3] += total  # output channel first + k // 3, tap (i, k % 3)
        for r in range(4):
            if first + r < f:
                dw9[first + r, ch, :] = sums[r]
    for o in prange(f):
        total = zero  # in dy's dtype, as the reference sums it
        for b in range(n):
            for p in range(length):
                total += dyw[b, o, p]
        db[o] = total


def _flat_padded(x, pads):
    """x (N, C, H, W) -> (zero-padded planes flattened to (N, C, HP*WP + 2), WP, whether x is finite).

    The two extra zeros let the last output row's window positions (i, j) = (2, 1), (2, 2) read past the plane."""
    n, c, h, w = x.shape
    hp, wp = h + pads[0] + pads[1], w + pads[2] + pads[3]
    out = np.zeros((n, c, hp * wp + 2), dtype=x.dtype)
    check = _flat_pad(np.ascontiguousarray(x), pads[0], pads[2], wp, out)
    return out, wp, check == 0


def conv_direct_pays(x_shape, w_shape, stride, pads):
    """3x3 windows, stride 1, output planes of at least 196 pixels (the 28x28, 26x26 and 14x14 layers).

    Smaller planes make short passes (7x7: 63 pixels per pass), where im2col + GEMM is faster. At 14x14 the two are
    level for a single layer, and the direct path is faster in the whole model, whose columns come and go through
    memory."""
    n, c, h, w = x_shape
    oh, ow = h + pads[0] + pads[1] - 2, w + pads[2] + pads[3] - 2
    return tuple(w_shape[2:]) == (3, 3) and tuple(stride) == (1, 1) and max(pads) <= 2 and oh * ow >= 196


def conv_direct_forward(x, W, b, pads):
    f, c, kh, kw = W.shape
    if (kh, kw) != (3, 3):
        return numpy_ref.conv_direct_forward(x, W, b, pads)
    xflat, wp, _ = _flat_padded(x, pads)
    oh, ow = _out_hw(x.shape[2], x.shape[3], 3, 3, (1, 1), pads)
    y = np.empty((x.shape[0], f, oh, ow), dtype=x.dtype)
    _conv3x3(xflat, np.ascontiguousarray(W).reshape(f, c, 9), np.ascontiguousarray(b), wp, y)
    return y


def conv_direct_backward(dy, x, W, pads, input_grad=True):
    """dW from dy against the flat padded x; dx as the forward kernel on dy padded by 2 - pads with W turned
    (C, F, 3, 3) and flipped. The thrown-away columns and dy's padding meet x and W as zeros: a NaN or inf there
    would turn a zero term into NaN where the reference has no term at all, so non-finite x or W take the reference."""
    f, c, kh, kw = W.shape
    if (kh, kw) != (3, 3) or max(pads) > 2:
        return numpy_ref.conv_direct_backward(dy, x, W, pads, input_grad)
    xflat, wp, x_finite = _flat_padded(x, pads)
    if not (x_finite and np.isfinite(W).all()):
        return numpy_ref.conv_direct_backward(dy, x, W, pads, input_grad)
    n, _, oh, ow = dy.shape
    dyw = np.zeros((n, f, oh, wp), dtype=dy.dtype)
    dyw[:, :, :, :ow] = dy
    dw9, db = np.empty((f, c, 9), dtype=dy.dtype), np.empty(f, dtype=dy.dtype)
    _conv3x3_grads(xflat, dyw.reshape(n, f, oh * wp), wp, dw9, db)
    dx = None
    if input_grad:
        dyflat, wpd, _ = _flat_padded(dy, tuple(2 - p for p in pads))
        turned = np.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)).reshape(c, f, 9)
        dx = np.empty(x.shape, dtype=dy.dtype)
        _conv3x3(dyflat, turned, np.zeros(c, dtype=dy.dtype), wpd, dx)
    return dx, dw9.reshape(W.shape), db
