"""ReLU: y = max(x, 0); the gradient passes where x > 0 and is stopped elsewhere."""

from __future__ import annotations

from .. import kernels
from .base import Layer


class ReLU(Layer):
    def __init__(self):
        super().__init__()
        self.name = "re_lu"

    def forward(self, x, training=False):
        self._check_input(x)
        self.y = kernels.relu_forward(x)  # backward needs only where y > 0
        return self.y

    def backward(self, dy):
        return kernels.relu_backward(dy, self.y)

    def kink_state(self):
        """Which inputs the latest forward let through: gradcheck's finite differences are only valid while
        this does not change."""
        return self.y > 0
