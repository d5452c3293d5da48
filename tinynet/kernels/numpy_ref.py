"""Reference kernels in plain array code (NumPy; CuPy runs them too, since only ``xp`` calls are used).

The trick in the convolution and pooling kernels: loop over the KH*KW
positions *inside* a window (9 for a 3x3 kernel) and move whole strided slices
of the image at once, instead of looping over the output pixels.

The entry points in ``__init__.py`` have checked every argument before these run.
"""

from __future__ import annotations

import math

import numpy as np

from ..arrays import xp_of
from ..counter_rng import GOLDEN, dropout_key, dropout_threshold, splitmix64
from ..geometry import output_size


def _out_hw(h, w, kh, kw, stride, pads):
    return output_size((h, w), (kh, kw), stride, pads)


def _pad(x, pads, value=0.0):
    xp = xp_of(x)
    if not any(pads):
        return x
    width = ((0, 0), (0, 0), (pads[0], pads[1]), (pads[2], pads[3]))
    return xp.pad(x, width, mode="constant", constant_values=value)


def im2col(x, kh, kw, stride, pads):
    """(N, C, H, W) -> (C*KH*KW, N*OH*OW): column r holds the receptive field of output pixel r.

    Row k = (channel, p, q) is the image shifted by (p, q): one strided slice per window position.
    """
    xp = xp_of(x)
    n, c, h, w = x.shape
    sh, sw = stride
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    xpad = _pad(x, pads)
    cols = xp.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xpad[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw].transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * oh * ow)


