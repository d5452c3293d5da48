"""Batch normalisation (Keras semantics), per channel on (N, C, H, W), per feature on (N, F)."""

from __future__ import annotations

import numpy as np

from ..checks import real
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
            raise ValueError(
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

    def _axes_and_shape(self, x):
        if x.ndim == 4:
            return (0, 2, 3), (1, -1, 1, 1)
        return (0,), (1, -1)

    def forward(self, x, training=False):
        self._check_input(x)
        axes, bshape = self._axes_and_shape(x)
        gamma = self.params["gamma"].data.reshape(bshape)
        beta = self.params["beta"].data.reshape(bshape)
        if training:
            mean = x.mean(axis=axes)
            var = x.var(axis=axes)
            # in place, so a captured CUDA graph keeps updating the same arrays
            for stat, batch in ((self.state["moving_mean"], mean), (self.state["moving_variance"], var)):
                stat.data *= self.momentum
                stat.data += (1 - self.momentum) * batch
        else:
            mean = self.state["moving_mean"].data
            var = self.state["moving_variance"].data
        self.inv_std = (1 / (var + x.dtype.type(self.eps)) ** 0.5).reshape(bshape)
        self.xhat = (x - mean.reshape(bshape)) * self.inv_std
        self.training = training
        return gamma * self.xhat + beta

    def backward(self, dy):
        axes, bshape = self._axes_and_shape(dy)
        gamma = self.params["gamma"].data.reshape(bshape)
        self.params["gamma"].grad = (dy * self.xhat).sum(axis=axes)
        self.params["beta"].grad = dy.sum(axis=axes)
        if not self.training:  # running stats are constants: a plain affine map
            return dy * gamma * self.inv_std
        m = dy.size // dy.shape[1]
        dxhat = dy * gamma
        return (self.inv_std / m) * (
            m * dxhat
            - dxhat.sum(axis=axes, keepdims=True)
            - self.xhat * (dxhat * self.xhat).sum(axis=axes, keepdims=True)
        )

    def __repr__(self):
        return f"BatchNorm(momentum={self.momentum}, eps={self.eps})"
