"""Numba-compiled CPU kernels: the same entry points as numpy_ref, same numbers.

Why they are faster than the reference:
- padding is done once up front (a cheap contiguous copy), so the inner loops
  carry no bounds checks and no branches;
- every loop writes its output in its final layout, in one pass;
- work is split over images (or image planes) with ``prange``, so two threads
  never write the same element and no atomics are needed;
- the columns are (C*KH*KW, N*OH*OW): each (channel, p, q) row is the image
  shifted by (p, q), so im2col/col2im are runs of contiguous copies (measured
  at batch 32 for the second conv, the old (N*OH*OW, C*KH*KW) layout against
  this one, both with stride-1 loops: im2col 0.75 -> 0.40 ms, col2im 0.73 ->
  0.49 ms);
- 2x2/stride-2 max pooling (every pool in the course's models) has
  branch-free kernels: on random data a compare-and-branch mispredicts half
  the time (forward for a 32x32x26x26 batch: 4.2 ms generic, 0.19 ms now).
Measure before changing anything here: ``python -m bench.layers``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

import tinynet.kernels.numpy_ref as numpy_ref  # the reference (this file's fallback for NaN and inf)

from ..counter_rng import GOLDEN, dropout_key, dropout_threshold
from .numpy_ref import _out_hw, _pad


@njit(inline="always")
def _beats(v, best):
    """v wins over best with np.argmax's rules: strictly larger, or NaN over a number. No branch.

    Written as not(v <= best) and best == best: 2x2 pool forward 0.108 ms at batch 32 (0.154 ms as
    v > best or (v != v and best == best); 0.08 ms for the NaN-blind v > best).
    """
    return ((v <= best) ^ True) & (best == best)


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
    vectorised, as LLVM could not rule out that the two rows overlap. Best of 5 x 20 calls, batch 32, 2026-11-25 (with
    a training on the other core): 32 channels at 28x28 6.4 -> 2.8 ms, 16 at 28x28 2.6 -> 0.9, 64 at 14x14 2.6 -> 1.6.
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
    vectorises the loop (a slice += would allocate a temporary). The same additions in the same order as _col2im.
    Best of 5 x 20 calls, batch 32, 2026-11-25 (with a training on the other core): 32 channels at 28x28 7.9 -> 3.8 ms,
    16 at 28x28 3.5 -> 1.0, 64 at 14x14 2.8 -> 1.7, 128 at 7x7 1.5 -> 1.1."""
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


@njit(parallel=True, cache=True)
def _maxpool_fwd(xpad, kh, kw, sh, sw, y, argmax):
    n, c, oh, ow = y.shape
    for bc in prange(n * c):
        b, ch = bc // c, bc % c
        src, dst, am = xpad[b, ch], y[b, ch], argmax[b, ch]
        for i in range(oh):
            for j in range(ow):
                best = src[i * sh, j * sw]
                arg = 0
                for p in range(kh):
                    for q in range(kw):
                        v = src[i * sh + p, j * sw + q]
                        if _beats(v, best):  # ties keep the first, the first NaN wins, as the reference
                            best = v
                            arg = p * kw + q
                dst[i, j] = best
                am[i, j] = arg


@njit(parallel=True, cache=True)
def _maxpool_fwd_2x2(xpad, y, argmax):
    n, c, oh, ow = y.shape
    for bc in prange(n * c):
        b, ch = bc // c, bc % c
        src, dst, am = xpad[b, ch], y[b, ch], argmax[b, ch]
        for i in range(oh):
            r0, r1 = src[2 * i], src[2 * i + 1]
            for j in range(ow):
                v0, v1, v2, v3 = r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]
                # selects, not branches; _beats keeps ties on the first position and lets the first NaN win
                right_top, right_bottom = _beats(v1, v0), _beats(v3, v2)
                top = v1 if right_top else v0
                bottom = v3 if right_bottom else v2
                use_bottom = _beats(bottom, top)
                dst[i, j] = bottom if use_bottom else top
                am[i, j] = (2 + right_bottom) if use_bottom else right_top


@njit(parallel=True, cache=True)
def _maxpool_bwd(dy, argmax, kh, kw, sh, sw, dxp):
    """Every position of a window gets dy * (position won): the reference's arithmetic, so NaN spreads alike."""
    n, c, oh, ow = dy.shape
    for bc in prange(n * c):
        b, ch = bc // c, bc % c
        g, am, dst = dy[b, ch], argmax[b, ch], dxp[b, ch]
        for i in range(oh):
            for j in range(ow):
                v, a = g[i, j], am[i, j]
                for p in range(kh):
                    for q in range(kw):
                        dst[i * sh + p, j * sw + q] += v * (a == p * kw + q)


