"""Conv32-Pool-Conv64-Pool-Conv64 (+ Flatten-Dense54-Dense10), course report 002."""

from tinynet import Sequential
from tinynet.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sigmoid


def three_conv_base(seed=None, dtype="float32"):
    """The convolutional base alone — 55,744 params, output (64, 3, 3)."""
    layers = [Conv2D(32, 3), ReLU(), MaxPool2D(2), Conv2D(64, 3), ReLU(), MaxPool2D(2), Conv2D(64, 3), ReLU()]
    return Sequential(layers, input_shape=(1, 28, 28), dtype=dtype, seed=seed, name="three_conv_base")


def three_conv_cnn(seed=None, dtype="float32", sigmoid_output=False):
    """Base + Flatten-Dense54-Dense10 — 87,452 params. Keras reference: 90.65% in 10 epochs.

    ``sigmoid_output=True`` reproduces the course's quirk: a sigmoid on the
    output, then a loss that treats the result as logits. It is a mistake: the
    "logits" are squashed into (0, 1), so the softmax over them is nearly
    uniform (the top class can never get more than e / (e + 9) ≈ 23%), the
    loss cannot fall below about 1.46, and the gradient through the saturated
    sigmoid vanishes. It still ranks classes, so accuracy looks fine, but the
    probabilities are meaningless. Keras warns about it; tinynet offers it only
    to show the effect.
    """
    base = three_conv_base(seed, dtype).layers
    head = [Flatten(), Dense(54), ReLU(), Dense(10)] + ([Sigmoid()] if sigmoid_output else [])
    name = "three_conv_cnn_sigmoid" if sigmoid_output else "three_conv_cnn"
    return Sequential(base + head, input_shape=(1, 28, 28), dtype=dtype, seed=seed, name=name)


def three_conv_cnn_sigmoid(seed=None, dtype="float32"):
    return three_conv_cnn(seed, dtype, sigmoid_output=True)
