"""The course's first CNN: Conv32-Pool-Conv64-Pool-Dense64, two dropout placements."""

from tinynet import Sequential
from tinynet.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU


def _features():
    return [Conv2D(32, 3), ReLU(), MaxPool2D(2), Conv2D(64, 3), ReLU(), MaxPool2D(2), Flatten()]


def cnn_dropout02(seed=None, dtype="float32"):
    """Conv32-Pool-Conv64-Pool-Flatten-Dense64-Dropout(0.2)-Dense10 — 121,930 params.

    Keras reference (course report 000): 90.74% test accuracy, loss 0.2554, 10 epochs.
    """
    layers = _features() + [Dense(64), ReLU(), Dropout(0.2, seed=seed), Dense(10)]
    return Sequential(layers, input_shape=(1, 28, 28), dtype=dtype, seed=seed, name="cnn_dropout02")


def cnn_dropout05(seed=None, dtype="float32"):
    """The same network with Dropout(0.5) after Flatten instead — 121,930 params.

    Keras reference (course report 001): ~92% test, ~98% train accuracy.
    """
    layers = _features() + [Dropout(0.5, seed=seed), Dense(64), ReLU(), Dense(10)]
    return Sequential(layers, input_shape=(1, 28, 28), dtype=dtype, seed=seed, name="cnn_dropout05")
