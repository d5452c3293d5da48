"""Checkpoints, the public save/load API: weights, BatchNorm running stats, optimizer state, epoch, RNG states
and history, in safetensors files, and never pickle, so loading cannot run code.

The pieces live in one module each: tinynet/safetensors_format.py (the bytes), tinynet/atomic_files.py (the
atomic write: a crash mid-save leaves the previous checkpoint intact, saves that run at the same time each
finish, the last one winning) and tinynet/checkpoint_meta.py (the rules every metadata value follows). The same
tensors and metadata always give the same bytes.

Loading reads the header from the one open file it then reads the tensors from (a save that replaces the path
meanwhile cannot mix two files), and checks it completely before any tensor is read (see safetensors_format),
then every metadata value. Then every name and shape is compared with the model, and the tensors are read
and checked for NaN and inf. Only when all of that passed does anything in the model, the optimizer or an RNG
change.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from .arrays import to_numpy
from .atomic_files import default_file_mode, write_atomically  # noqa: F401  (re-exported: checkpoint.default_file_mode)
from .atomic_files import writer_tag as _writer_tag  # noqa: F401  (the tests name a save's temp files with it)
from .backend import get_backend
from .checkpoint_meta import _BadMeta, _parse_meta, expected_tensors  # noqa: F401  (load_model imports expected_tensors)
from .exceptions import InvalidValue
from .safetensors_format import LOADABLE_DTYPES, NotSafetensors, SafetensorsError, SafetensorsReader, read_header, serialize

FORMAT = "tinynet-checkpoint"
FORMAT_VERSION = "2"  # 2: dropout layers save (seed, calls) of their counter-based generator
READABLE_VERSIONS = ("1", "2")  # version 1's weights still load; its dropout states cannot resume a run


class CheckpointError(InvalidValue):
    """The file is not a usable tinynet checkpoint for this model; the message says why."""


def _refusal(path, exc):
    """The CheckpointError for a SafetensorsError from reading ``path``."""
    if isinstance(exc, NotSafetensors):
        return CheckpointError(f"{path}: not a valid safetensors checkpoint ({exc})")
    return CheckpointError(f"{path}: {exc}")


def _dropout_layers(model):
    return {layer.name: layer for layer in model.layers if hasattr(layer, "rng_state")}


def _rng_states(model):
    """Every Dropout layer's generator state (seed and calls so far), by layer name."""
    return {name: layer.rng_state() for name, layer in _dropout_layers(model).items()}


# Saving --------------------------------------------------------------------------------------------------------------
def save_checkpoint(path, model, optimizer=None, *, epoch=0, rng=None, history=None, extra=None, augment=None,
                    architecture=None):
    """Write ``model`` (+ optimizer, epoch, RNG states, history) to ``path`` atomically.

    The metadata is checked with the rules ``load_checkpoint`` applies, so a file this writes always loads.
    ``architecture``: None stores the model's architecture (what ``load_model`` builds from) when every layer's
    class is registered (``tinynet.layers.register``) and otherwise warns, names the layer, and saves the weights
    only; True refuses instead; False saves the weights only. A file without one says why.
    """
    tensors = {f"model/{k}": to_numpy(p.data) for k, p in model.named_arrays().items()}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_name": model.name,
        "dtype": str(model.dtype),
        "input_shape": json.dumps(list(model.input_shape)),
        "epoch": str(int(epoch)),
        "layer_rngs": json.dumps(_rng_states(model)),
    }
    meta.update(_architecture(model, architecture))
    if optimizer is not None:
        for k, v in optimizer.state_arrays().items():
            tensors[f"optimizer/{k}"] = to_numpy(v)
        meta.update(optimizer=type(optimizer).__name__, optimizer_t=str(optimizer.t), lr=repr(optimizer.lr))
    if rng is not None:
        meta["train_rng"] = json.dumps(rng.bit_generator.state)
    if augment is not None:
        meta["augment_rng"] = json.dumps(augment.rng_state())
    if history is not None:
        meta["history"] = json.dumps(history)
    for k, v in (extra or {}).items():
        meta[f"extra.{k}"] = str(v)
    try:
        _parse_meta(meta)
    except _BadMeta as bad:
        raise InvalidValue(f"cannot save {path}: metadata {bad.key!r} {bad.reason}") from None
    chunks = serialize(tensors, meta)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, lambda f: f.writelines(chunks))


