"""The safetensors file format, read and written by tinynet itself: named float32/float64 tensors and a
string-to-string metadata mapping, to bytes and back. Nothing here knows models, optimizers or what the
metadata means; tinynet/checkpoint.py builds checkpoints on it.

A file is an 8-byte little-endian header length, a JSON header (``__metadata__`` and one entry per tensor:
dtype, shape, data_offsets), then the raw little-endian tensors. The safetensors library's writer orders the
metadata differently on every call (so equal contents were never equal files), and its reader keeps the last
of two entries with the same name; here the same tensors and metadata always give the same bytes, and a name
defined twice is refused.

The header is checked completely before any tensor is read: its length against the file size, duplicate
names, each tensor's dtype (F32 and F64 only), shape and byte range, and that the tensors cover the data
exactly. Every way bytes can break those rules is a :class:`SafetensorsError`.
"""

from __future__ import annotations

import io
import json
import math
import os
import threading

import numpy as np

# The dtypes the safetensors format defines (safetensors 0.8); tinynet's tensors are F32 and F64 only.
SAFETENSORS_DTYPES = ("BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ",
                      "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64")
LOADABLE_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}  # safetensors stores little-endian
MAX_HEADER_BYTES = 100_000_000  # the limit safetensors itself sets
MAX_NDIM = 32  # NumPy's own limit is 64; tinynet's tensors have at most 4 dimensions
_ST_NAME = {np.dtype("float32"): "F32", np.dtype("float64"): "F64"}


class SafetensorsError(ValueError):
    """Bytes this module will not read as tensors; the message says why (the caller adds which file)."""


class NotSafetensors(SafetensorsError):
    """The bytes break the format's rules (header length, JSON, entries, byte ranges)."""


class DuplicateName(ValueError):
    """A JSON object defines ``key`` twice (plain JSON silently keeps the last one)."""

    def __init__(self, key):
        super().__init__(f"{key!r} is defined twice")
        self.key = key


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise DuplicateName(k)
        out[k] = v
    return out


def strict_json(text):
    """json.loads that refuses a name defined twice in one object (raises DuplicateName)."""
    return json.loads(text, object_pairs_hook=_no_duplicates)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


# Writing -------------------------------------------------------------------------------------------------------------
def serialize(tensors, metadata):
    """The file of ``tensors`` ({name: float32/float64 array}) and ``metadata`` ({str: str}) as a list of byte
    chunks, the same for the same tensors and metadata.

    (``safetensors.numpy.save`` writes the metadata in the order of a Rust HashMap, which differs from
    one call to the next.) Tensors are laid out by item size, then name, so each starts aligned.
    """
    if "__metadata__" in tensors:  # the header's own key: such a tensor would overwrite the metadata
        raise ValueError("a tensor cannot be named '__metadata__'")
    header = {"__metadata__": dict(sorted(metadata.items()))}
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


def to_bytes(tensors, metadata):
    """The whole file of ``tensors`` and ``metadata`` (see :func:`serialize`) as one bytes object."""
    return b"".join(serialize(tensors, metadata))


# Reading -------------------------------------------------------------------------------------------------------------
def read_header(file):
    """Read and check the header of the safetensors file open in ``file`` (binary, seekable): returns
    (metadata, entries, data_start), with entries {name: (dtype, shape, (begin, end))}, offsets relative to
    data_start. Raises SafetensorsError before any tensor is read."""
    size = file.seek(0, os.SEEK_END)  # seek rather than fstat: works on an in-memory file too
    file.seek(0)
    head = file.read(8)
    if len(head) < 8:
        raise NotSafetensors(f"the file has {size} bytes, fewer than the 8 of the header length")
    n = int.from_bytes(head, "little")
    if n > size - 8:
        raise NotSafetensors(f"the header length {n} runs past the end of the file ({size} bytes)")
    if n > MAX_HEADER_BYTES:
        raise NotSafetensors(f"the header length {n} is over the {MAX_HEADER_BYTES}-byte limit")
    raw = file.read(n)
    if len(raw) != n:
        raise NotSafetensors("the file got shorter while being read")
    meta, header = _parse_header(raw)
    body = size - 8 - n
    entries = {name: _check_entry(name, e, body) for name, e in header.items()}
    _check_coverage(entries, body)
    return meta, entries, 8 + n


