"""The two networks of course report 004: a one-conv CNN and a four-conv BatchNorm CNN."""

from tinynet import Sequential
from tinynet.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU


def one_conv_cnn(seed=None, dtype="float32"):
    """Conv32 · MaxPool · Dropout(0.2) · Flatten · Dense128 · Dense10. Keras reference: 92.29% test."""
    layers = [Conv2D(32, 3), ReLU(), MaxPool2D(2), Dropout(0.2, seed=seed), Flatten(), Dense(128), ReLU(), Dense(10)]
    return Sequential(layers, input_shape=(1, 28, 28), dtype=dtype, seed=seed, name="one_conv_cnn")


def four_conv_bn_cnn(seed=None, dtype="float32"):
    """4 conv, 2 max-pool, 3 dense, 5 dropout, 6 BatchNorm. Keras reference: 93.52% test."""
    def conv(f):
        return [Conv2D(f, 3, padding="same"), ReLU(), BatchNorm()]

    layers = (
        conv(32) + [Dropout(0.2, seed=seed)] + conv(32) + [MaxPool2D(2), Dropout(0.25, seed=seed)]
        + conv(64) + conv(64) + [MaxPool2D(2), Dropout(0.25, seed=seed)]
        + [Flatten(), Dense(512), ReLU(), BatchNorm(), Dropout(0.5, seed=seed)]
        + [Dense(128), ReLU(), BatchNorm(), Dropout(0.5, seed=seed)]
        + [Dense(10)]
    )
    return Sequential(layers, input_shape=(1, 28, 28), dtype=dtype, seed=seed, name="four_conv_bn_cnn")
