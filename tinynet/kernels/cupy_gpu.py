"""CUDA kernels for the CuPy backend: the same entry points as numpy_ref, the same numbers.

The kernels are C++ templates in ``cupy_gpu.cu`` (read it beside this file), compiled at
first use by NVRTC through ``cupy.RawModule`` for float and double, and cached by CuPy.
Each launch here only chooses the grid and passes arguments with exact C types:
CuPy hands a Python int to a kernel as 8 bytes and a float as a double, so every
scalar is converted to the NumPy type of its C parameter first. The GEMMs stay in
cuBLAS (``cupy.matmul``); memory comes from CuPy's pool.

How this is verified without a GPU (see the README's "What tinynet guarantees"):
tests/test_cuda_compile.py compiles ``cupy_gpu.cu`` exactly as CuPy would, for sm_80
and sm_90, warnings counted as errors; tests/cuda_host.py compiles the same text for
the host and the tests run this module on a strict CuPy stand-in against the NumPy
reference. ``make gpu-check`` runs the device tests when a GPU is there.
"""

from __future__ import annotations

from pathlib import Path

import cupy as cp
import numpy as np

from . import dropout_threshold, numpy_ref
from .numpy_ref import _out_hw

SOURCE = Path(__file__).with_suffix(".cu")
KERNELS = (
    "im2col", "col2im", "gemm_to_nchw", "nchw_to_gemm", "maxpool_forward", "maxpool_backward", "relu_forward",
    "relu_backward", "adam_update", "dropout", "softmax_cross_entropy",
)
OPTIONS = ("--std=c++17",)
NAME_EXPRESSIONS = tuple(f"{k}<{t}>" for k in KERNELS for t in ("float", "double"))

BLOCK = 256
MAX_BLOCKS = 4096  # with the grid-stride loops, more blocks than the GPU holds at once only add scheduling

_module = None


def module():
    """The compiled RawModule (NVRTC runs on the first kernel call, then CuPy's cache serves it)."""
    global _module
    if _module is None:
        _module = cp.RawModule(code=SOURCE.read_text(), options=OPTIONS, name_expressions=NAME_EXPRESSIONS)
    return _module


def _launch(name, dtype, n, *args):
    """Run kernel ``name`` for ``dtype`` over ``n`` elements (one thread each, grid-stride beyond MAX_BLOCKS)."""
    if n == 0:
        return
    t = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}[np.dtype(dtype)]
    blocks = min((n + BLOCK - 1) // BLOCK, MAX_BLOCKS)
    module().get_function(f"{name}<{t}>")((blocks,), (BLOCK,), args)


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
        raise ValueError("the CUDA Adam update works in place on flat buffers: parameters and moments must be "
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
