"""CUDA kernels for the CuPy backend: the same entry points as numpy_ref, the same numbers.

The kernels are C++ templates in ``cupy_gpu.cu`` (read it beside this file), compiled at
first use by NVRTC through ``cupy.RawModule`` for float and double, and cached by CuPy.
Each launch here only chooses the grid and passes arguments with exact C types:
CuPy hands a Python int to a kernel as 8 bytes and a float as a double, so every
scalar is converted to the NumPy type of its C parameter first. Matrix products go
to cuBLAS (``cupy.matmul``), except while a CUDA graph is being captured, which CuPy
refuses for cuBLAS: then :func:`matmul` runs this file's ``gemm`` kernel. Memory comes
from CuPy's pool.

How this is verified without a GPU (see the README's "What tinynet guarantees"):
tests/test_cuda_compile.py compiles ``cupy_gpu.cu`` exactly as CuPy would, for sm_80
and sm_90, warnings counted as errors; tests/cuda_host.py compiles the same text for
the host and the tests run this module on a strict CuPy stand-in against the NumPy
reference. ``make gpu-check`` runs the device tests when a GPU is there.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import cupy as cp
import numpy as np

import tinynet.kernels.numpy_ref as numpy_ref  # the reference, for the kernels this file leaves to CuPy

from ..counter_rng import dropout_threshold
from ..exceptions import InvalidValue
from .numpy_ref import _out_hw

SOURCE = Path(__file__).with_suffix(".cu")
KERNELS = (
    "im2col", "col2im", "gemm_to_nchw", "nchw_to_gemm", "gemm", "gemm_sum_splits", "maxpool_forward",
    "maxpool_backward", "relu_forward", "relu_backward", "adam_update", "dropout", "softmax_cross_entropy",
)
OPTIONS = ("--std=c++17",)
NAME_EXPRESSIONS = tuple(f"{k}<{t}>" for k in KERNELS for t in ("float", "double"))

BLOCK = 256
MAX_BLOCKS = 4096  # with the grid-stride loops, more blocks than the GPU holds at once only add scheduling

_module = None
_functions = {}  # (name, dtype) -> the kernel: get_function builds a new RawKernel object on every call


def module():
    """The compiled RawModule (NVRTC runs on the first kernel call, then CuPy's cache serves it)."""
    global _module
    if _module is None:
        _module = cp.RawModule(code=SOURCE.read_text(), options=OPTIONS, name_expressions=NAME_EXPRESSIONS)
    return _module


def _function(name, dtype):
    key = (name, np.dtype(dtype))
    if key not in _functions:
        t = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}[key[1]]
        _functions[key] = module().get_function(f"{name}<{t}>")
    return _functions[key]


