"""Layers: each a class with ``forward(x, training=False)`` and ``backward(dy) -> dx``."""

from .base import Layer
from .batchnorm import BatchNorm
from .conv2d import Conv2D
from .dense import Dense
from .dropout import Dropout
from .flatten import Flatten
from .maxpool2d import MaxPool2D
from .relu import ReLU
from .sigmoid import Sigmoid
from .softmax import Softmax

__all__ = [
    "Layer", "Conv2D", "MaxPool2D", "Dense", "Flatten", "ReLU", "Sigmoid", "Softmax", "Dropout", "BatchNorm",
]
