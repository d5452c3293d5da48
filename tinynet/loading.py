"""Building a model from a checkpoint file: ``load_model``. It sits above both the model and the checkpoint code,
so the checkpoint code never needs the model class (the model saves through it; this module builds through it).
"""

from __future__ import annotations

from .backend import get_backend, using_backend
from .checkpoint import CheckpointError, expected_tensors, load_checkpoint, read_checkpoint
from .sequential import Sequential


def load_model(path, backend=None, with_meta=False):
    """The model saved in ``path``, built on ``backend`` (default: the current one) with the saved weights; with
    ``with_meta=True``, ``(model, metadata)`` (the metadata load_checkpoint returns: epoch, history, recipe...).

    The checkpoint's architecture (the layers' classes and arguments, the input shape, dtype and name) builds the
    model; a checkpoint without one (written before tinynet saved architectures) builds the model of the zoo its
    ``model_name`` names. Nothing is built before the architecture and the tensors' names and shapes agree.
    """
    meta, shapes, f = read_checkpoint(path)
    f.close()
    with using_backend(backend or get_backend().name):
        model = _build(path, meta, shapes)
        meta = load_checkpoint(path, model)  # reads the file again: every check, then the weights
    return (model, meta) if with_meta else model


def _build(path, meta, shapes):
    """The model a checkpoint's metadata describes, with fresh weights."""
    parsed = meta["parsed"]
    name, dtype = meta.get("model_name", "sequential"), parsed.get("dtype", "float32")
    if "architecture" not in parsed:
        from . import models

        if name not in models.MODELS:
            why = meta.get("no_architecture", "it was saved by an older tinynet")
            raise CheckpointError(f"{path} holds no architecture ({why}) and its model {name!r} is not one of "
                                  f"tinynet's models ({', '.join(models.MODELS)}): build the model in Python and load "
                                  "the weights with tinynet.checkpoint.load_checkpoint(path, model)")
        return models.build(name, dtype=dtype)
    expected = expected_tensors(parsed["architecture"], parsed["input_shape"])  # checked when it was read
    saved = {k[len("model/"):]: s for k, s in shapes.items() if k.startswith("model/")}
    if expected != saved:  # before building: weights of the architecture's sizes must be in the file
        wrong = [f"{k}: architecture {expected.get(k)}, tensor {saved.get(k)}"
                 for k in sorted(expected.keys() | saved.keys()) if expected.get(k) != saved.get(k)]
        raise CheckpointError(f"{path}: the architecture does not match the saved tensors:\n  " + "\n  ".join(wrong[:20]))
    config = {"name": name, "input_shape": parsed["input_shape"], "dtype": dtype, "layers": parsed["architecture"]}
    try:
        return Sequential.from_config(config)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: metadata 'architecture' cannot be built: {exc}") from None
