"""The deep BatchNorm CNN of course report 003 (1,813,050 params)."""

from tinynet import Sequential
from tinynet.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU


def _block(f):
    """Conv f (same) · Conv f (same) · BN · MaxPool 2x2."""
    return [Conv2D(f, 3, padding="same"), ReLU(), Conv2D(f, 3, padding="same"), ReLU(), BatchNorm(), MaxPool2D(2)]


def deep_bn_cnn(seed=None, dtype="float32"):
    """Keras reference (with early stopping and LR decay): train 97.3%, validation 93.7%, test 93.53%.

    1,813,050 params: 1,811,706 trainable, 1,344 non-trainable (BN running stats).
    """
    s = None if seed is None else seed + 1  # dropout streams distinct from the init stream
    layers = (
        [Conv2D(16, 3, padding="same"), ReLU(), Conv2D(16, 3, padding="same"), ReLU()]
        + _block(32) + [Dropout(0.1, seed=s)]
        + _block(64) + [Dropout(0.2, seed=s)]
        + _block(128) + [Dropout(0.25, seed=s)]
        + _block(256) + [Conv2D(256, 3, padding="same"), ReLU(), Dropout(0.3, seed=s)]
        + [MaxPool2D(2, padding="same"), Flatten()]
        + [Dense(128), ReLU(), BatchNorm(), Dropout(0.6, seed=s)]
        + [Dense(64), ReLU(), BatchNorm(), Dropout(0.4, seed=s)]
        + [Dense(10)]
    )
    return Sequential(layers, input_shape=(1, 28, 28), dtype=dtype, seed=seed, name="deep_bn_cnn")
