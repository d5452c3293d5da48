"""Numba kernels that go over an array element by element: ReLU, dropout and the Adam update.

Each is one parallel pass over the flat array where NumPy makes several passes and temporaries; arrays too small to
be worth waking the second thread for (_SMALL) go to the reference, or, for dropout, to a one-thread loop.
Probe measurements behind these choices: bench/RESULTS.md, "Design notes behind the Numba kernels".
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

import tinynet.kernels.numpy_ref as numpy_ref  # the reference (this file's fallback for small arrays)

from ..counter_rng import GOLDEN, dropout_key, dropout_threshold


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
# and the reference's dozen uint64 array operations cost more than this loop.
_dropout_serial = njit(cache=True)(_dropout_loop)


@njit(parallel=True, cache=True)
def _adam(p, g, m, v, lr_t, b1, c1, b2, c2, eps):
    # prange also makes LLVM vectorise this loop (a plain range loop was not vectorised)
    for i in prange(p.size):  # same operations, in the same order, as the reference
        gi = g[i]
        mi = m[i] * b1 + c1 * gi
        vi = v[i] * b2 + c2 * (gi * gi)
        m[i], v[i] = mi, vi
        p[i] -= lr_t * mi / (np.sqrt(vi) + eps)


# Below this many elements, waking the second thread costs more than it saves (NumPy's few passes are quicker).
_SMALL = 1 << 14


def relu_forward(x):
    """One pass, no mask array (NumPy's x * (x > 0) makes three)."""
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
    """One pass per parameter instead of ~10 array operations."""
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