@njit(parallel=True, cache=True)
def _maxpool_bwd_2x2(dy, argmax, dx):
    """Non-overlapping 2x2 windows: write every dx element once (no zero-fill, no scatter).

    ``v * (a == k)``: a multiply by the mask, as the reference does (NaN in dy spreads alike), and no
    branch. ``v if a == k else 0`` compiles to a branch that mispredicts half the time on random data
    (0.62 ms vs 0.14-0.20 ms for a 32x32x26x26 batch); ``v * (1.0 if a == k else 0.0)`` is not
    vectorised (0.46-0.50 ms).
    """
    n, c, oh, ow = dy.shape
    for bc in prange(n * c):
        b, ch = bc // c, bc % c
        g, am, dst = dy[b, ch], argmax[b, ch], dx[b, ch]
        for i in range(oh):
            d0, d1 = dst[2 * i], dst[2 * i + 1]
            for j in range(ow):
                v, a = g[i, j], am[i, j]
                d0[2 * j] = v * (a == 0)
                d0[2 * j + 1] = v * (a == 1)
                d1[2 * j] = v * (a == 2)
                d1[2 * j + 1] = v * (a == 3)
        dst[2 * oh :, :] = 0  # an odd last row or column belongs to no window
        dst[:, 2 * ow :] = 0


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


@njit(parallel=True, cache=True)
def _relu_fwd(x, y):
    for i in prange(x.size):  # 1-D: each thread gets one contiguous block
        v = x[i]
        y[i] = 0 if v <= 0 else v  # not "v > 0": NaN must pass through


@njit(parallel=True, cache=True)
def _relu_bwd(dy, y, dx):
    for i in prange(dy.size):  # a multiply, as the reference: NaN in dy stays NaN where the ReLU blocks
        dx[i] = dy[i] * (y[i] > 0)


def _dropout_loop(x, y, key, threshold, scale, zero):
    golden, c1, c2 = np.uint64(GOLDEN), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
    for i in prange(x.size):  # counter_rng.splitmix64, written out for one element
        z = key + np.uint64(i + 1) * golden
        z = (z ^ (z >> np.uint64(30))) * c1
        z = (z ^ (z >> np.uint64(27))) * c2
        z = z ^ (z >> np.uint64(31))
        y[i] = x[i] * (scale if (z >> np.uint64(32)) >= threshold else zero)


_dropout = njit(parallel=True, cache=True)(_dropout_loop)
# Small layers (a Dense layer's 32 x 64 outputs) on one thread: waking the second costs more than it saves,
# and the reference's dozen uint64 array operations cost 0.12 ms for 2,048 elements.
_dropout_serial = njit(cache=True)(_dropout_loop)


@njit(parallel=True, cache=True)
def _adam(p, g, m, v, lr_t, b1, c1, b2, c2, eps):
    # prange also makes LLVM vectorise this loop (a plain range loop ran 8x slower)
    for i in prange(p.size):  # same operations, in the same order, as the reference
        gi = g[i]
        mi = m[i] * b1 + c1 * gi
        vi = v[i] * b2 + c2 * (gi * gi)
        m[i], v[i] = mi, vi
        p[i] -= lr_t * mi / (np.sqrt(vi) + eps)


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


def maxpool_forward(x, kh, kw, stride, pads):
    n, c, h, w = x.shape
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    argmax = np.empty((n, c, oh, ow), dtype=np.int8)
    xpad = np.ascontiguousarray(_pad(x, pads, value=-np.inf))
    if (kh, kw) == (2, 2) and tuple(stride) == (2, 2):
        _maxpool_fwd_2x2(xpad, y, argmax)
    else:
        _maxpool_fwd(xpad, kh, kw, stride[0], stride[1], y, argmax)
    return y, argmax


def maxpool_backward(dy, argmax, x_shape, kh, kw, stride, pads):
    n, c, h, w = x_shape
    dy, argmax = np.ascontiguousarray(dy), np.ascontiguousarray(argmax)
    if _plain_2x2(kh, kw, stride, pads):
        dx = np.empty(x_shape, dtype=dy.dtype)
        _maxpool_bwd_2x2(dy, argmax, dx)
        return dx
    dxp = np.zeros((n, c, h + pads[0] + pads[1], w + pads[2] + pads[3]), dtype=dy.dtype)
    _maxpool_bwd(dy, argmax, kh, kw, stride[0], stride[1], dxp)
    return _crop(dxp, x_shape, pads)


