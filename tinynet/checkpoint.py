"""Checkpoints in safetensors: weights, BatchNorm running stats, optimizer state,
epoch, RNG states and history — and never pickle, so loading cannot run code.

The format is small (an 8-byte header length, a JSON header, the raw little-endian
tensors), and tinynet reads and writes it itself: the safetensors library's writer
orders the metadata differently on every call (so equal checkpoints were never equal
files), and its reader keeps the last of two entries with the same name. The tests
check that the library reads tinynet's files and tinynet reads the library's.

Writes are atomic (a temp file in the same folder, then ``os.replace``): a
crash mid-save leaves the previous checkpoint intact, and saves that run at the
same time (threads or processes) each finish, the last ``os.replace`` winning.
The same tensors and metadata always give the same bytes.

Loading reads the header itself, from the one open file it then reads the
tensors from (a save that replaces the path meanwhile cannot mix two files),
and checks it completely before any tensor is read: the header length against
the file size, duplicate names, each tensor's dtype (F32 and F64 only), shape
and byte range, and every metadata value with the rules the constructors use.
Then every name and shape is compared with the model, and the tensors are read
and checked for NaN and inf. Only when all of that passed does anything in the
model, the optimizer or an RNG change.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import tempfile
import threading
import zlib
from pathlib import Path

import numpy as np

from .arrays import to_numpy
from .backend import get_backend
from .optim import check_learning_rate, check_step_count

FORMAT = "tinynet-checkpoint"
FORMAT_VERSION = "2"  # 2: dropout layers save (seed, calls) of their counter-based generator
READABLE_VERSIONS = ("1", "2")  # version 1's weights still load; its dropout states cannot resume a run

# The dtypes the safetensors format defines (safetensors 0.8); tinynet's tensors are F32 and F64 only.
SAFETENSORS_DTYPES = ("BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ",
                      "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64")
LOADABLE_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}  # safetensors stores little-endian
MAX_HEADER_BYTES = 100_000_000  # the limit safetensors itself sets
MAX_NDIM = 32  # NumPy's own limit is 64; tinynet's tensors have at most 4 dimensions
DTYPES = ("float32", "float64")
MAX_EPOCH = 10**6  # far past any real run; fit gives a checkpoint without history one NaN entry per earlier epoch
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")  # never getattr(np.random, <anything>)


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


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _rng_state_ok(state):
    return isinstance(state, dict) and set(state) == {"seed", "calls"} and all(
        _is_int(state[k]) and 0 <= state[k] < 2**64 for k in state)


# Writing -------------------------------------------------------------------------------------------------------------
_ST_NAME = {np.dtype("float32"): "F32", np.dtype("float64"): "F64"}


def _serialize(tensors, meta):
    """The safetensors file as a list of byte chunks, the same for the same tensors and metadata.

    (``safetensors.numpy.save`` writes the metadata in the order of a Rust HashMap, which differs from
    one call to the next.) Tensors are laid out by item size, then name, so each starts aligned.
    """
    header = {"__metadata__": dict(sorted(meta.items()))}
    chunks, pos = [], 0
    for name in sorted(tensors, key=lambda k: (-tensors[k].dtype.itemsize, k)):
        a = tensors[name]
        if a.dtype not in _ST_NAME:
            raise TypeError(f"checkpoint tensor {name!r} is {a.dtype}; tinynet writes float32 and float64 tensors only")
        a = np.asarray(a, dtype=LOADABLE_DTYPES[_ST_NAME[a.dtype]])
        a = a if a.flags.c_contiguous else a.copy(order="C")
        header[name] = {"dtype": _ST_NAME[a.dtype], "shape": list(a.shape), "data_offsets": [pos, pos + a.nbytes]}
        chunks.append(a.reshape(-1).view(np.uint8))
        pos += a.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # pad as safetensors does, so the data starts 8-byte aligned
    return [len(raw).to_bytes(8, "little"), raw, *chunks]


def _writer_tag():
    """Who writes a temp file: this machine and PID namespace (hashed) and this process's id."""
    where = socket.gethostname()
    try:
        where += os.readlink("/proc/self/ns/pid")
    except OSError:
        pass
    return f"{zlib.crc32(where.encode()):08x}-{os.getpid()}"


def _pid_is_dead(pid):
    if pid == os.getpid():
        return False  # another thread of this process
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except (OSError, OverflowError, ValueError):
        return False  # exists (owned by someone else), or we cannot tell
    return False


def _sweep_dead_temp_files(path):
    """Remove temp files of ``path`` left by saves whose process is provably gone (killed mid-save).

    A temp file is named ``.NAME.HOST-PID.RANDOM.tmp``. One of another machine or PID namespace, of a
    live process (or a reused PID), or not named that way is never touched: it may be a save in progress.
    """
    if os.name != "posix":
        return  # os.kill(pid, 0) would terminate the process on Windows
    host = _writer_tag().split("-")[0]
    pattern = re.compile(re.escape(f".{path.name}.") + r"([0-9a-f]{8})-([0-9]+)\.[A-Za-z0-9_]+\.tmp")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        m = pattern.fullmatch(name)
        if m and m.group(1) == host and _pid_is_dead(int(m.group(2))):
            (path.parent / name).unlink(missing_ok=True)