def _architecture(model, wanted):
    """{"architecture": ...} for load_model, or {"no_architecture": why} (warned about unless asked for)."""
    from .layers import UnregisteredLayer

    if wanted is False:
        return {"no_architecture": "it was saved with architecture=False"}
    try:
        return {"architecture": json.dumps(model.get_config()["layers"])}
    except UnregisteredLayer as exc:
        if wanted:
            raise CheckpointError(f"cannot save the architecture: {exc}") from None
        warnings.warn(f"saving the weights only: {exc}; load them with load_checkpoint(path, model) into a model "
                      "built in Python", UserWarning, stacklevel=4)
        return {"no_architecture": str(exc)}


# Reading -------------------------------------------------------------------------------------------------------------
class CheckpointReader(SafetensorsReader):
    """The tensors of one opened, validated checkpoint, read from the same open file as its header."""

    def __init__(self, path, file, entries, data_start, metadata):
        super().__init__(file, entries, data_start, metadata)
        self.path = path

    def get_tensor(self, name):
        try:
            return super().get_tensor(name)
        except SafetensorsError as exc:
            raise _refusal(self.path, exc) from None


def read_checkpoint(path):
    """Open and validate a checkpoint: returns (metadata, {name: shape}, reader). No tensor is read yet.

    ``metadata["parsed"]`` holds the decoded and checked metadata values; the reader's ``get_tensor(name)``
    reads one tensor (as a NumPy array) from the file that was validated.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        file = open(path, "rb")  # the reader owns it, and closes it
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot open the checkpoint ({exc})") from None
    try:
        meta, entries, data_start, parsed = _checked_header(path, file)
    except BaseException:
        file.close()
        raise
    reader = CheckpointReader(path, file, entries, data_start, meta)
    meta = dict(meta, parsed=parsed)
    return meta, {k: e[1] for k, e in entries.items()}, reader


def _checked_header(path, file):
    """The header of the open checkpoint ``file``, every part checked: (metadata, entries, data_start, parsed)."""
    try:
        meta, entries, data_start = read_header(file)
    except SafetensorsError as exc:
        raise _refusal(path, exc) from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a tinynet checkpoint (format {meta.get('format')!r})")
    if meta.get("format_version") not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path}: checkpoint format version {meta.get('format_version')!r}, this tinynet reads "
            f"{' and '.join(map(repr, READABLE_VERSIONS))}"
        )
    try:
        parsed = _parse_meta(meta)
    except _BadMeta as bad:
        raise CheckpointError(f"{path}: metadata {bad.key!r} {bad.reason}") from None
    return meta, entries, data_start, parsed


# Loading -------------------------------------------------------------------------------------------------------------
def load_checkpoint(path, model, optimizer=None, rng=None, augment=None):
    """Load ``path`` into ``model`` (and ``optimizer``, ``rng``, ``augment``) in place; returns the metadata.

    Every mismatch (missing, unexpected or differently shaped tensor) is listed
    in one CheckpointError before anything is changed; so is every tensor holding NaN or inf.
    """
    meta, shapes, f = read_checkpoint(path)
    with f:
        return _load(path, meta, shapes, f, model, optimizer, rng, augment)


def _load(path, meta, shapes, f, model, optimizer, rng, augment):
    """Every check first (names, shapes and dtypes; RNG kinds; NaN and inf), then the apply step."""
    wanted = _check_tensors(path, meta, shapes, f, model, optimizer)
    layer_rngs = _check_rngs(path, meta, optimizer, rng)
    loaded = _read_finite(path, f, wanted)
    _apply(meta["parsed"], loaded, layer_rngs, model, optimizer, rng, augment)
    return meta


def _mismatches(meta, shapes, model, optimizer):
    """Every way the checkpoint's tensors (and optimizer) do not fit ``model`` and ``optimizer``, as lines."""
    arrays = model.named_arrays()
    problems = []
    for name, p in arrays.items():
        key = f"model/{name}"
        if key not in shapes:
            problems.append(f"missing parameter {name} (model has shape {tuple(p.shape)})")
        elif shapes[key] != tuple(p.shape):
            problems.append(f"parameter {name}: checkpoint has shape {shapes[key]}, model has {tuple(p.shape)}")
    for key in shapes:
        if key.startswith("model/") and key[6:] not in arrays:
            problems.append(f"unexpected parameter {key[6:]} with shape {shapes[key]} (not in this model)")
    if optimizer is not None:
        if meta.get("optimizer") != type(optimizer).__name__:
            problems.append(f"optimizer is {type(optimizer).__name__}, checkpoint holds {meta.get('optimizer')!r}")
        for k, v in optimizer.state_arrays().items():
            if shapes.get(f"optimizer/{k}") != tuple(v.shape):
                problems.append(f"optimizer state {k}: checkpoint has {shapes.get(f'optimizer/{k}')}, expected {tuple(v.shape)}")
        if "optimizer_t" not in meta["parsed"]:
            problems.append("the checkpoint holds no optimizer step count")
    return problems