def _plain_2x2(kh, kw, stride, pads):
    """2x2 windows, stride 2, no padding (every pool in the course's models): each pixel in at most one window."""
    return (kh, kw) == (2, 2) and tuple(stride) == (2, 2) and not any(pads)


# Below this many elements, waking the second thread costs more than it saves
# (a parallel loop over 10 floats: ~18 us; NumPy's few passes: ~8 us).
_SMALL = 1 << 14


def relu_forward(x):
    """One pass, no mask array (NumPy's x * (x > 0) makes three; 1.58 -> 0.32 ms at batch 128)."""
    if x.size < _SMALL:
        return numpy_ref.relu_forward(x)
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _relu_fwd(x.reshape(-1), y.reshape(-1))
    return y


def relu_backward(dy, y):
    if dy.size < _SMALL:
        return numpy_ref.relu_backward(dy, y)
    dy = np.ascontiguousarray(dy)
    dx = np.empty_like(dy)
    _relu_bwd(dy.reshape(-1), np.ascontiguousarray(y).reshape(-1), dx.reshape(-1))
    return dx


def adam_update(p, g, m, v, t, lr, b1, b2, eps):
    """One pass per parameter instead of ~10 array operations (0.30 -> 0.13 ms per step for the course CNN)."""
    contiguous = p.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous  # in place needs flat views
    if p.size < _SMALL or not contiguous:
        return numpy_ref.adam_update(p, g, m, v, t, lr, b1, b2, eps)
    f = p.dtype.type  # float32 parameters get float32 arithmetic, as NumPy does
    _adam(p.reshape(-1), np.ascontiguousarray(g).reshape(-1), m.reshape(-1), v.reshape(-1),
          f(numpy_ref.adam_step_size(t, lr, b1, b2)), f(b1), f(1 - b1), f(b2), f(1 - b2), f(eps))


