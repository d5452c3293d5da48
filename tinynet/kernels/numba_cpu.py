"""The Numba backend's kernels: numpy_ref's entry points, compiled for the CPU, with the same numbers.

Each family lives in its own module beside this one; this module gathers their entry points under numpy_ref's
names, which is all the dispatcher (tinynet/kernels/__init__.py) calls:
- numba_conv: im2col, col2im, gemm_to_nchw, nchw_to_gemm, and the direct 3x3 convolution (conv_direct_pays,
  conv_direct_forward, conv_direct_backward);
- numba_pool: maxpool_forward, maxpool_backward;
- numba_elementwise: relu_forward, relu_backward, dropout, adam_update;
- numba_batchnorm: batchnorm_forward, batchnorm_backward;
- the reference itself: matmul (NumPy's BLAS) and softmax_cross_entropy.

Why the kernels are faster than the reference:
- padding is done once up front (a cheap contiguous copy), so the inner loops
  carry no bounds checks and no branches;
- every loop writes its output in its final layout, in one pass;
- work is split over images (or image planes, or channels) with ``prange``, so two
  threads never write the same element and no atomics are needed;
- the hot cases (stride-1 columns, 2x2 pooling, 3x3 convolutions) have kernels of
  their own, written so that LLVM vectorises them.
Every kernel is compiled with ``cache=True``: a process after the first loads it from disk.
The probe measurements behind these choices are in bench/RESULTS.md ("Design notes behind the Numba kernels").
Measure before changing anything here: ``python -m bench.layers``.
"""

from __future__ import annotations

import tinynet.kernels.numpy_ref as numpy_ref  # the reference, for the entry points that need no kernel

from .numba_batchnorm import batchnorm_backward, batchnorm_forward
from .numba_conv import (
    col2im,
    conv_direct_backward,
    conv_direct_forward,
    conv_direct_pays,
    gemm_to_nchw,
    im2col,
    nchw_to_gemm,
)
from .numba_elementwise import adam_update, dropout, relu_backward, relu_forward
from .numba_pool import maxpool_backward, maxpool_forward

# Softmax cross-entropy: a few small array operations per batch; the reference's own summation order keeps
# the Numba backend's losses bit for bit equal to NumPy's.
softmax_cross_entropy = numpy_ref.softmax_cross_entropy

# Matrix products: NumPy's BLAS, as in the reference.
matmul = numpy_ref.matmul

__all__ = [
    "adam_update",
    "batchnorm_backward",
    "batchnorm_forward",
    "col2im",
    "conv_direct_backward",
    "conv_direct_forward",
    "conv_direct_pays",
    "dropout",
    "gemm_to_nchw",
    "im2col",
    "matmul",
    "maxpool_backward",
    "maxpool_forward",
    "nchw_to_gemm",
    "relu_backward",
    "relu_forward",
    "softmax_cross_entropy",
]
