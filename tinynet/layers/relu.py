"""ReLU: y = max(x, 0); the gradient passes where x > 0 and is stopped elsewhere."""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..backend import to_numpy
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

    def kink_margin(self, x):
        """Distance of the closest input to the kink at 0 (see MaxPool2D.kink_margin)."""
        return float(np.min(np.abs(to_numpy(x))))
