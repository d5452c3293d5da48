"""The Fashion-MNIST models of the course reports, by descriptive name: ``from tinynet import models``.

This folder installs as ``tinynet.models`` (see pyproject.toml), so it claims no top-level name.

``build(name, seed=None, dtype="float32")`` returns a built ``tinynet.Sequential``
that outputs logits (train it with ``tinynet.losses.SoftmaxCrossEntropy``).
"""

from collections.abc import Callable
from dataclasses import dataclass

from .deep_bn_cnn import deep_bn_cnn
from .simple_cnn import cnn_dropout02, cnn_dropout05
from .small_cnns import four_conv_bn_cnn, one_conv_cnn
from .three_conv_cnn import three_conv_base, three_conv_cnn, three_conv_cnn_sigmoid


@dataclass(frozen=True)
class ModelInfo:
    builder: Callable
    params: int  # total, as Keras's summary() counts them
    keras_reference: str


MODELS = {
    "cnn_dropout02": ModelInfo(cnn_dropout02, 121_930, "90.74% test, loss 0.2554 (10 epochs)"),
    "cnn_dropout05": ModelInfo(cnn_dropout05, 121_930, "~92% test, ~98% train"),
    "three_conv_cnn": ModelInfo(three_conv_cnn, 87_452, "90.65% (10 epochs)"),
    "three_conv_cnn_sigmoid": ModelInfo(three_conv_cnn_sigmoid, 87_452, "90.65% (course quirk: sigmoid + from_logits)"),
    "deep_bn_cnn": ModelInfo(deep_bn_cnn, 1_813_050, "93.53% test, 93.7% val, 97.3% train"),
    "one_conv_cnn": ModelInfo(one_conv_cnn, 693_962, "92.29% test"),
    "four_conv_bn_cnn": ModelInfo(four_conv_bn_cnn, 1_741_418, "93.52% test"),
}
DEFAULT = "cnn_dropout02"


def build(name=DEFAULT, seed=None, dtype="float32"):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name].builder(seed=seed, dtype=dtype)


__all__ = ["MODELS", "DEFAULT", "build", "three_conv_base", "ModelInfo"]
