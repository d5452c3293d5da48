"""Small models and data shared by the training, checkpoint and hardening tests."""

import numpy as np

from tinynet import Sequential
from tinynet.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU


def tiny_model(seed=0, dtype="float32"):
    """A little CNN with every stateful piece: BatchNorm running stats and a Dropout RNG."""
    # momentum 0.9: with only a few dozen steps, 0.99 would leave the running stats near their init
    layers = [Conv2D(4, 3, padding="same"), ReLU(), BatchNorm(momentum=0.9), MaxPool2D(2), Flatten(),
              Dropout(0.3, seed=seed), Dense(3)]
    return Sequential(layers, input_shape=(1, 8, 8), dtype=dtype, seed=seed, name="tiny")


def tiny_data(n=96, seed=0, dtype=np.float32):
    """Three classes a small CNN can tell apart: bright rows, bright columns, noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.random((n, 1, 8, 8)) * 0.3
    x[y == 0, 0, 2] += 1.0
    x[y == 1, 0, :, 5] += 1.0
    return x.astype(dtype), y
