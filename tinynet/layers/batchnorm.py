"""Batch normalisation (Keras semantics), per channel on (N, C, H, W), per feature on (N, F)."""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..checks import real
from ..exceptions import InvalidValue
from .base import Layer


class BatchNorm(Layer):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta.

    Training uses the batch's mean and (biased) variance and updates the running
    statistics:  running = momentum * running + (1 - momentum) * batch.
    Inference uses the running statistics. ``params``: gamma, beta (trainable);
    ``state``: moving_mean, moving_variance (non-trainable, as Keras counts them).

    Backward (training), with m values per channel and xhat the normalised input:
        dgamma = sum(dy * xhat),  dbeta = sum(dy)
        dx = gamma / sqrt(var + eps) / m * (m * dy - sum(dy) - xhat * sum(dy * xhat))
    """

    def __init__(self, momentum=0.99, eps=1e-3):
        super().__init__()
        # Python floats, not NumPy scalars: np.float64(0.9) * a float32 array would be float64
        self.momentum = real(momentum, "BatchNorm momentum", 0, 1)
        self.eps = real(eps, "BatchNorm eps", 0, low_open=True)
        self.name = "batch_normalization"

    def build(self, input_shape, dtype=np.float32, rng=None):
        if len(input_shape) not in (1, 3):
            raise InvalidValue(
                f"BatchNorm expects (N, C, H, W) or (N, features) input, got samples of shape {tuple(input_shape)}"
            )
        super().build(input_shape, dtype, rng)

    def param_shapes(self, input_shape):
        return {key: (input_shape[0],) for key in ("gamma", "beta", "moving_mean", "moving_variance")}

    def get_config(self):
        return {"momentum": self.momentum, "eps": self.eps}

    def _create_params(self, rng):
        c = self.input_shape[0]
        self._new_param("gamma", np.ones(c))
        self._new_param("beta", np.zeros(c))
        self._new_param("moving_mean", np.zeros(c), trainable=False)
        self._new_param("moving_variance", np.ones(c), trainable=False)

    def forward(self, x, training=False):
        self._check_input(x)
        gamma, beta = self.params["gamma"].data, self.params["beta"].data
        if training:  # a kernel (tinynet/kernels/numpy_ref.py: batchnorm_forward): Numba does it in one loop
            y, self.xhat, mean, var, inv_std = kernels.batchnorm_forward(x, gamma, beta, self.eps)
            # in place, so a captured CUDA graph keeps updating the same arrays
            for stat, batch in ((self.state["moving_mean"], mean), (self.state["moving_variance"], var)):
                stat.data *= self.momentum
                stat.data += (1 - self.momentum) * batch
        else:  # the running statistics: a fixed affine map per channel
            bshape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
            inv_std = 1 / (self.state["moving_variance"].data + x.dtype.type(self.eps)) ** 0.5
            self.xhat = (x - self.state["moving_mean"].data.reshape(bshape)) * inv_std.reshape(bshape)
            y = gamma.reshape(bshape) * self.xhat + beta.reshape(bshape)
        self.inv_std = inv_std
        self.training = training
        return y

    def backward(self, dy):
        gamma = self.params["gamma"].data
        if self.training:
            dx, self.params["gamma"].grad, self.params["beta"].grad = kernels.batchnorm_backward(
                dy, self.xhat, gamma, self.inv_std)
            return dx
        # running statistics are constants: the gradient of a plain affine map
        axes, bshape = ((0, 2, 3), (1, -1, 1, 1)) if dy.ndim == 4 else ((0,), (1, -1))
        self.params["gamma"].grad = (dy * self.xhat).sum(axis=axes)
        self.params["beta"].grad = dy.sum(axis=axes)
        return dy * (gamma * self.inv_std).reshape(bshape)

    def __repr__(self):
        return f"BatchNorm(momentum={self.momentum}, eps={self.eps})"