def _launch(name, dtype, n, *args):
    """Run kernel ``name`` for ``dtype`` over ``n`` elements (one thread each, grid-stride beyond MAX_BLOCKS)."""
    if n == 0:
        return
    blocks = min((n + BLOCK - 1) // BLOCK, MAX_BLOCKS)
    _function(name, dtype)((blocks,), (BLOCK,), args)


_i32, _i64, _u64 = np.int32, np.int64, np.uint64


def _ints(*values):
    return tuple(_i32(v) for v in values)


def im2col(x, kh, kw, stride, pads):
    n, c, h, w = x.shape
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    cols = cp.empty((c * kh * kw, n * oh * ow), dtype=x.dtype)
    _launch("im2col", x.dtype, cols.size, cp.ascontiguousarray(x), cols,
            *_ints(c, h, w, kh, kw, stride[0], stride[1], pads[0], pads[2], oh, ow), _i64(n * oh * ow), _i64(cols.size))
    return cols


def col2im(cols, x_shape, kh, kw, stride, pads):
    n, c, h, w = x_shape
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    dx = cp.empty(x_shape, dtype=cols.dtype)
    _launch("col2im", cols.dtype, dx.size, cp.ascontiguousarray(cols), dx,
            *_ints(c, h, w, kh, kw, stride[0], stride[1], pads[0], pads[2], oh, ow), _i64(n * oh * ow), _i64(dx.size))
    return dx


_own_gemm = 0  # > 0 inside own_gemm()


@contextlib.contextmanager
def own_gemm():
    """Multiply with the ``gemm`` kernel, not cuBLAS, inside the block: a training run replayed as a CUDA graph
    (tinynet/cuda_graph.py) runs every step this way, its eager ones too, so all of them compute the same sums."""
    global _own_gemm
    _own_gemm += 1
    try:
        yield
    finally:
        _own_gemm -= 1


def matmul(a, b):
    """a (M, K) @ b (K, N): cuBLAS, or the ``gemm`` kernel inside :func:`own_gemm` or while the current stream
    captures a CUDA graph (CuPy refuses cuBLAS calls then: cupy_backends/cuda/libs/cublas.pyx, setStream)."""
    if _own_gemm or cp.cuda.get_current_stream().is_capturing():
        return gemm(a, b)
    return a @ b


# Split-K (see gemm in cupy_gpu.cu): enough threads to fill a GPU (132 SMs x 2,048 threads on an H100 is 270,000;
# a quarter keeps the memory system busy), each summing at least MIN_K_PER_SPLIT products, at most MAX_SPLITS parts.
GEMM_THREADS, MIN_K_PER_SPLIT, MAX_SPLITS = 65_536, 64, 256


def gemm_splits(m, n, k):
    """How many threads share each 4 x 4 tile of C: 1 when C has tiles enough, more when K is long and C small."""
    tiles = -(-m // 4) * -(-n // 4)
    return max(1, min(-(-GEMM_THREADS // tiles), k // MIN_K_PER_SPLIT, MAX_SPLITS))


def gemm(a, b):
    """a (M, K) @ b (K, N) by the ``gemm`` kernel, reading both through their strides (views need no copy)."""
    (m, k), n = a.shape, b.shape[1]
    c = cp.empty((m, n), dtype=a.dtype)
    if c.size == 0:
        return c
    if k == 0:
        c.fill(0)
        return c
    splits = gemm_splits(m, n, k)
    part = c if splits == 1 else cp.empty((splits, m, n), dtype=a.dtype)
    a, b = _strided(a), _strided(b)
    strides = [_i64(s // a.itemsize) for s in (*a.strides, *b.strides)]  # in elements: (sam, sak, sbk, sbn)
    tiles = -(-m // 4) * -(-n // 4)
    _launch("gemm", a.dtype, splits * tiles, a, b, part, *_ints(m, n, k), *strides, _i32(splits), _i64(splits * tiles))
    if splits > 1:
        _launch("gemm_sum_splits", a.dtype, c.size, part, c, _i32(splits), _i64(c.size))
    return c


def _strided(a):
    """``a`` itself when the kernel can follow its strides (whole elements, not negative), else a C-contiguous copy."""
    if all(s % a.itemsize == 0 and s >= 0 for s in a.strides):
        return a
    return cp.ascontiguousarray(a)


def maxpool_forward(x, kh, kw, stride, pads):
    n, c, h, w = x.shape
    oh, ow = _out_hw(h, w, kh, kw, stride, pads)
    y = cp.empty((n, c, oh, ow), dtype=x.dtype)
    argmax = cp.empty((n, c, oh, ow), dtype=cp.int8)
    _launch("maxpool_forward", x.dtype, y.size, cp.ascontiguousarray(x), y, argmax,
            *_ints(h, w, kh, kw, stride[0], stride[1], pads[0], pads[2], oh, ow), _i64(y.size))
    return y, argmax


def maxpool_backward(dy, argmax, x_shape, kh, kw, stride, pads):
    n, c, h, w = x_shape
    oh, ow = dy.shape[2], dy.shape[3]
    dx = cp.empty(x_shape, dtype=dy.dtype)
    _launch("maxpool_backward", dy.dtype, dx.size, cp.ascontiguousarray(dy), cp.ascontiguousarray(argmax), dx,
            *_ints(h, w, kh, kw, stride[0], stride[1], pads[0], pads[2], oh, ow), _i64(dx.size))
    return dx


def gemm_to_nchw(out, bias, n, oh, ow):
    f = out.shape[0]
    y = cp.empty((n, f, oh, ow), dtype=out.dtype)
    _launch("gemm_to_nchw", out.dtype, y.size, cp.ascontiguousarray(out), cp.ascontiguousarray(bias), y, _i32(f),
            _i64(oh * ow), _i64(n * oh * ow), _i64(y.size))
    return y


def nchw_to_gemm(y):
    n, f, oh, ow = y.shape
    dst = cp.empty((f, n * oh * ow), dtype=y.dtype)
    _launch("nchw_to_gemm", y.dtype, dst.size, cp.ascontiguousarray(y), dst, _i32(f), _i64(oh * ow),
            _i64(n * oh * ow), _i64(dst.size))
    return dst


def relu_forward(x):
    y = cp.empty(x.shape, dtype=x.dtype)
    _launch("relu_forward", x.dtype, x.size, cp.ascontiguousarray(x), y, _i64(x.size))
    return y


def relu_backward(dy, y):
    dx = cp.empty(dy.shape, dtype=dy.dtype)
    _launch("relu_backward", dy.dtype, dy.size, cp.ascontiguousarray(dy), cp.ascontiguousarray(y), dx, _i64(dy.size))
    return dx


def adam_update(p, g, m, v, t, lr, b1, b2, eps):
    if not (p.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous):
        raise InvalidValue("the CUDA Adam update works in place on flat buffers: parameters and moments must be "
                         "C-contiguous")
    _launch("adam_update", p.dtype, p.size, p, cp.ascontiguousarray(g), m, v, t, lr, np.float64(b1),
            np.float64(b2), p.dtype.type(eps), _i64(p.size))


def dropout(x, seed, calls, rate):
    y = cp.empty(x.shape, dtype=x.dtype)
    t = x.dtype.type
    _launch("dropout", x.dtype, x.size, cp.ascontiguousarray(x), y, _u64(seed), calls, _u64(dropout_threshold(rate)),
            t(1.0 / (1.0 - rate)), _i64(x.size))
    return y


_unused_totals = {}  # a buffer to pass when there are no totals to add to: CuPy turns None into no argument at all


def softmax_cross_entropy(logits, labels, totals=None):
    n, k = logits.shape
    loss = cp.empty((n,), dtype=logits.dtype)
    d = cp.empty((n, k), dtype=logits.dtype)
    if totals is None:
        device = cp.cuda.Device().id
        if device not in _unused_totals:
            _unused_totals[device] = cp.zeros(2, dtype=np.float64)
    sink = totals if totals is not None else _unused_totals[cp.cuda.Device().id]
    _launch("softmax_cross_entropy", logits.dtype, n, cp.ascontiguousarray(logits), cp.ascontiguousarray(labels),
            loss, d, sink, _i32(totals is not None), _i32(k), _i64(n))
    return loss, d


# BatchNorm: CuPy's own reductions and elementwise kernels run the reference's array expressions on the device
# (per-channel sums need a reduction across threads, which this file's kernels do not do: no shared memory).
batchnorm_forward = numpy_ref.batchnorm_forward
batchnorm_backward = numpy_ref.batchnorm_backward

# Direct convolution: the reference's sums per window position (CuPy's einsum, which may contract through cuBLAS).
# Conv2D keeps im2col + one GEMM on a GPU (conv_direct_pays is False): the direct path was written for CPU caches
# and has not been measured on a GPU.
conv_direct_pays = numpy_ref.conv_direct_pays
conv_direct_forward = numpy_ref.conv_direct_forward
conv_direct_backward = numpy_ref.conv_direct_backward