def _parse_header(raw):
    """The header's JSON as (metadata, {name: tensor entry}); the metadata is {} when absent."""
    try:
        header = strict_json(raw.decode("utf-8"))
    except DuplicateName as dup:
        raise NotSafetensors(f"the header defines {dup.key!r} twice") from None
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise NotSafetensors(f"the header is not JSON: {type(exc).__name__}: {exc}") from None
    if not isinstance(header, dict):
        raise NotSafetensors(f"the header is a JSON {type(header).__name__}, not an object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise NotSafetensors("'__metadata__' must map names to strings")
    return meta, header


def _check_entry(name, e, body):
    """One tensor's entry as (dtype, shape, (begin, end)), checked against the ``body`` bytes of data."""
    if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
        raise NotSafetensors(f"tensor {name!r}: expected an object with dtype, shape and data_offsets, got {e!r:.200}")
    dtype, shape, offsets = e["dtype"], e["shape"], e["data_offsets"]
    if not isinstance(dtype, str):
        raise NotSafetensors(f"tensor {name!r}: dtype {dtype!r:.50} is not a string")
    if dtype not in LOADABLE_DTYPES:
        what = "" if dtype in SAFETENSORS_DTYPES else ", not a safetensors dtype either"
        raise SafetensorsError(f"tensor {name!r} is stored as {dtype:.50}{what}; tinynet loads F32 and F64 tensors only")
    if not (isinstance(shape, list) and len(shape) <= MAX_NDIM and all(_is_int(d) and d >= 0 for d in shape)):
        raise NotSafetensors(f"tensor {name!r}: shape {shape!r:.200} is not a list of at most {MAX_NDIM} integers >= 0")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_int, offsets))
            and 0 <= offsets[0] <= offsets[1] <= body):
        raise NotSafetensors(f"tensor {name!r}: data_offsets {offsets!r:.200} are not [begin, end] within the "
                             f"{body} bytes of data")
    itemsize = LOADABLE_DTYPES[dtype].itemsize
    need = math.prod(shape) * itemsize
    if offsets[1] - offsets[0] != need:
        raise NotSafetensors(f"tensor {name!r}: {dtype} of shape {tuple(shape)} needs {need} bytes, its data_offsets "
                             f"span {offsets[1] - offsets[0]}")
    # An empty tensor passes the size check whatever its other dimensions; NumPy refuses to make one whose
    # nonzero dimensions multiply past its index range (np.empty((0, 2**62)) raises).
    if math.prod(d for d in shape if d) * itemsize > np.iinfo(np.intp).max:
        raise NotSafetensors(f"tensor {name!r}: shape {tuple(shape)!r:.200} is too large for an array")
    return dtype, tuple(shape), tuple(offsets)


def _check_coverage(entries, body):
    """The safetensors rule: the tensors cover the ``body`` bytes of data exactly, without gaps or overlaps."""
    pos = 0
    for name, (_, _, (begin, end)) in sorted(entries.items(), key=lambda kv: kv[1][2]):
        if begin != pos:
            raise NotSafetensors(f"tensor {name!r} starts at byte {begin} of the data, the previous one ends at {pos}")
        pos = end
    if pos != body:
        raise NotSafetensors(f"{body - pos} bytes of data after the last tensor")


class SafetensorsReader:
    """The tensors of one safetensors file, read on demand from the open ``file`` whose header was checked
    (a file that replaces the path meanwhile cannot mix in). Closing the reader closes the file."""

    def __init__(self, file, entries, data_start, metadata):
        self._file, self._entries = file, entries
        self._data_start, self._metadata = data_start, metadata
        self._lock = threading.Lock()  # seek then read: one thread at a time

    @classmethod
    def open(cls, file):
        """A reader of the open binary ``file``, after read_header checked it (which may raise SafetensorsError)."""
        metadata, entries, data_start = read_header(file)
        return cls(file, entries, data_start, metadata)

    def keys(self):
        return list(self._entries)

    def metadata(self):
        return dict(self._metadata)

    def dtype(self, name):
        return self._entries[name][0]

    def get_tensor(self, name):
        """Tensor ``name`` as a new NumPy array in native byte order."""
        st_dtype, shape, (begin, end) = self._entries[name]
        arr = np.empty(shape, dtype=LOADABLE_DTYPES[st_dtype])
        view = memoryview(arr.reshape(-1).view(np.uint8))
        with self._lock:
            self._file.seek(self._data_start + begin)
            got = 0
            while got < end - begin:
                n = self._file.readinto(view[got:])
                if not n:
                    raise SafetensorsError(f"tensor {name!r} ends past the end of the file "
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


def from_bytes(raw):
    """(metadata, {name: array}) of a whole file's bytes; raises SafetensorsError for anything else."""
    with SafetensorsReader.open(io.BytesIO(raw)) as reader:
        return reader.metadata(), {name: reader.get_tensor(name) for name in reader.keys()}
