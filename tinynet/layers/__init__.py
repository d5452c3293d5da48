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

#: The layers a saved architecture may name, by class name. A config can only ever build one of these: a class is
#: never looked up by a name read from a file.
LAYERS = {cls.__name__: cls for cls in (Conv2D, MaxPool2D, Dense, Flatten, ReLU, Sigmoid, Softmax, Dropout, BatchNorm)}


def layer_config(layer) -> dict:
    """``{"class_name", "name", "config"}`` of one of tinynet's own layers (a subclass of one is refused: its
    constructor may take other arguments)."""
    if LAYERS.get(type(layer).__name__) is not type(layer):
        raise ValueError(f"{layer.name} is a {type(layer).__name__}, which is not one of tinynet's layers "
                         f"({', '.join(LAYERS)}), so it cannot be saved as a config")
    return {"class_name": type(layer).__name__, "name": layer.name, "config": layer.get_config()}


def from_config(spec) -> Layer:
    """The layer ``layer_config`` describes; a ValueError or TypeError says what is wrong with ``spec``."""
    if not (isinstance(spec, dict) and set(spec) == {"class_name", "name", "config"}):
        raise ValueError(f"a layer must be {{'class_name': ..., 'name': ..., 'config': {{...}}}}, got {spec!r:.100}")
    cls = LAYERS.get(spec["class_name"]) if isinstance(spec["class_name"], str) else None
    if cls is None:
        raise ValueError(f"unknown layer class {spec['class_name']!r:.60} (tinynet's layers: {', '.join(LAYERS)})")
    if not (isinstance(spec["name"], str) and spec["name"]):
        raise ValueError(f"the name of a {cls.__name__} must be a non-empty string, got {spec['name']!r:.60}")
    if not isinstance(spec["config"], dict):
        raise ValueError(f"the config of {spec['name']!r:.60} must be a mapping of argument names to values, "
                         f"got {spec['config']!r:.100}")
    try:
        layer = cls(**spec["config"])
    except (ValueError, TypeError) as exc:  # the constructor's own checks, or an argument it does not take
        raise type(exc)(f"{cls.__name__} {spec['name']!r:.60}: {exc}") from None
    layer.name = spec["name"]
    return layer


__all__ = [
    "Layer", "Conv2D", "MaxPool2D", "Dense", "Flatten", "ReLU", "Sigmoid", "Softmax", "Dropout", "BatchNorm",
    "LAYERS", "layer_config", "from_config",
]
