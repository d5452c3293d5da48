"""Sigmoid: y = 1 / (1 + exp(-x)); dy/dx = y (1 - y)."""

from __future__ import annotations

from ..arrays import xp_of
from .base import Layer


def sigmoid(x):
    """Stable form: exp is only ever taken of a non-positive number, so it cannot overflow."""
    xp = xp_of(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Layer):
    def forward(self, x, training=False):
        self._check_input(x)
        self.y = sigmoid(x)
        return self.y

    def backward(self, dy):
        return dy * self.y * (1 - self.y)