def dropout(x, seed, calls, rate):
    """The reference's mask, drawn and applied in one pass, with no uint64 temporaries."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    t = x.dtype.type
    key = np.uint64(dropout_key(seed, int(calls[0])))
    kernel = _dropout_serial if x.size < _SMALL else _dropout
    kernel(x.reshape(-1), y.reshape(-1), key, np.uint64(dropout_threshold(rate)), t(1.0 / (1.0 - rate)), t(0))
    return y


# BatchNorm: one task per channel, its statistics summed in float64. The "reassoc" flag lets LLVM vectorise those
# sums (a different summation order from NumPy's, within rounding); unlike full fastmath it keeps NaN and inf
# semantics, so a NaN in a channel still turns its whole output NaN, as in the reference.
@njit(parallel=True, cache=True, fastmath={"reassoc"})
def _bn_fwd(x, gamma, beta, one, eps, y, xhat, mean, var, inv_std):
    n, c, s = x.shape
    m = n * s
    for ch in prange(c):
        total = 0.0
        for b in range(n):
            for k in range(s):
                total += x[b, ch, k]
        mu = total / m
        squares = 0.0  # a second pass over (x - mean)^2, as np.var does: no cancellation in E[x^2] - E[x]^2
        for b in range(n):
            for k in range(s):
                d = x[b, ch, k] - mu
                squares += d * d
        mean[ch] = mu
        var[ch] = squares / m
        istd = one / np.sqrt(var[ch] + eps)  # one and eps in x's dtype: computed in it, as the reference does
        inv_std[ch] = istd
        mu_t, g, bt = mean[ch], gamma[ch], beta[ch]
        for b in range(n):
            for k in range(s):
                h = (x[b, ch, k] - mu_t) * istd
                xhat[b, ch, k] = h
                y[b, ch, k] = g * h + bt


@njit(parallel=True, cache=True, fastmath={"reassoc"})
def _bn_bwd(dy, xhat, gamma, inv_std, m, dx, dgamma, dbeta):
    n, c, s = dy.shape
    for ch in prange(c):
        sum_dy = 0.0
        sum_dy_xhat = 0.0
        for b in range(n):
            for k in range(s):
                sum_dy += dy[b, ch, k]
                sum_dy_xhat += dy[b, ch, k] * xhat[b, ch, k]
        dgamma[ch] = sum_dy_xhat
        dbeta[ch] = sum_dy
        scale = gamma[ch] * inv_std[ch] / m
        db, dg = dbeta[ch], dgamma[ch]  # the sums rounded to dy's dtype (m too), as the reference has them
        for b in range(n):
            for k in range(s):
                dx[b, ch, k] = scale * (m * dy[b, ch, k] - db - xhat[b, ch, k] * dg)


def _per_channel(x):
    """x as a C-contiguous (N, C, S) array: S = H*W for images, 1 for (N, F) features."""
    return np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)


def batchnorm_forward(x, gamma, beta, eps):
    """Three passes over x in one loop per channel (NumPy's expressions make about nine): 1.28 -> 0.19 ms
    forward for a 32x32x28x28 batch on one thread."""
    if x.size < _SMALL:
        return numpy_ref.batchnorm_forward(x, gamma, beta, eps)
    x3 = _per_channel(x)
    y, xhat = np.empty_like(x3), np.empty_like(x3)
    c = x.shape[1]
    mean, var, inv_std = (np.empty(c, dtype=x.dtype) for _ in range(3))
    t = x.dtype.type
    _bn_fwd(x3, np.ascontiguousarray(gamma), np.ascontiguousarray(beta), t(1), t(eps), y, xhat, mean, var, inv_std)
    return y.reshape(x.shape), xhat.reshape(x.shape), mean, var, inv_std


def batchnorm_backward(dy, xhat, gamma, inv_std):
    """Two passes over dy and xhat (1.63 -> 0.18 ms for a 32x32x28x28 batch on one thread)."""
    if dy.size < _SMALL:
        return numpy_ref.batchnorm_backward(dy, xhat, gamma, inv_std)
    dy3 = _per_channel(dy)
    dx = np.empty_like(dy3)
    c = dy.shape[1]
    dgamma, dbeta = np.empty(c, dtype=dy.dtype), np.empty(c, dtype=dy.dtype)
    _bn_bwd(dy3, _per_channel(xhat), np.ascontiguousarray(gamma), np.ascontiguousarray(inv_std),
            dy.dtype.type(dy3.shape[0] * dy3.shape[2]), dx, dgamma, dbeta)
    return dx.reshape(dy.shape), dgamma, dbeta


# Softmax cross-entropy: a few small array operations per batch; the reference's own summation order keeps
# the Numba backend's losses bit for bit equal to NumPy's.
softmax_cross_entropy = numpy_ref.softmax_cross_entropy

# Matrix products: NumPy's BLAS, as in the reference.
matmul = numpy_ref.matmul


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
# (w >= OW) are computed and thrown away. Forward + backward with dx, batch 32, medians of 15 interleaved runs with
# OpenBLAS's AVX-512 kernels (a probe script, 2026-12-06, not kept as a run file; bench/RESULTS.md round 4 has the
# per-layer tables): 32 -> 32 channels at 28x28 12.5 ms as im2col + GEMM, 10.1 ms here (one output channel per
# pass; the blocked kernels below are faster again). Where it stops paying: conv_direct_pays.
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
# from them. One output channel per pass with all 9 taps ran at a third of the AVX-512 peak: per step of the loop, 10
# loads (9 of them unaligned) and 1 store for 9 multiply-adds, so the loads, not the arithmetic, set the pace. Now a
# step makes 3 input loads and 4 sum loads and stores for 12 multiply-adds. The 12 weights are read into scalar
# locals before the loop, so the loop body is only loads, multiply-adds and stores, which LLVM vectorises. Batch 32,
# best of 7 x 10 calls, 2026-12-06 (a probe script, not kept as a run file; bench/RESULTS.md round 5 has the layer
# and epoch tables): forward 32 -> 32 channels at 28x28 3.20 -> 1.47 ms, 16 -> 16 0.72 -> 0.44 ms; 8 output channels
# per pass were no faster than 4.
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
# kernel row, 12 running sums (which stay in registers: reductions). Probe as above: 32 -> 32 channels at 28x28
# 2.78 -> 1.59 ms, 16 -> 16 0.78 -> 0.50 ms.
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

    Smaller planes make short passes (7x7: 63 pixels per pass), where im2col + GEMM is faster: a training step of
    one layer at batch 32 (forward and backward with dx, best of 7 x 10; a probe script, 2026-12-06) took 7.9 ms here
    against 3.0 ms for 64 -> 128 channels at 7x7. At 14x14 the two were level for a single layer (64 -> 64: 7.0
    against 7.6 ms) and the direct path faster in the whole model, whose columns come and go through memory:
    deep_bn_cnn at batch 128, interleaved epochs of 6,400 images with the rule at 400 and at 196 pixels (probe runs,
    not kept as run files), 640 and 661 -> 730 and 703 images/s; level at batch 32."""
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
