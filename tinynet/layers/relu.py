"""ReLU: y = max(x, 0); the gradient passes where x > 0 and is stopped elsewhere."""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from .base import Layer


class ReLU(Layer):
    def __init__(self):
        super().__init__()
        self.name = "re_lu"

    def forward(self, x, training=False):
        self._check_input(x)
        self.mask = x > 0
        return x * self.mask

    def backward(self, dy):
        return dy * self.mask

    def kink_margin(self, x):
        """Distance of the closest input to the kink at 0 (see MaxPool2D.kink_margin)."""
        return float(np.min(np.abs(to_numpy(x))))
