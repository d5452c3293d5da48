"""Checkpoints in safetensors: weights, BatchNorm running stats, optimizer state,
epoch, RNG states and history — and never pickle, so loading cannot run code.

Writes are atomic (a temp file in the same folder, then ``os.replace``): a
crash mid-save leaves the previous checkpoint intact and no temp file behind.
Loading validates the file (safetensors checks the header against the file
size before reading any tensor) and compares every name and shape with the
model *before* any data is read, naming each mismatch.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .backend import get_backend, to_numpy

FORMAT = "tinynet-checkpoint"
FORMAT_VERSION = "2"  # 2: dropout layers save (seed, calls) of their counter-based generator
READABLE_VERSIONS = ("1", "2")  # version 1's weights still load; its dropout states cannot resume a run


class CheckpointError(ValueError):
    """The file is not a usable tinynet checkpoint for this model; the message says why."""


def default_file_mode() -> int:
    """0o666 minus the process umask: the mode a plain open() would have given."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _dropout_layers(model):
    return {layer.name: layer for layer in model.layers if hasattr(layer, "rng_state")}


def _rng_states(model):
    """Every Dropout layer's generator state (seed and calls so far), by layer name."""
    return {name: layer.rng_state() for name, layer in _dropout_layers(model).items()}


def _check_rng_state(path, name, state):
    ok = isinstance(state, dict) and set(state) == {"seed", "calls"} and all(
        isinstance(state[k], int) and not isinstance(state[k], bool) and 0 <= state[k] < 2**64 for k in state)
    if not ok:
        raise CheckpointError(f"{path}: metadata 'layer_rngs' for {name!r} is damaged: expected "
                              f"{{'seed': int, 'calls': int}} (0 <= each < 2**64), got {state!r}")


def save_checkpoint(path, model, optimizer=None, *, epoch=0, rng=None, history=None, extra=None):
    """Write ``model`` (+ optimizer, epoch, RNG states, history) to ``path`` atomically."""
    from safetensors.numpy import save

    tensors = {f"model/{k}": np.ascontiguousarray(to_numpy(p.data)) for k, p in model.named_arrays().items()}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_name": model.name,
        "dtype": str(model.dtype),
        "input_shape": json.dumps(list(model.input_shape)),
        "epoch": str(int(epoch)),
        "layer_rngs": json.dumps(_rng_states(model)),
    }
    if optimizer is not None:
        for k, v in optimizer.state_arrays().items():
            tensors[f"optimizer/{k}"] = np.ascontiguousarray(to_numpy(v))
        meta.update(optimizer=type(optimizer).__name__, optimizer_t=str(optimizer.t), lr=repr(optimizer.lr))
    if rng is not None:
        meta["train_rng"] = json.dumps(rng.bit_generator.state)
    if history is not None:
        meta["history"] = json.dumps(history)
    for k, v in (extra or {}).items():
        meta[f"extra.{k}"] = str(v)
    blob = save(tensors, metadata=meta)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a save that was killed
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode())  # mkstemp makes 0600 files; keep the user's usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path):
    """Open and validate a checkpoint: returns (metadata, {name: shape}, reader). No tensor is read yet."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        f = safe_open(str(path), framework="np")
        meta = f.metadata() or {}
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise CheckpointError(f"{path}: not a valid safetensors checkpoint ({type(exc).__name__}: {exc})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a tinynet checkpoint (format {meta.get('format')!r})")
    if meta.get("format_version") not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path}: checkpoint format version {meta.get('format_version')!r}, this tinynet reads "
            f"{' and '.join(map(repr, READABLE_VERSIONS))}"
        )
    meta["parsed"] = _parse_meta(path, meta)
    return meta, shapes, f


def _parse_meta(path, meta):
    """Decode the metadata strings up front, so a damaged file fails here, before anything changes."""
    parsers = {
        "epoch": int, "optimizer_t": int, "lr": float,
        "layer_rngs": json.loads, "train_rng": json.loads, "history": json.loads, "input_shape": json.loads,
    }
    out = {}
    for key, parse in parsers.items():
        if key in meta:
            try:
                out[key] = parse(meta[key])
            except (ValueError, TypeError) as exc:
                raise CheckpointError(f"{path}: metadata {key!r} is damaged ({exc})") from None
    for key in ("layer_rngs", "history"):
        if not isinstance(out.get(key, {}), dict):
            raise CheckpointError(f"{path}: metadata {key!r} is damaged (not a mapping)")
    return out


def _set_rng_state(path, rng, state, what):
    try:
        rng.bit_generator.state = state
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{path}: the saved {what} RNG state is damaged ({exc})") from None


def load_checkpoint(path, model, optimizer=None, rng=None):
    """Load ``path`` into ``model`` (and ``optimizer``, ``rng``) in place; returns the metadata.

    Every mismatch (missing, unexpected or differently shaped tensor) is listed
    in one CheckpointError before anything is changed.
    """
    from safetensors import SafetensorError

    meta, shapes, f = read_checkpoint(path)
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
    opt_keys = {}
    if optimizer is not None:
        opt_keys = optimizer.state_arrays()
        if meta.get("optimizer") != type(optimizer).__name__:
            problems.append(f"optimizer is {type(optimizer).__name__}, checkpoint holds {meta.get('optimizer')!r}")
        for k, v in opt_keys.items():
            if shapes.get(f"optimizer/{k}") != tuple(v.shape):
                problems.append(f"optimizer state {k}: checkpoint has {shapes.get(f'optimizer/{k}')}, expected {tuple(v.shape)}")
    parsed = meta["parsed"]
    if optimizer is not None and "optimizer_t" not in parsed:
        problems.append("the checkpoint holds no optimizer step count")
    if problems:
        raise CheckpointError(f"{path} does not fit model {model.name!r}:\n  " + "\n  ".join(problems))
    # Check that every saved RNG state is usable before anything is changed.
    dropouts = _dropout_layers(model)
    layer_rngs = parsed.get("layer_rngs", {})
    if meta["format_version"] == "1":
        if optimizer is not None or rng is not None:
            raise CheckpointError(f"{path} was written by tinynet 0.1, whose dropout generator is not this one's: its "
                                  "weights load (evaluate, predict), but a run cannot be resumed from it")
        layer_rngs = {}
    for name, state in layer_rngs.items():
        if name in dropouts:
            _check_rng_state(path, name, state)
    if rng is not None and "train_rng" in parsed:
        _set_rng_state(path, np.random.Generator(type(rng.bit_generator)()), parsed["train_rng"], "training")

    backend = get_backend(model.backend)
    try:
        loaded = {name: f.get_tensor(f"model/{name}") for name in arrays}
        opt_loaded = {k: f.get_tensor(f"optimizer/{k}") for k in opt_keys}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: could not read tensor data ({exc})") from None
    for name, arr in list(loaded.items()) + list(opt_loaded.items()):
        if arr.dtype != np.dtype(model.dtype):
            raise CheckpointError(f"{path}: {name} is {arr.dtype}, model is {model.dtype}")
    for name, p in arrays.items():  # all checks passed: now change the model
        p.data = backend.asarray(loaded[name])
    if optimizer is not None:
        optimizer.load_state_arrays({k: backend.asarray(v) for k, v in opt_loaded.items()}, parsed["optimizer_t"])
        optimizer.lr = parsed.get("lr", optimizer.lr)
    for name, state in layer_rngs.items():
        if name in dropouts:
            dropouts[name].set_rng_state(state, backend)
    if rng is not None and "train_rng" in parsed:
        rng.bit_generator.state = parsed["train_rng"]
    return meta
