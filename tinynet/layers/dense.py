"""Fully connected layer: y = x @ W + b."""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..checks import integer, positive_int
from ..exceptions import InvalidValue
from ..init import glorot_uniform
from .base import Layer


class Dense(Layer):
    """x (N, in) -> y (N, out).  W (in, out), b (out,).

    Backward: dW = x.T @ dy,  db = dy summed over the batch,  dx = dy @ W.T
    (each product through ``kernels.matmul``, which picks the backend's way to multiply)
    """

    sample_ndim = 1

    def __init__(self, out_features, in_features=None, seed=None):
        super().__init__()
        self.out_features = positive_int(out_features, "out_features")
        self.in_features = None if in_features is None else positive_int(in_features, "in_features")
        self.seed = None if seed is None else integer(seed, "seed", 0)

    def output_shape(self, input_shape):
        return (self.out_features,)

    def param_shapes(self, input_shape):
        return {"W": (input_shape[0], self.out_features), "b": (self.out_features,)}

    def get_config(self):
        return {"out_features": self.out_features, "in_features": self.in_features, "seed": self.seed}

    def _create_params(self, rng):
        n_in = self.input_shape[0]
        if self.in_features is not None and self.in_features != n_in:
            raise InvalidValue(f"Dense was declared with in_features={self.in_features} but got {n_in}")
        self.in_features = n_in
        shape = (n_in, self.out_features)
        self._new_param("W", glorot_uniform(rng, shape, fan_in=n_in, fan_out=self.out_features))
        self._new_param("b", np.zeros(self.out_features))

    def forward(self, x, training=False):
        self._check_input(x)
        self.x = x
        return kernels.matmul(x, self.params["W"].data) + self.params["b"].data

    def backward(self, dy):
        self.params["W"].grad = kernels.matmul(self.x.T, dy)
        self.params["b"].grad = dy.sum(axis=0)
        return kernels.matmul(dy, self.params["W"].data.T)

    def __repr__(self):
        return f"Dense({self.out_features})"