def save_checkpoint(path, model, optimizer=None, *, epoch=0, rng=None, history=None, extra=None, augment=None):
    """Write ``model`` (+ optimizer, epoch, RNG states, history) to ``path`` atomically.

    The metadata is checked with the rules ``load_checkpoint`` applies, so a file this writes always loads.
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
    try:  # the architecture, for load_model: only a model made of tinynet's own layers has one
        meta["architecture"] = json.dumps(model.get_config()["layers"])
    except ValueError:
        pass  # a layer of the user's own: the weights still load into a model built in Python (load_checkpoint)
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
        raise ValueError(f"cannot save {path}: metadata {bad.key!r} {bad.reason}") from None
    chunks = _serialize(tensors, meta)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_dead_temp_files(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_writer_tag()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode())  # mkstemp makes 0600 files; keep the user's usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# Reading -------------------------------------------------------------------------------------------------------------
class _Duplicate(Exception):
    def __init__(self, key):
        self.key = key


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise _Duplicate(k)
        out[k] = v
    return out


def _strict_json(text):
    """json.loads that refuses a name defined twice in one object (plain JSON keeps the last one)."""
    return json.loads(text, object_pairs_hook=_no_duplicates)


class CheckpointReader:
    """The tensors of one opened, validated checkpoint, read from the same open file as its header."""

    def __init__(self, path, file, entries, data_start, metadata):
        self.path, self._file, self._entries = path, file, entries
        self._data_start, self._metadata = data_start, metadata
        self._lock = threading.Lock()

    def keys(self):
        return list(self._entries)

    def metadata(self):
        return dict(self._metadata)

    def dtype(self, name):
        return self._entries[name][0]

    def get_tensor(self, name):
        st_dtype, shape, (begin, end) = self._entries[name]
        arr = np.empty(shape, dtype=LOADABLE_DTYPES[st_dtype])
        view = memoryview(arr.reshape(-1).view(np.uint8))
        with self._lock:
            self._file.seek(self._data_start + begin)
            got = 0
            while got < end - begin:
                n = self._file.readinto(view[got:])
                if not n:
                    raise CheckpointError(f"{self.path}: tensor {name!r} ends past the end of the file "
                                          "(was it truncated while being read?)")
                got += n
        return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()


def _read_header(path, file):
    """Read and check the safetensors header of the open ``file``; returns (metadata, entries, data_start)."""

    def bad(why):
        return CheckpointError(f"{path}: not a valid safetensors checkpoint ({why})")

    size = os.fstat(file.fileno()).st_size
    head = file.read(8)
    if len(head) < 8:
        raise bad(f"the file has {size} bytes, fewer than the 8 of the header length")
    n = int.from_bytes(head, "little")
    if n > size - 8:
        raise bad(f"the header length {n} runs past the end of the file ({size} bytes)")
    if n > MAX_HEADER_BYTES:
        raise bad(f"the header length {n} is over the {MAX_HEADER_BYTES}-byte limit")
    raw = file.read(n)
    if len(raw) != n:
        raise bad("the file got shorter while being read")
    try:
        header = _strict_json(raw.decode("utf-8"))
    except _Duplicate as dup:
        raise bad(f"the header defines {dup.key!r} twice") from None
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise bad(f"the header is not JSON: {type(exc).__name__}: {exc}") from None
    if not isinstance(header, dict):
        raise bad(f"the header is a JSON {type(header).__name__}, not an object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise bad("'__metadata__' must map names to strings")
    body = size - 8 - n
    entries = {}
    for name, e in header.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise bad(f"tensor {name!r}: expected an object with dtype, shape and data_offsets, got {e!r:.200}")
        dtype, shape, offsets = e["dtype"], e["shape"], e["data_offsets"]
        if not isinstance(dtype, str):
            raise bad(f"tensor {name!r}: dtype {dtype!r:.50} is not a string")
        if dtype not in LOADABLE_DTYPES:
            what = "" if dtype in SAFETENSORS_DTYPES else ", not a safetensors dtype either"
            raise CheckpointError(f"{path}: tensor {name!r} is stored as {dtype:.50}{what}; tinynet loads F32 and F64 "
                                  "tensors only")
        if not (isinstance(shape, list) and len(shape) <= MAX_NDIM and all(_is_int(d) and d >= 0 for d in shape)):
            raise bad(f"tensor {name!r}: shape {shape!r:.200} is not a list of at most {MAX_NDIM} integers >= 0")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_int, offsets))
                and 0 <= offsets[0] <= offsets[1] <= body):
            raise bad(f"tensor {name!r}: data_offsets {offsets!r:.200} are not [begin, end] within the "
                      f"{body} bytes of data")
        need = math.prod(shape) * LOADABLE_DTYPES[dtype].itemsize
        if offsets[1] - offsets[0] != need:
            raise bad(f"tensor {name!r}: {dtype} of shape {tuple(shape)} needs {need} bytes, its data_offsets span "
                      f"{offsets[1] - offsets[0]}")
        entries[name] = (dtype, tuple(shape), tuple(offsets))
    pos = 0  # the safetensors rule: the tensors cover the data exactly, without gaps or overlaps
    for name, (_, _, (begin, end)) in sorted(entries.items(), key=lambda kv: kv[1][2]):
        if begin != pos:
            raise bad(f"tensor {name!r} starts at byte {begin} of the data, the previous one ends at {pos}")
        pos = end
    if pos != body:
        raise bad(f"{body - pos} bytes of data after the last tensor")
    return meta, entries, 8 + n


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
        meta, entries, data_start = _read_header(path, file)
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
    except BaseException:
        file.close()
        raise
    reader = CheckpointReader(path, file, entries, data_start, meta)
    meta = dict(meta, parsed=parsed)
    return meta, {k: e[1] for k, e in entries.items()}, reader


class _BadMeta(Exception):
    def __init__(self, key, reason):
        self.key, self.reason = key, reason


def _int_text(key, text):
    try:
        if re.fullmatch(r"-?[0-9]+", text):
            return int(text)
    except ValueError:  # more digits than int() converts
        pass
    raise _BadMeta(key, f"is damaged: {text!r:.60} is not an integer")


def _json_text(key, text):
    try:
        return _strict_json(text)
    except _Duplicate as dup:
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
                raise ValueError(f"the name {layer.name!r:.60} is used twice")
            names.add(layer.name)
            if layer.sample_ndim is not None and len(shape) != layer.sample_ndim:
                raise ValueError(f"{type(layer).__name__} takes samples of {layer.sample_ndim} dimensions, the layer "
                                 f"before gives {shape}")
            shapes.update({f"{layer.name}.{k}": tuple(s) for k, s in layer.param_shapes(shape).items()})
            shape = layer.output_shape(shape)
        except OverflowError:  # a shape of more than 10**308 pixels: sizes go through floats in window_geometry
            raise ValueError(f"layer {i}: the shapes overflow, starting from input_shape {input_shape!r:.100}") from None
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


def load_checkpoint(path, model, optimizer=None, rng=None, augment=None):
    """Load ``path`` into ``model`` (and ``optimizer``, ``rng``, ``augment``) in place; returns the metadata.

    Every mismatch (missing, unexpected or differently shaped tensor) is listed
    in one CheckpointError before anything is changed; so is every tensor holding NaN or inf.
    """
    meta, shapes, f = read_checkpoint(path)
    with f:
        return _load(path, meta, shapes, f, model, optimizer, rng, augment)


def _load(path, meta, shapes, f, model, optimizer, rng, augment):
    arrays = model.named_arrays()
    model_dtype = np.dtype(model.dtype)
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
    wanted = [f"model/{name}" for name in arrays] + [f"optimizer/{k}" for k in opt_keys]
    for key in wanted:
        if LOADABLE_DTYPES[f.dtype(key)] != model_dtype:
            raise CheckpointError(f"{path}: {key[key.index('/') + 1:]} is {LOADABLE_DTYPES[f.dtype(key)]}, "
                                  f"model is {model.dtype}")
    # Every saved RNG state was checked by read_checkpoint; the training one must also fit ``rng``'s kind.
    dropouts = _dropout_layers(model)
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

    loaded = {key: f.get_tensor(key) for key in wanted}
    non_finite = {key: int(a.size - np.count_nonzero(np.isfinite(a))) for key, a in loaded.items()}
    non_finite = {key: n for key, n in non_finite.items() if n}
    if non_finite:
        raise CheckpointError(f"{path} holds NaN or inf (the run that wrote it had diverged):\n  " + "\n  ".join(
            f"{key}: {n} non-finite value{'s' if n > 1 else ''} of {loaded[key].size}" for key, n in non_finite.items()))

    backend = get_backend(model.backend)  # all checks passed: now change the model
    for name, p in arrays.items():
        p.data = backend.asarray(loaded[f"model/{name}"])
    if optimizer is not None:
        opt_loaded = {k: backend.asarray(loaded[f"optimizer/{k}"]) for k in opt_keys}
        optimizer.load_state_arrays(opt_loaded, parsed["optimizer_t"])
        optimizer.lr = parsed.get("lr", optimizer.lr)
    for name, state in layer_rngs.items():
        if name in dropouts:
            dropouts[name].set_rng_state(state, backend)
    if rng is not None and "train_rng" in parsed:
        rng.bit_generator.state = parsed["train_rng"]
    if augment is not None and "augment_rng" in parsed:
        augment.set_rng_state(parsed["augment_rng"])
    return meta
