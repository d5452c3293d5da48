"""Softmax over the last axis, as an output activation (probabilities).

For training, prefer logits + losses.SoftmaxCrossEntropy: it fuses the two
and is both faster and more stable.
"""

from __future__ import annotations

from ..arrays import xp_of
from .base import Layer


def softmax(z):
    """Subtract the row max first so exp never overflows. Works on host or device arrays alike."""
    xp = xp_of(z)
    e = xp.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Softmax(Layer):
    """x (N, K) -> p (N, K).  dx = p * (dy - sum(dy * p))  (row-wise)."""

    sample_ndim = 1

    def forward(self, x, training=False):
        self._check_input(x)
        self.y = softmax(x)
        return self.y

    def backward(self, dy):
        return self.y * (dy - (dy * self.y).sum(axis=-1, keepdims=True))
