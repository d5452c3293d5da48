"""Flatten: (N, C, H, W) -> (N, C*H*W). No parameters; backward only reshapes."""

from __future__ import annotations

from .base import Layer


class Flatten(Layer):
    def output_shape(self, input_shape):
        size = 1
        for s in input_shape:
            size *= s
        return (size,)

    def forward(self, x, training=False):
        self._check_input(x)
        self.x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self.x_shape)
