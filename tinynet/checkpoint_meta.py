"""Checking a checkpoint's metadata: every value (epoch, optimizer step and learning rate, dtype, input shape,
history, RNG states, architecture) is decoded and checked with the rules the constructors use, before anything
is loaded. ``save_checkpoint`` applies the same checks, so a file it writes always loads.

A bad value raises ``_BadMeta(key, reason)``; tinynet/checkpoint.py turns it into the error of its caller.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .exceptions import InvalidValue
from .optim import check_learning_rate, check_step_count
from .safetensors_format import MAX_NDIM, DuplicateName, strict_json

DTYPES = ("float32", "float64")
MAX_EPOCH = 10**6  # far past any real run; fit gives a checkpoint without history one NaN entry per earlier epoch
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")  # never getattr(np.random, <anything>)


class _BadMeta(Exception):
    def __init__(self, key, reason):
        self.key, self.reason = key, reason


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _rng_state_ok(state):
    return isinstance(state, dict) and set(state) == {"seed", "calls"} and all(
        _is_int(state[k]) and 0 <= state[k] < 2**64 for k in state)


def _int_text(key, text):
    try:
        if re.fullmatch(r"-?[0-9]+", text):
            return int(text)
    except ValueError:  # more digits than int() converts
        pass
    raise _BadMeta(key, f"is damaged: {text!r:.60} is not an integer")


def _json_text(key, text):
    try:
        return strict_json(text)
    except DuplicateName as dup:
        raise _BadMeta(key, f"is damaged: it defines {dup.key!r} twice") from None
    except (ValueError, RecursionError) as exc:
        raise _BadMeta(key, f"is damaged (not JSON: {exc})") from None


def _check_epoch(text):
    epoch = _int_text("epoch", text)
    if not 0 <= epoch < MAX_EPOCH:
        raise _BadMeta("epoch", f"must be an integer >= 0 (and below {MAX_EPOCH:,}), got {epoch}")
    return epoch


def _check_optimizer_t(text):
    try:
        return check_step_count(_int_text("optimizer_t", text))
    except ValueError as exc:
        raise _BadMeta("optimizer_t", f"is invalid: {exc}") from None


def _check_lr(text):
    try:
        lr = float(text)
    except ValueError:
        raise _BadMeta("lr", f"is damaged: {text!r:.60} is not a number") from None
    try:
        return check_learning_rate(lr)
    except ValueError as exc:
        raise _BadMeta("lr", f"is invalid: {exc}") from None


def _check_dtype(text):
    if text not in DTYPES:
        raise _BadMeta("dtype", f"must be one of {', '.join(DTYPES)}, got {text!r:.60}")
    return text


def _check_input_shape(text):
    shape = _json_text("input_shape", text)
    if not (isinstance(shape, list) and 0 < len(shape) <= MAX_NDIM and all(_is_int(d) and d > 0 for d in shape)):
        raise _BadMeta("input_shape", f"must be a list of positive integers, got {shape!r:.100}")
    return shape


def _check_history(text):
    from .history import History

    history = _json_text("history", text)
    if not isinstance(history, dict):
        raise _BadMeta("history", f"must be a mapping of metric names to lists, got a {type(history).__name__}")
    for k, values in history.items():
        if k not in History.KEYS:
            raise _BadMeta("history", f"holds an unknown metric {k!r:.60} (known: {', '.join(History.KEYS)})")
        if not isinstance(values, list) or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                                     for v in values):
            raise _BadMeta("history", f"{k!r} must be a list of numbers, got {values!r:.100}")
    lengths = {k: len(v) for k, v in history.items()}
    if len(set(lengths.values())) > 1:
        raise _BadMeta("history", f"has lists of different lengths: {lengths}")
    n = next(iter(lengths.values()), 0)
    # a metric the file lacks (an older history) is NaN for each epoch, as History.append records a missing one
    return {k: history.get(k, [math.nan] * n) for k in History.KEYS} if history else {}


def _plain(state):
    """A bit generator state with arrays as lists (as JSON has them)."""
    if isinstance(state, dict):
        return {k: _plain(v) for k, v in state.items()}
    return state.tolist() if isinstance(state, np.ndarray) else state


def _only_ints_and_strings(v):
    if isinstance(v, dict):
        return all(_only_ints_and_strings(x) for x in v.values())
    if isinstance(v, list):
        return all(_only_ints_and_strings(x) for x in v)
    return _is_int(v) or isinstance(v, str)


def _check_train_rng(text):
    state = _json_text("train_rng", text)
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in BIT_GENERATORS:
        raise _BadMeta("train_rng", f"is not the state of a NumPy bit generator ({', '.join(BIT_GENERATORS)}): "
                                    f"{state!r:.100}")
    gen = getattr(np.random, name)()
    try:
        gen.state = state
    except (ValueError, TypeError, KeyError, OverflowError, IndexError) as exc:
        raise _BadMeta("train_rng", f"is a {name} state NumPy refuses ({type(exc).__name__}: {exc})") from None
    if not _only_ints_and_strings(state) or _plain(gen.state) != state:  # NumPy truncates 1.5 and True silently
        raise _BadMeta("train_rng", f"is not a {name} state as NumPy gives it back: {state!r:.200}")
    return state


def _check_layer_rngs(text, version):
    rngs = _json_text("layer_rngs", text)
    if not isinstance(rngs, dict):
        raise _BadMeta("layer_rngs", f"must be a mapping of layer names to states, got {rngs!r:.100}")
    if version != "1":  # version 1 saved NumPy generator states, which are never loaded (see load_checkpoint)
        for name, state in rngs.items():
            if not _rng_state_ok(state):
                raise _BadMeta("layer_rngs", f"for {name!r:.60} must be {{'seed': int, 'calls': int}} "
                                             f"(0 <= each < 2**64), got {state!r:.100}")
    return rngs


def _check_augment_rng(text):
    state = _json_text("augment_rng", text)
    ok = isinstance(state, dict) and set(state) == {"seed", "calls", "shift", "flip"} and _rng_state_ok(
        {"seed": state["seed"], "calls": state["calls"]}) and _is_int(state["shift"]) and 0 <= state["shift"] < 2**16 \
        and isinstance(state["flip"], bool)
    if not ok:
        raise _BadMeta("augment_rng", "must be {'seed': int, 'calls': int, 'shift': int, 'flip': bool}, "
                                      f"got {state!r:.100}")
    return state


def expected_tensors(specs, input_shape):
    """{'conv2d.W': shape, ...}: the tensors the layers ``specs`` (Sequential.get_config()["layers"]) would create
    on ``input_shape``, found by constructing the layers (which checks their arguments) and walking the shapes
    through them, without allocating any weights. Raises ValueError or TypeError naming the layer."""
    from .layers import from_config

    shape, shapes, names = tuple(input_shape), {}, set()
    for i, spec in enumerate(specs):
        try:
            layer = from_config(spec)
            if layer.name in names:
                raise InvalidValue(f"the name {layer.name!r:.60} is used twice")
            names.add(layer.name)
            if layer.sample_ndim is not None and len(shape) != layer.sample_ndim:
                raise InvalidValue(f"{type(layer).__name__} takes samples of {layer.sample_ndim} dimensions, the layer "
                                 f"before gives {shape}")
            shapes.update({f"{layer.name}.{k}": tuple(s) for k, s in layer.param_shapes(shape).items()})
            shape = layer.output_shape(shape)
        except OverflowError:  # a shape of more than 10**308 pixels: sizes go through floats in window_geometry
            raise InvalidValue(f"layer {i}: the shapes overflow, starting from input_shape {input_shape!r:.100}") from None
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"layer {i}: {exc}") from None
    return shapes


def _check_architecture(text, input_shape):
    specs = _json_text("architecture", text)
    if not (isinstance(specs, list) and specs):
        raise _BadMeta("architecture", f"must be a non-empty list of layers, got {specs!r:.100}")
    if input_shape is None:
        raise _BadMeta("architecture", "comes without the 'input_shape' it is built for")
    try:
        expected_tensors(specs, input_shape)
    except (ValueError, TypeError) as exc:
        raise _BadMeta("architecture", f"is invalid: {exc}") from None
    return specs


def _parse_meta(meta):
    """Decode and check every metadata value up front, so a damaged file fails before anything changes."""
    checks = {
        "epoch": _check_epoch, "optimizer_t": _check_optimizer_t, "lr": _check_lr, "dtype": _check_dtype,
        "input_shape": _check_input_shape, "history": _check_history, "train_rng": _check_train_rng,
        "layer_rngs": lambda text: _check_layer_rngs(text, meta.get("format_version")),
        "augment_rng": _check_augment_rng,
    }
    parsed = {key: check(meta[key]) for key, check in checks.items() if key in meta}
    if "architecture" in meta:
        parsed["architecture"] = _check_architecture(meta["architecture"], parsed.get("input_shape"))
    history, epoch = parsed.get("history"), parsed.get("epoch")
    if history and epoch is not None and len(history["loss"]) != epoch + 1:
        raise _BadMeta("history", f"holds {len(history['loss'])} epochs, but the checkpoint is of epoch {epoch} "
                                  f"(expected {epoch + 1})")
    return parsed
