"""Inverted dropout: zero a fraction ``rate`` of activations while training and
scale the survivors by 1/(1 - rate), so inference needs no change at all."""

from __future__ import annotations

import numpy as np

from ..backend import get_backend
from .base import Layer


class Dropout(Layer):
    """y = x * mask / (1 - rate) in training, y = x at inference.

    Randomness comes from ``numpy.random.default_rng(seed)``. For gradient checks
    (or teaching) a fixed mask can be injected: set ``layer.fixed_mask`` to a
    boolean array of the input's shape (True = keep) and every training forward
    uses it until it is set back to None.
    """

    def __init__(self, rate, seed=None):
        super().__init__()
        if not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.fixed_mask = None
        self.mask = None
        self._device_rng = None
        self.name = "dropout"

    def _draw_mask(self, shape):
        xp = get_backend().xp
        if xp is np:
            return self.rng.random(shape, dtype=np.float32) >= self.rate
        if self._device_rng is None:  # a device generator, seeded from ours: no host round trip
            self._device_rng = xp.random.default_rng(int(self.rng.integers(2**63)))
        return self._device_rng.random(shape, dtype=np.float32) >= self.rate

    def forward(self, x, training=False):
        self._check_input(x)
        if not training or self.rate == 0:
            self.keep = None
            return x
        if self.fixed_mask is not None:
            if tuple(self.fixed_mask.shape) != tuple(x.shape):
                raise ValueError(f"fixed_mask has shape {tuple(self.fixed_mask.shape)}, input has {tuple(x.shape)}")
            self.mask = self.fixed_mask
        else:
            self.mask = self._draw_mask(x.shape)
        # keep = mask / (1 - rate), in the input's dtype
        self.keep = self.mask.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.rate))
        return x * self.keep

    def backward(self, dy):
        return dy if self.keep is None else dy * self.keep

    def __repr__(self):
        return f"Dropout({self.rate})"
