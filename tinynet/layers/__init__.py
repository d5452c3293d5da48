"""Layers: each a class with ``forward(x, training=False)`` and ``backward(dy) -> dx``."""

from ..exceptions import InvalidType, InvalidValue
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

#: The layers a saved architecture may name, by class name: tinynet's own, and those registered with
#: :func:`register`. A config can only ever build one of these: a class is never looked up by a name read from a file.
BUILT_IN = (Conv2D, MaxPool2D, Dense, Flatten, ReLU, Sigmoid, Softmax, Dropout, BatchNorm)
LAYERS = {cls.__name__: cls for cls in BUILT_IN}


class UnregisteredLayer(InvalidValue):
    """A layer of the user's own that was not registered, so no saved architecture can name it."""


def register(cls):
    """Let checkpoints name ``cls``, a Layer subclass of your own: ``model.save`` then stores its architecture and
    ``tinynet.load_model`` rebuilds it (``cls(**layer.get_config())``) in any program that registered it too.
    Usable as a decorator (``@tinynet.layers.register``); registering the same class again is harmless."""
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise InvalidType(f"register takes a subclass of tinynet.layers.Layer, got {cls!r:.80}")
    taken = LAYERS.get(cls.__name__)
    if taken is not None and taken is not cls:
        raise InvalidValue(f"a layer class named {cls.__name__!r} is registered already ({taken.__module__}."
                         f"{taken.__qualname__}); checkpoints name layers by class name, so rename {cls.__qualname__}")
    LAYERS[cls.__name__] = cls
    return cls


def layer_config(layer) -> dict:
    """``{"class_name", "name", "config"}`` of a layer whose class is registered (a subclass of a registered class
    is refused: its constructor may take other arguments)."""
    if LAYERS.get(type(layer).__name__) is not type(layer):
        raise UnregisteredLayer(
            f"layer {layer.name!r} is a {type(layer).__name__}, which tinynet cannot rebuild from a file: register "
            f"the class first with tinynet.layers.register({type(layer).__name__}) (in the program that saves and "
            "in the one that loads)")
    return {"class_name": type(layer).__name__, "name": layer.name, "config": layer.get_config()}


def from_config(spec) -> Layer:
    """The layer ``layer_config`` describes; a ValueError or TypeError says what is wrong with ``spec``."""
    if not (isinstance(spec, dict) and set(spec) == {"class_name", "name", "config"}):
        raise InvalidValue(f"a layer must be {{'class_name': ..., 'name': ..., 'config': {{...}}}}, got {spec!r:.100}")
    cls = LAYERS.get(spec["class_name"]) if isinstance(spec["class_name"], str) else None
    if cls is None:
        raise InvalidValue(f"unknown layer class {spec['class_name']!r:.60} (the registered layers: {', '.join(LAYERS)}; "
                         "a layer of your own must be registered with tinynet.layers.register before loading)")
    if not (isinstance(spec["name"], str) and spec["name"]):
        raise InvalidValue(f"the name of a {cls.__name__} must be a non-empty string, got {spec['name']!r:.60}")
    if not isinstance(spec["config"], dict):
        raise InvalidValue(f"the config of {spec['name']!r:.60} must be a mapping of argument names to values, "
                         f"got {spec['config']!r:.100}")
    try:
        layer = cls(**spec["config"])
    except (ValueError, TypeError) as exc:  # the constructor's own checks, or an argument it does not take
        raise type(exc)(f"{cls.__name__} {spec['name']!r:.60}: {exc}") from None
    layer.name = spec["name"]
    return layer


__all__ = [
    "Layer", "Conv2D", "MaxPool2D", "Dense", "Flatten", "ReLU", "Sigmoid", "Softmax", "Dropout", "BatchNorm",
    "LAYERS", "register", "UnregisteredLayer", "layer_config", "from_config",
]