def _check_tensors(path, meta, shapes, f, model, optimizer):
    """The names of the tensors to load, once every one is there with the model's shape and dtype."""
    problems = _mismatches(meta, shapes, model, optimizer)
    if problems:
        raise CheckpointError(f"{path} does not fit model {model.name!r}:\n  " + "\n  ".join(problems))
    opt_keys = optimizer.state_arrays() if optimizer is not None else {}
    wanted = [f"model/{name}" for name in model.named_arrays()] + [f"optimizer/{k}" for k in opt_keys]
    model_dtype = np.dtype(model.dtype)
    for key in wanted:
        if LOADABLE_DTYPES[f.dtype(key)] != model_dtype:
            raise CheckpointError(f"{path}: {key[key.index('/') + 1:]} is {LOADABLE_DTYPES[f.dtype(key)]}, "
                                  f"model is {model.dtype}")
    return wanted


def _check_rngs(path, meta, optimizer, rng):
    """The dropout generator states to load. Every saved RNG state was checked by read_checkpoint; the training
    one must also fit ``rng``'s kind."""
    parsed = meta["parsed"]
    layer_rngs = parsed.get("layer_rngs", {})
    if meta["format_version"] == "1":
        if optimizer is not None or rng is not None:
            raise CheckpointError(f"{path} was written by tinynet 0.1, whose dropout generator is not this one's: its "
                                  "weights load (evaluate, predict), but a run cannot be resumed from it")
        layer_rngs = {}
    if rng is not None and "train_rng" in parsed:
        saved, wanted_kind = parsed["train_rng"]["bit_generator"], type(rng.bit_generator).__name__
        if saved != wanted_kind:
            raise CheckpointError(f"{path}: metadata 'train_rng' is a {saved} state, the training generator is a "
                                  f"{wanted_kind}")
    return layer_rngs


def _read_finite(path, f, wanted):
    """The tensors ``wanted``, read from ``f``, once none holds NaN or inf."""
    loaded = {key: f.get_tensor(key) for key in wanted}
    non_finite = {key: int(a.size - np.count_nonzero(np.isfinite(a))) for key, a in loaded.items()}
    non_finite = {key: n for key, n in non_finite.items() if n}
    if non_finite:
        raise CheckpointError(f"{path} holds NaN or inf (the run that wrote it had diverged):\n  " + "\n  ".join(
            f"{key}: {n} non-finite value{'s' if n > 1 else ''} of {loaded[key].size}" for key, n in non_finite.items()))
    return loaded


def _apply(parsed, loaded, layer_rngs, model, optimizer, rng, augment):
    """All checks passed: now change the model, the optimizer and the generators."""
    backend = get_backend(model.backend)
    for name, p in model.named_arrays().items():
        p.data = backend.asarray(loaded[f"model/{name}"])
    if optimizer is not None:
        opt_loaded = {k: backend.asarray(loaded[f"optimizer/{k}"]) for k in optimizer.state_arrays()}
        optimizer.load_state_arrays(opt_loaded, parsed["optimizer_t"])
        optimizer.lr = parsed.get("lr", optimizer.lr)
    dropouts = _dropout_layers(model)
    for name, state in layer_rngs.items():
        if name in dropouts:
            dropouts[name].set_rng_state(state, backend)
    if rng is not None and "train_rng" in parsed:
        rng.bit_generator.state = parsed["train_rng"]
    if augment is not None and "augment_rng" in parsed:
        augment.set_rng_state(parsed["augment_rng"])