def col2im(cols, x_shape, kh, kw, stride, pads):
    """The adjoint of im2col: add each column back onto the pixels it was copied from."""
    xp = xp_of(cols)
    n, c, h, w = x_shape
    sh, sw = stride
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    cols6 = cols.reshape(c, kh, kw, n, oh, ow)
    hp, wp = h + pads[0] + pads[1], w + pads[2] + pads[3]
    dxpad = xp.zeros((n, c, hp, wp), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dxpad[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += cols6[:, i, j].transpose(1, 0, 2, 3)
    return dxpad[:, :, pads[0] : pads[0] + h, pads[2] : pads[2] + w]


def maxpool_forward(x, kh, kw, stride, pads):
    """Max over each window; argmax is the winner's position inside its window.

    Positions are visited in order and a later one wins only if it beats the best so far:
    strictly larger (ties keep the first), or NaN over a number (the first NaN wins, and
    the max is NaN) -- np.argmax's rules. So argmax = the largest k that beat everything
    before it. Arithmetic instead of ``where``/boolean indexing: 19 -> 3.6 ms at batch 128.
    """
    xp = xp_of(x)
    n, c, h, w = x.shape
    sh, sw = stride
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    xpad = _pad(x, pads, value=-np.inf)  # padding never wins a max
    y = None
    argmax = xp.zeros((n, c, oh, ow), dtype=np.int8)
    for i in range(kh):
        for j in range(kw):
            v = xpad[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw]
            if y is None:
                y = v.copy()
                continue
            better = ~(v <= y) & (y == y)  # v > y, or v is NaN and y is not yet
            xp.maximum(argmax, better * np.int8(i * kw + j), out=argmax)
            y = xp.maximum(y, v)  # np.maximum propagates NaN
    return y, argmax


def maxpool_backward(dy, argmax, x_shape, kh, kw, stride, pads):
    """Route each output gradient back to the one input that won its window.

    A multiplication by the mask (argmax == k), not a select: a NaN or inf in dy makes its whole window
    NaN, on every backend, so a diverged gradient is never hidden.
    """
    xp = xp_of(dy)
    n, c, h, w = x_shape
    sh, sw = stride
    oh, ow = dy.shape[2], dy.shape[3]
    hp, wp = h + pads[0] + pads[1], w + pads[2] + pads[3]
    dxpad = xp.zeros((n, c, hp, wp), dtype=dy.dtype)
    for i in range(kh):
        for j in range(kw):
            dxpad[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += dy * (argmax == i * kw + j)
    return dxpad[:, :, pads[0] : pads[0] + h, pads[2] : pads[2] + w]


def relu_forward(x):
    """max(x, 0) elementwise; NaN stays NaN (so a diverging run is still noticed)."""
    return xp_of(x).maximum(x, 0)


def relu_backward(dy, y):
    """dy where the ReLU's output y is positive, 0 elsewhere (y > 0 exactly where x > 0).

    A multiplication by the mask: NaN or inf in dy gives NaN even where the ReLU blocks it, on every
    backend (NumPy's where() would give 0, but runs 13x slower).
    """
    return dy * (y > 0)


def adam_step_size(t, lr, b1, b2):
    """lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t), from the (1,)-shaped t and lr, as a Python float."""
    t, lr = float(t[0]), float(lr[0])
    return lr * math.sqrt(1 - b2**t) / (1 - b1**t)


def adam_update(p, g, m, v, t, lr, b1, b2, eps):
    """One Adam step, in place on p, m, v (see tinynet/optim.py for the formulas)."""
    xp = xp_of(p)
    lr_t = adam_step_size(t, lr, b1, b2)
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * (g * g)
    p -= lr_t * m / (xp.sqrt(v) + eps)


# -- batch normalisation (training mode; see tinynet/layers/batchnorm.py for the formulas) ----------------------
def _bn_axes(x):
    """The axes a BatchNorm statistic sums over, and the shape a per-channel vector broadcasts as."""
    return ((0, 2, 3), (1, -1, 1, 1)) if x.ndim == 4 else ((0,), (1, -1))


def batchnorm_forward(x, gamma, beta, eps):
    """Normalise with the batch's statistics, per channel of (N, C, H, W) or per feature of (N, F).

    Returns y = gamma * xhat + beta, xhat = (x - mean) * inv_std, and the per-channel batch mean,
    (biased) variance and inv_std = 1 / sqrt(var + eps), each (C,) in x's dtype.
    """
    axes, shape = _bn_axes(x)
    mean = x.mean(axis=axes)
    var = x.var(axis=axes)
    inv_std = 1 / (var + x.dtype.type(eps)) ** 0.5
    xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
    return gamma.reshape(shape) * xhat + beta.reshape(shape), xhat, mean, var, inv_std


def batchnorm_backward(dy, xhat, gamma, inv_std):
    """Gradients of batchnorm_forward: dx, dgamma, dbeta. With m values per channel:

        dgamma = sum(dy * xhat),   dbeta = sum(dy)
        dx = gamma * inv_std / m * (m * dy - dbeta - xhat * dgamma)
    """
    axes, shape = _bn_axes(dy)
    m = dy.size // dy.shape[1]
    dgamma = (dy * xhat).sum(axis=axes)
    dbeta = dy.sum(axis=axes)
    scale = (gamma * inv_std / dy.dtype.type(m)).reshape(shape)
    return scale * (dy.dtype.type(m) * dy - dbeta.reshape(shape) - xhat * dgamma.reshape(shape)), dgamma, dbeta


# -- dropout: the counter-based generator of counter_rng.py (the same numbers in numba_elementwise.py and cupy_gpu.cu) -
def dropout(x, seed, calls, rate):
    """x * keep / (1 - rate): element i kept when the top 32 bits of splitmix64(key + (i+1)*golden) >= rate*2^32."""
    xp = xp_of(x)
    key = dropout_key(seed, int(calls[0]))
    counter = xp.arange(1, x.size + 1, dtype=np.uint64) * np.uint64(GOLDEN) + np.uint64(key)
    keep = (splitmix64(counter) >> 32) >= dropout_threshold(rate)
    scale = x.dtype.type(1.0 / (1.0 - rate))
    return x * (keep.reshape(x.shape) * scale)


# -- the loss --------------------------------------------------------------------------------------------------------
def softmax_cross_entropy(logits, labels, totals=None):
    """Row losses and dlogits = (softmax - onehot) / N, with the row max subtracted so exp cannot overflow."""
    xp = xp_of(logits)
    n, k = logits.shape
    top = logits.max(axis=1, keepdims=True)
    e = xp.exp(logits - top)
    total = e.sum(axis=1, keepdims=True)
    valid = (labels >= 0) & (labels < k)
    safe = xp.where(valid, labels, 0)
    rows = xp.arange(n)
    loss = xp.log(total[:, 0]) - (logits[rows, safe] - top[:, 0])
    loss = xp.where(valid, loss, np.nan)
    d = e / total
    d[rows, safe] -= 1
    d /= logits.dtype.type(n)
    d = xp.where(valid[:, None], d, np.nan)
    if totals is not None:
        totals[0] += loss.sum(dtype=np.float64)
        totals[1] += (logits.argmax(axis=1) == labels).sum()
    return loss, d


def matmul(a, b):
    """a (M, K) @ b (K, N): the layers' matrix products (the BLAS on the CPU)."""
    return a @ b


def gemm_to_nchw(out, bias, n, oh, ow):
    """(F, N*OH*OW) + bias -> contiguous (N, F, OH, OW): swap the first two axes."""
    xp = xp_of(out)
    f = out.shape[0]
    return xp.ascontiguousarray((out + bias[:, None]).reshape(f, n, oh, ow).transpose(1, 0, 2, 3))


def nchw_to_gemm(y):
    """(N, F, OH, OW) -> contiguous (F, N*OH*OW): the layout the backward GEMMs want."""
    xp = xp_of(y)
    n, f, oh, ow = y.shape
    return xp.ascontiguousarray(y.transpose(1, 0, 2, 3)).reshape(f, n * oh * ow)


# -- direct convolution (stride 1) ------------------------------------------------------------------------------
# The same sums as im2col + GEMM, grouped by window position instead: output pixel (h, w) of a stride-1
# convolution is sum over (i, j) of W[:, :, i, j] applied to input pixel (h + i, w + j). Each of the KH*KW terms is
# one matrix product over channels with the input shifted by (i, j), so no (C*KH*KW, N*OH*OW) columns are built.
def conv_direct_pays(x_shape, w_shape, stride, pads):
    """Whether the Conv2D layer should take the direct path: never here (NumPy's path is im2col + one BLAS GEMM)."""
    return False


def conv_direct_forward(x, W, b, pads):
    """x (N, C, H, W), W (F, C, KH, KW), b (F,) -> y (N, F, OH, OW), stride 1."""
    xp = xp_of(x)
    f, _, kh, kw = W.shape
    xpad = _pad(x, pads)
    oh, ow = _out_hw(x.shape[2], x.shape[3], kh, kw, (1, 1), pads)
    y = xp.empty((x.shape[0], f, oh, ow), dtype=x.dtype)
    y[...] = b.reshape(1, f, 1, 1)  # start from the bias
    for i in range(kh):
        for j in range(kw):
            shifted = xpad[:, :, i : i + oh, j : j + ow]  # (N, C, OH, OW)
            # W[:, :, i, j] (F, C) times shifted, summed over C. einsum multiplies every pair, as the formula
            # does: a BLAS product may skip a zero and so turn 0 * inf into 0 where the formula has NaN.
            y += xp.einsum("fc,nchw->nfhw", W[:, :, i, j], shifted)
    return y


def conv_direct_backward(dy, x, W, pads, input_grad=True):
    """Gradients of conv_direct_forward: (dx, dW, db); dx is None when ``input_grad`` is False.

    Window position (i, j) sent x shifted by (i, j) through W[:, :, i, j], so its weight gradient is dy against
    that shifted input, and its share of dx is W[:, :, i, j] applied to dy, added back at the shifted place.
    """
    xp = xp_of(dy)
    f, c, kh, kw = W.shape
    oh, ow = dy.shape[2], dy.shape[3]
    xpad = _pad(x, pads)
    dW = xp.empty_like(W)
    dxpad = xp.zeros(xpad.shape, dtype=dy.dtype) if input_grad else None
    for i in range(kh):
        for j in range(kw):
            shifted = xpad[:, :, i : i + oh, j : j + ow]
            dW[:, :, i, j] = xp.einsum("nfhw,nchw->fc", dy, shifted)
            if input_grad:
                dxpad[:, :, i : i + oh, j : j + ow] += xp.einsum("fc,nfhw->nchw", W[:, :, i, j], dy)
    dx = None if dxpad is None else xp.ascontiguousarray(dxpad[:, :, pads[0] : pads[0] + x.shape[2],
                                                                 pads[2] : pads[2] + x.shape[3]])
    return dx, dW, dy.sum(axis=(0, 2, 3))
