"""Kernel entry points. Each checks its arguments, then runs the current backend's implementation.

The NumPy versions in :mod:`tinynet.kernels.numpy_ref` are the readable reference;
:mod:`numba_cpu` and :mod:`cupy_gpu` (CUDA source in ``cupy_gpu.cu``) must produce
the same numbers, NaN and inf included. :mod:`naive` holds plain-loop versions of
whole ops that the tests compare with.

Every argument is checked here, once, before any backend touches memory: a
compiled kernel trusts shapes and dtypes, so a wrong one would read or write
past an array's end instead of raising. Shapes (NCHW):

    x     (N, C, H, W)               pads (top, bottom, left, right)
    cols  (C*KH*KW, N*OH*OW)         one column per output pixel (the CS231n layout)
    out   (F, N*OH*OW)               the conv GEMM W @ cols, one column per output pixel
    W     (F, C, KH, KW), b (F,)     the direct (stride-1) convolution's weights and bias
    pool  y, argmax (N, C, OH, OW)   argmax (int8) indexes the window, 0..KH*KW-1
    batchnorm  x (N, C, H, W) or (N, C); gamma, beta, mean, var, inv_std (C,)
"""

from __future__ import annotations

import numbers

import numpy as np

from ..backend import check_array, get_backend
from ..exceptions import InvalidType, InvalidValue
from ..geometry import output_size

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# -- checks --------------------------------------------------------------------------------------------------------
def _array(a, what, ndim=None, dtypes=FLOATS):
    check_array(a, what)
    if a.dtype not in dtypes:
        raise InvalidType(f"{what} must be {' or '.join(map(str, dtypes))}, got {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise InvalidValue(f"{what} must be {ndim}-D, got shape {tuple(a.shape)}")
    return a


def _same(a, b, what_a, what_b):
    if tuple(a.shape) != tuple(b.shape):
        raise InvalidValue(f"{what_b} has shape {tuple(b.shape)} but {what_a} has {tuple(a.shape)}; they must match")
    if a.dtype != b.dtype:
        raise InvalidType(f"{what_b} is {b.dtype} but {what_a} is {a.dtype}; they must match")


def _int(v, what, low):
    if type(v) is int and v >= low:  # the common case, without the slower abstract-class check
        return v
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
        raise InvalidValue(f"{what} must be an integer >= {low}, got {v!r}")
    return int(v)


def _window(kh, kw, stride, pads):
    kh, kw = _int(kh, "kernel height", 1), _int(kw, "kernel width", 1)
    sequences = isinstance(stride, (tuple, list)) and isinstance(pads, (tuple, list))
    if not sequences or len(stride) != 2 or len(pads) != 4:
        raise InvalidValue(f"stride must be (sh, sw) and pads (top, bottom, left, right), got {stride!r} and {pads!r}")
    stride = (_int(stride[0], "stride", 1), _int(stride[1], "stride", 1))
    pads = tuple(_int(p, "padding", 0) for p in pads)
    return kh, kw, stride, pads


def output_hw(h, w, kh, kw, stride, pads):
    """Output height and width of a window op; a clear error when the window does not fit."""
    oh, ow = output_size((h, w), (kh, kw), stride, pads)
    if oh < 1 or ow < 1:
        raise InvalidValue(f"a {kh}x{kw} window does not fit a {h}x{w} input with pads {tuple(pads)}")
    return oh, ow


def _image_shape(x_shape):
    if len(x_shape) != 4 or any(_int(s, "x_shape entry", 1) < 1 for s in x_shape):
        raise InvalidValue(f"x_shape must be (N, C, H, W) of positive sizes, got {tuple(x_shape)}")
    return tuple(int(s) for s in x_shape)


def implementation(backend=None):
    """The module of kernels that runs on ``backend`` (a name or Backend; default: the current one): the NumPy
    reference, the Numba kernels or the CUDA ones. Imported on first use (Numba compiles, CuPy needs a GPU)."""
    name = get_backend(backend).name
    if name == "numba":
        from . import numba_cpu as module
    elif name == "cupy":  # looked up each time: the tests' CuPy stand-in replaces this module in sys.modules
        from . import cupy_gpu as module
    else:
        from . import numpy_ref as module
    return module


# -- convolution ---------------------------------------------------------------------------------------------------
def im2col(x, kh, kw, stride, pads):
    """(N, C, H, W) -> (C*KH*KW, N*OH*OW): column r holds the receptive field of output pixel r."""
    _array(x, "im2col input", 4)
    kh, kw, stride, pads = _window(kh, kw, stride, pads)
    output_hw(x.shape[2], x.shape[3], kh, kw, stride, pads)
    return implementation().im2col(x, kh, kw, stride, pads)


def col2im(cols, x_shape, kh, kw, stride, pads):
    """The adjoint of im2col: (C*KH*KW, N*OH*OW) -> (N, C, H, W)."""
    _array(cols, "col2im columns", 2)
    n, c, h, w = _image_shape(x_shape)
    kh, kw, stride, pads = _window(kh, kw, stride, pads)
    oh, ow = output_hw(h, w, kh, kw, stride, pads)
    if tuple(cols.shape) != (c * kh * kw, n * oh * ow):
        raise InvalidValue(f"col2im columns must have shape {(c * kh * kw, n * oh * ow)} for x_shape {(n, c, h, w)}, "
                         f"got {tuple(cols.shape)}")
    return implementation().col2im(cols, (n, c, h, w), kh, kw, stride, pads)


def matmul(a, b):
    """a (M, K) @ b (K, N) -> (M, N): every matrix product of the layers (Conv2D's GEMMs, Dense).

    One entry point, so a backend can choose how: the BLAS on the CPU; on a GPU cuBLAS, or tinynet's own kernel
    inside a captured CUDA graph, where CuPy refuses cuBLAS (kernels/cupy_gpu.cu, gemm).
    """
    _array(a, "left matrix", 2)
    _array(b, "right matrix", 2)
    if a.dtype != b.dtype:
        raise InvalidType(f"the right matrix is {b.dtype} but the left is {a.dtype}; they must match")
    if a.shape[1] != b.shape[0]:
        raise InvalidValue(f"cannot multiply {tuple(a.shape)} by {tuple(b.shape)}: the inner sizes {a.shape[1]} and "
                         f"{b.shape[0]} differ")
    return implementation().matmul(a, b)


def gemm_to_nchw(out, bias, n, oh, ow):
    """(F, N*OH*OW) + bias -> contiguous (N, F, OH, OW): the conv GEMM's output in NCHW."""
    _array(out, "conv output", 2)
    _array(bias, "bias", 1)
    n, oh, ow = _int(n, "n", 1), _int(oh, "oh", 1), _int(ow, "ow", 1)
    if tuple(out.shape) != (out.shape[0], n * oh * ow) or tuple(bias.shape) != (out.shape[0],):
        raise InvalidValue(f"conv output {tuple(out.shape)} and bias {tuple(bias.shape)} do not fit "
                         f"(F, {n * oh * ow}) and (F,)")
    if bias.dtype != out.dtype:
        raise InvalidType(f"bias is {bias.dtype} but the conv output is {out.dtype}")
    return implementation().gemm_to_nchw(out, bias, n, oh, ow)


def nchw_to_gemm(y):
    """(N, F, OH, OW) -> contiguous (F, N*OH*OW): the layout the backward GEMMs want."""
    _array(y, "conv gradient", 4)
    return implementation().nchw_to_gemm(y)


def _conv_weights(x, W, what):
    _array(W, f"{what} weights", 4)
    if W.dtype != x.dtype:
        raise InvalidType(f"{what} weights are {W.dtype} but the input is {x.dtype}; they must match")
    if W.shape[1] != x.shape[1]:
        raise InvalidValue(f"{what} weights {tuple(W.shape)} expect {W.shape[1]} input channels, got {x.shape[1]} "
                         f"(input {tuple(x.shape)})")


def _direct_output_hw(x, W, pads):
    kh, kw, stride, pads = _window(W.shape[2], W.shape[3], (1, 1), pads)
    return pads, output_hw(x.shape[2], x.shape[3], kh, kw, stride, pads)


def conv_direct_pays(x_shape, w_shape, stride, pads):
    """Whether Conv2D should use conv_direct_forward/backward instead of im2col + GEMM on this backend, for
    input (N, C, H, W), weights (F, C, KH, KW), stride and pads: a speed choice, the numbers are the same."""
    x_shape, w_shape = _image_shape(x_shape), tuple(w_shape)
    if len(w_shape) != 4:
        raise InvalidValue(f"conv_direct_pays needs weights (F, C, KH, KW), got {w_shape}")
    _, _, stride, pads = _window(w_shape[2], w_shape[3], stride, pads)
    return bool(implementation().conv_direct_pays(x_shape, w_shape, stride, pads))


def conv_direct_forward(x, W, b, pads):
    """Stride-1 convolution without columns: x (N, C, H, W), W (F, C, KH, KW), b (F,) -> (N, F, OH, OW)."""
    _array(x, "convolution input", 4)
    _conv_weights(x, W, "convolution")
    _array(b, "convolution bias", 1)
    if b.dtype != x.dtype:
        raise InvalidType(f"convolution bias is {b.dtype} but the input is {x.dtype}; they must match")
    if tuple(b.shape) != (W.shape[0],):
        raise InvalidValue(f"convolution bias must have shape ({W.shape[0]},), got {tuple(b.shape)}")
    pads, _ = _direct_output_hw(x, W, pads)
    return implementation().conv_direct_forward(x, W, b, pads)


def conv_direct_backward(dy, x, W, pads, input_grad=True):
    """Gradients of conv_direct_forward given dy (N, F, OH, OW): (dx or None when not ``input_grad``, dW, db)."""
    _array(x, "convolution input", 4)
    _conv_weights(x, W, "convolution")
    _array(dy, "convolution gradient", 4)
    pads, (oh, ow) = _direct_output_hw(x, W, pads)
    expected = (x.shape[0], W.shape[0], oh, ow)
    if dy.dtype != x.dtype:
        raise InvalidType(f"convolution gradient is {dy.dtype} but the input is {x.dtype}; they must match")
    if tuple(dy.shape) != expected:
        raise InvalidValue(f"convolution gradient must have shape {expected} for input {tuple(x.shape)} and weights "
                         f"{tuple(W.shape)}, got {tuple(dy.shape)}")
    if not isinstance(input_grad, bool):
        raise InvalidType(f"input_grad must be True or False, got {input_grad!r}")
    return implementation().conv_direct_backward(dy, x, W, pads, input_grad)


# -- pooling -------------------------------------------------------------------------------------------------------
def maxpool_forward(x, kh, kw, stride, pads):
    """Max of each window, and the winner's position in it. Ties: the first wins; NaN: the first NaN wins."""
    _array(x, "max-pool input", 4)
    kh, kw, stride, pads = _window(kh, kw, stride, pads)
    if kh * kw > 127:
        raise InvalidValue(f"a {kh}x{kw} window has more positions than an int8 argmax can index (127)")
    output_hw(x.shape[2], x.shape[3], kh, kw, stride, pads)
    return implementation().maxpool_forward(x, kh, kw, stride, pads)


def maxpool_backward(dy, argmax, x_shape, kh, kw, stride, pads):
    """Route each output gradient to the input that won its window."""
    _array(dy, "max-pool gradient", 4)
    _array(argmax, "max-pool argmax", 4, dtypes=(np.dtype(np.int8),))
    n, c, h, w = _image_shape(x_shape)
    kh, kw, stride, pads = _window(kh, kw, stride, pads)
    oh, ow = output_hw(h, w, kh, kw, stride, pads)
    if tuple(dy.shape) != (n, c, oh, ow) or tuple(argmax.shape) != (n, c, oh, ow):
        raise InvalidValue(f"max-pool gradient {tuple(dy.shape)} and argmax {tuple(argmax.shape)} must both be "
                         f"{(n, c, oh, ow)} for x_shape {(n, c, h, w)}")
    return implementation().maxpool_backward(dy, argmax, (n, c, h, w), kh, kw, stride, pads)


# -- elementwise ---------------------------------------------------------------------------------------------------
def relu_forward(x):
    """max(x, 0), same shape and dtype; NaN passes through."""
    _array(x, "ReLU input")
    return implementation().relu_forward(x)


def relu_backward(dy, y):
    """dy * (y > 0): dy where y > 0, else 0, except that a NaN or inf in dy gives NaN even where the ReLU
    blocks it (0 * inf), so a diverging gradient is still noticed; y is the forward's output."""
    _array(dy, "ReLU gradient")
    _array(y, "ReLU output")
    _same(y, dy, "the ReLU output", "the ReLU gradient")
    return implementation().relu_backward(dy, y)


def dropout(x, seed, calls, rate):
    """x * keep / (1 - rate), keep drawn by the counter-based generator at (seed, calls[0]).

    Element i is kept when the top 32 bits of splitmix64(key + (i + 1) * golden) are at least
    round(rate * 2**32), with key = splitmix64(seed + calls[0] * golden): every backend draws the same
    mask, and the backward pass is the same call on dy.
    """
    _array(x, "dropout input")
    check_array(calls, "dropout call counter")
    if calls.dtype != np.uint64 or tuple(calls.shape) != (1,):
        raise InvalidType(f"the dropout call counter must be a uint64 array of shape (1,), got {calls.dtype} "
                        f"{tuple(calls.shape)}")
    seed = _int(seed, "dropout seed", 0)
    if seed >= 2**64:
        raise InvalidValue(f"dropout seed must be below 2**64, got {seed}")
    if not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
        raise InvalidValue(f"dropout rate must be in [0, 1), got {rate!r}")
    return implementation().dropout(x, seed, calls, float(rate))


def adam_update(p, g, m, v, t, lr, b1, b2, eps):
    """One Adam step, in place: m, v <- moments with gradient g; p -= lr_t * m / (sqrt(v) + eps),
    where lr_t = lr * sqrt(1 - b2**t) / (1 - b1**t).

    ``t`` (steps taken, this one included) and ``lr`` are float64 arrays of shape (1,) on the same
    backend: on a GPU they stay there, so a step captured in a CUDA graph computes each replay's lr_t.
    """
    for what, a in (("parameter", p), ("gradient", g), ("first moment", m), ("second moment", v)):
        _array(a, f"Adam {what}")
    for what, a in (("gradient", g), ("first moment", m), ("second moment", v)):
        _same(p, a, "the parameter", f"the {what}")
    for what, a in (("step count t", t), ("learning rate", lr)):
        check_array(a, f"Adam {what}")
        if a.dtype != np.float64 or tuple(a.shape) != (1,):
            raise InvalidType(f"Adam {what} must be a float64 array of shape (1,), got {a.dtype} {tuple(a.shape)}")
    for what, b in (("beta1", b1), ("beta2", b2)):
        if not isinstance(b, numbers.Real) or not 0 <= b < 1:
            raise InvalidValue(f"{what} must be in [0, 1), got {b!r}")
    if not isinstance(eps, numbers.Real) or not eps > 0:
        raise InvalidValue(f"eps must be > 0, got {eps!r}")
    return implementation().adam_update(p, g, m, v, t, lr, float(b1), float(b2), float(eps))


# -- batch normalisation ------------------------------------------------------------------------------------------
def _channels(x, what):
    _array(x, what)
    if x.ndim not in (2, 4) or x.shape[0] == 0 or x.shape[1] == 0:
        raise InvalidValue(f"{what} must be (N, C, H, W) or (N, C) with N, C > 0, got shape {tuple(x.shape)}")
    return x


def _per_channel_vectors(x, **vectors):
    for what, v in vectors.items():
        _array(v, f"BatchNorm {what}", 1)
        if tuple(v.shape) != (x.shape[1],) or v.dtype != x.dtype:
            raise InvalidValue(f"BatchNorm {what} must be {x.dtype} of shape ({x.shape[1]},) for input "
                             f"{tuple(x.shape)}, got {v.dtype} {tuple(v.shape)}")


def batchnorm_forward(x, gamma, beta, eps):
    """Training-mode BatchNorm with the batch's own statistics, per channel (axis 1).

    Returns (y, xhat, mean, var, inv_std): y and xhat shaped like x, the rest (C,), all in x's dtype;
    var is the biased variance and inv_std = 1 / sqrt(var + eps).
    """
    _channels(x, "BatchNorm input")
    _per_channel_vectors(x, gamma=gamma, beta=beta)
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not 0 < eps < float("inf"):
        raise InvalidValue(f"BatchNorm eps must be a finite number > 0, got {eps!r}")
    return implementation().batchnorm_forward(x, gamma, beta, float(eps))


def batchnorm_backward(dy, xhat, gamma, inv_std):
    """Gradients of batchnorm_forward given its xhat and inv_std: (dx, dgamma, dbeta)."""
    _channels(dy, "BatchNorm gradient")
    _array(xhat, "BatchNorm xhat")
    _same(dy, xhat, "the BatchNorm gradient", "xhat")
    _per_channel_vectors(dy, gamma=gamma, inv_std=inv_std)
    return implementation().batchnorm_backward(dy, xhat, gamma, inv_std)


# -- the loss ------------------------------------------------------------------------------------------------------
def softmax_cross_entropy(logits, labels, totals=None):
    """Per-row loss -log softmax(logits)[label] (N,) and the gradient of the mean loss (N, K).

    ``labels`` are int64 class indices; a label outside 0..K-1 gives NaN in its row. When ``totals``
    (float64, shape (2,)) is given, the summed loss and the number of rows whose argmax is the label
    are added to it in place (on a GPU without a host round trip).
    """
    _array(logits, "logits", 2)
    if logits.shape[0] == 0 or logits.shape[1] == 0:
        raise InvalidValue(f"logits must have shape (N, K) with N, K > 0, got {tuple(logits.shape)}")
    check_array(labels, "labels")
    if labels.dtype != np.int64 or tuple(labels.shape) != (logits.shape[0],):
        raise InvalidType(f"labels must be int64 of shape ({logits.shape[0]},), got {labels.dtype} {tuple(labels.shape)}")
    if totals is not None:
        check_array(totals, "loss totals")
        if totals.dtype != np.float64 or tuple(totals.shape) != (2,):
            raise InvalidType(f"loss totals must be float64 of shape (2,), got {totals.dtype} {tuple(totals.shape)}")
    return implementation().softmax_cross_entropy(logits, labels, totals)
