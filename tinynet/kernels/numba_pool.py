"""Numba kernels of max pooling: the max and argmax of each window, and the gradient routed back to the winner.

Every pool in the course's models is 2x2 with stride 2, and that case has branch-free kernels of its own: on random
data a compare-and-branch mispredicts half the time, so the forward chooses with selects (_beats) and the backward
multiplies by the mask. Other windows take the generic loops. Ties and NaN follow np.argmax, as in the reference.
Probe measurements behind these choices: bench/RESULTS.md, "Design notes behind the Numba kernels".
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .numba_conv import _crop
from .numpy_ref import _out_hw, _pad


@njit(inline="always")
def _beats(v, best):
    """v wins over best with np.argmax's rules: strictly larger, or NaN over a number. No branch.

    Written as not(v <= best) and best == best: the fastest of the NaN-aware forms tried (v > best or
    (v != v and best == best) is slower).
    """
    return ((v <= best) ^ True) & (best == best)


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
    branch. ``v if a == k else 0`` compiles to a branch that mispredicts half the time on random data;
    ``v * (1.0 if a == k else 0.0)`` is not vectorised.
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
