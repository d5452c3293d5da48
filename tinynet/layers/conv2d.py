"""2-D convolution as one matrix product: im2col, GEMM, and col2im for the way back.

Where the backend says it pays (Numba, 3x3 stride-1 windows on large planes), the same sums are computed
directly, without the columns: see ``kernels.conv_direct_forward`` and its NumPy reference.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..checks import integer, positive_int
from ..exceptions import InvalidValue
from ..init import glorot_uniform
from ..padding import check_padding, pair, window_geometry
from .base import Layer


class Conv2D(Layer):
    """x (N, C, H, W) -> y (N, F, OH, OW).  W (F, C, KH, KW), b (F,).

    Forward:  cols = im2col(x)                  (C*KH*KW, N*OH*OW), one column per output pixel
              y    = W.reshape(F, -1) @ cols + b    (F, N*OH*OW), then NCHW
    Backward: dW   = dy2 @ cols.T,  db = dy2.sum(1)   where dy2 is dy as (F, N*OH*OW)
              dx   = col2im(W.reshape(F, -1).T @ dy2)
    ``input_grad = False`` (set by Sequential for a first layer) skips dx. The products go through
    ``kernels.matmul``, which picks the backend's way to multiply (the BLAS, cuBLAS, or a CUDA kernel).

    Direct path (when ``kernels.conv_direct_pays``): y = b + sum over window positions (i, j) of
    W[:, :, i, j] @ (x shifted by (i, j)); backward keeps only x, never the 9x larger columns.
    """

    sample_ndim = 3

    def __init__(self, out_channels, kernel_size, stride=1, padding="valid", in_channels=None, seed=None):
        super().__init__()
        self.out_channels = positive_int(out_channels, "out_channels")
        self.kernel = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = check_padding(padding)
        self.in_channels = None if in_channels is None else positive_int(in_channels, "in_channels")
        self.seed = None if seed is None else integer(seed, "seed", 0)

    def _geometry(self, input_shape):
        return window_geometry(self.padding, input_shape[1:], self.kernel, self.stride, "Conv2D kernel")

    def output_shape(self, input_shape):
        _, oh, ow = self._geometry(input_shape)
        return (self.out_channels, oh, ow)

    def param_shapes(self, input_shape):
        return {"W": (self.out_channels, input_shape[0], *self.kernel), "b": (self.out_channels,)}

    def get_config(self):
        return {"out_channels": self.out_channels, "kernel_size": list(self.kernel), "stride": list(self.stride),
                "padding": self.padding, "in_channels": self.in_channels, "seed": self.seed}

    def _create_params(self, rng):
        c = self.input_shape[0]
        if self.in_channels is not None and self.in_channels != c:
            raise InvalidValue(f"Conv2D was declared with in_channels={self.in_channels} but got {c} channels")
        self.in_channels = c
        self.pads, self.oh, self.ow = self._geometry(self.input_shape)
        kh, kw = self.kernel
        f = self.out_channels
        shape = (f, c, kh, kw)
        self._new_param("W", glorot_uniform(rng, shape, fan_in=c * kh * kw, fan_out=f * kh * kw))
        self._new_param("b", np.zeros(f))

    def forward(self, x, training=False):
        self._check_input(x)
        n = x.shape[0]
        kh, kw = self.kernel
        W, b = self.params["W"].data, self.params["b"].data
        self.direct = kernels.conv_direct_pays(x.shape, W.shape, self.stride, self.pads)
        if self.direct:
            self.cols, self.x, self.x_shape = None, x, x.shape
            return kernels.conv_direct_forward(x, W, b, self.pads)
        cols = kernels.im2col(x, kh, kw, self.stride, self.pads)
        out = kernels.matmul(W.reshape(self.out_channels, -1), cols)  # W2 @ cols, (F, N*OH*OW): one GEMM
        # Training keeps the columns for backward. Inference keeps only x (KH*KW times smaller): predicting
        # 1,000 images with deep_bn_cnn held 3 GB of columns across its 11 convolutions.
        self.cols, self.x, self.x_shape = (cols, None, x.shape) if training else (None, x, x.shape)
        return kernels.gemm_to_nchw(out, b, n, self.oh, self.ow)  # + b, and N before F

    def backward(self, dy):
        kh, kw = self.kernel
        W = self.params["W"]
        if self.direct:
            dx, W.grad, self.params["b"].grad = kernels.conv_direct_backward(dy, self.x, W.data, self.pads,
                                                                             bool(self.input_grad))
            return dx
        dy2 = kernels.nchw_to_gemm(dy)  # (F, N*OH*OW), a new array: dy is left alone
        cols = self.cols if self.cols is not None else kernels.im2col(self.x, kh, kw, self.stride, self.pads)
        W.grad = kernels.matmul(dy2, cols.T).reshape(W.data.shape)  # dy2 @ cols.T
        self.params["b"].grad = dy2.sum(axis=1)
        if not self.input_grad:  # first layer: nobody needs dx, skip a GEMM and col2im
            return None
        dcols = kernels.matmul(W.data.reshape(self.out_channels, -1).T, dy2)  # W2.T @ dy2, (C*KH*KW, N*OH*OW)
        return kernels.col2im(dcols, self.x_shape, kh, kw, self.stride, self.pads)

    def __repr__(self):
        return f"Conv2D({self.out_channels}, kernel_size={self.kernel}, stride={self.stride}, padding={self.padding!r})"
