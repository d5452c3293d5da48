"""Weight initialisers. All draw from a seedable numpy.random.Generator on the host."""

from __future__ import annotations

import numpy as np


def glorot_uniform(rng: np.random.Generator, shape, fan_in: int, fan_out: int) -> np.ndarray:
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out)) — Keras's default kernel init."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)
