"""Numba kernels of training-mode batch normalisation: per-channel statistics, normalisation, and their gradients.

One task per channel walks that channel's values of every image in a single loop, where NumPy's expressions make
several passes and temporaries; small inputs (numba_elementwise._SMALL) go to the reference.
Probe measurements behind these choices: bench/RESULTS.md, "Design notes behind the Numba kernels".
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

import tinynet.kernels.numpy_ref as numpy_ref  # the reference (this file's fallback for small arrays)

from .numba_elementwise import _SMALL


# One task per channel, its statistics summed in float64. The "reassoc" flag lets LLVM vectorise those
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
    """Three passes over x in one loop per channel (NumPy's expressions make about nine)."""
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
    """Two passes over dy and xhat, in one loop per channel."""
    if dy.size < _SMALL:
        return numpy_ref.batchnorm_backward(dy, xhat, gamma, inv_std)
    dy3 = _per_channel(dy)
    dx = np.empty_like(dy3)
    c = dy.shape[1]
    dgamma, dbeta = np.empty(c, dtype=dy.dtype), np.empty(c, dtype=dy.dtype)
    _bn_bwd(dy3, _per_channel(xhat), np.ascontiguousarray(gamma), np.ascontiguousarray(inv_std),
            dy.dtype.type(dy3.shape[0] * dy3.shape[2]), dx, dgamma, dbeta)
    return dx.reshape(dy.shape), dgamma, dbeta
