"""The safetensors format on its own (tinynet/safetensors_format.py), fuzzed: any bytes are either read correctly
or refused with a SafetensorsError (never another exception); what tinynet writes reads back exactly; and the
safetensors library and tinynet read each other's files."""

import ast
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinynet import safetensors_format as sf
from tinynet.safetensors_format import NotSafetensors, SafetensorsError, from_bytes, to_bytes

FUZZ = settings(max_examples=300, deadline=None)

# Tensors and metadata as tinynet writes them: F32 and F64 arrays of up to 4 dimensions (some empty), any names.
NAMES = st.text(max_size=12).filter(lambda s: s != "__metadata__")
ARRAYS = hnp.arrays(dtype=st.sampled_from([np.float32, np.float64]),
                    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4),
                    elements={"allow_nan": True, "allow_infinity": True})
TENSORS = st.dictionaries(NAMES, ARRAYS, max_size=5)
METADATA = st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=5)


def assert_same(got, want):
    """Same names, dtypes, shapes and bytes (NaN payloads and the sign of zero included)."""
    assert set(got) == set(want)
    for name, a in want.items():
        assert got[name].dtype == a.dtype and got[name].shape == a.shape, name
        assert got[name].tobytes() == a.tobytes(), name


def read_or_refuse(raw):
    """from_bytes(raw), or None where it refuses; any other exception fails the test."""
    try:
        meta, tensors = from_bytes(raw)
    except SafetensorsError:
        return None
    assert isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())
    assert all(a.dtype in (np.float32, np.float64) and a.dtype.isnative for a in tensors.values())
    n = int.from_bytes(raw[:8], "little")
    assert sum(a.nbytes for a in tensors.values()) == len(raw) - 8 - n  # the tensors cover the data exactly
    return meta, tensors


# Round trips -------------------------------------------------------------------------------------------------------------
@FUZZ
@given(tensors=TENSORS, meta=METADATA)
def test_a_round_trip_is_exact_and_writing_again_gives_the_same_bytes(tensors, meta):
    raw = to_bytes(tensors, meta)
    got_meta, got = from_bytes(raw)
    assert got_meta == meta
    assert_same(got, tensors)
    assert to_bytes(got, got_meta) == raw
    assert to_bytes(dict(reversed(list(tensors.items()))), dict(reversed(list(meta.items())))) == raw  # order-free


@FUZZ
@given(tensors=TENSORS)
def test_strided_arrays_are_written_as_their_values(tensors):
    strided = {k: a[..., ::-1] if a.ndim else a for k, a in tensors.items()}  # views whose strides are negative
    _, got = from_bytes(to_bytes(strided, {}))
    assert_same(got, {k: a.copy(order="C") for k, a in strided.items()})


def test_the_data_starts_8_byte_aligned_and_the_layout_is_by_item_size_then_name():
    raw = to_bytes({"b": np.zeros(3, np.float32), "a": np.zeros(1, np.float32), "z": np.ones(2)}, {"k": "v"})
    n = int.from_bytes(raw[:8], "little")
    assert n % 8 == 0
    header = json.loads(raw[8 : 8 + n])
    assert [header[k]["data_offsets"] for k in ("z", "a", "b")] == [[0, 16], [16, 20], [20, 32]]


def test_what_tinynet_does_not_write_is_refused_when_writing():
    with pytest.raises(TypeError, match="tinynet writes float32 and float64 tensors only"):
        to_bytes({"x": np.zeros(2, np.int32)}, {})
    with pytest.raises(ValueError, match="cannot be named '__metadata__'"):
        to_bytes({"__metadata__": np.zeros(2, np.float32)}, {})


# Anything else is refused with a SafetensorsError ------------------------------------------------------------------------
@FUZZ
@given(raw=st.binary(max_size=200))
def test_random_bytes_are_read_or_refused(raw):
    read_or_refuse(raw)


# Files near valid ones: consistent entries and data, then 0 to 3 fields, the metadata or the data size changed
SIZES = st.integers(-2, 40) | st.sampled_from([2**31, 2**62, 2**63, 2**64, 10**30])
JUNK = st.none() | st.booleans() | st.floats() | st.text(max_size=4) | st.lists(st.integers(), max_size=3)
FIELDS = {
    "dtype": st.sampled_from([*sf.SAFETENSORS_DTYPES, "F128", ""]) | JUNK,
    "shape": st.lists(SIZES, max_size=4) | st.lists(st.just(1), min_size=30, max_size=40) | JUNK,
    "data_offsets": st.lists(SIZES, min_size=2, max_size=2) | st.lists(SIZES, max_size=3) | JUNK,
    "extra": JUNK,
}


@st.composite
def near_valid_files(draw):
    header, pos = {}, 0
    for name in draw(st.lists(NAMES, max_size=4, unique=True)):
        dtype, shape = draw(st.sampled_from(["F32", "F64"])), draw(st.lists(st.integers(0, 3), max_size=3))
        n = math.prod(shape) * (4 if dtype == "F32" else 8)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [pos, pos + n]}
        pos += n
    if draw(st.booleans()):
        header["__metadata__"] = draw(METADATA | JUNK) if draw(st.integers(0, 4)) == 0 else draw(METADATA)
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(sorted(header)) | NAMES) if header else draw(NAMES)
        if isinstance(header.get(name), dict) and name != "__metadata__" and draw(st.integers(0, 4)):
            field = draw(st.sampled_from(sorted(FIELDS)))
            header[name][field] = draw(FIELDS[field])
        else:
            header[name] = draw(JUNK)
    body = draw(st.binary(min_size=max(pos + draw(st.integers(-3, 3)), 0), max_size=max(pos + 3, 0)))
    text = json.dumps(header).encode()
    text += b" " * draw(st.integers(0, 7))
    return len(text).to_bytes(8, "little") + text + body


@settings(max_examples=1000, deadline=None)
@given(raw=near_valid_files())
def test_files_near_valid_ones_are_read_or_refused(raw):
    read_or_refuse(raw)


@FUZZ
@given(tensors=TENSORS, meta=METADATA, data=st.data())
def test_every_truncated_file_is_refused(tensors, meta, data):
    raw = to_bytes(tensors, meta)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(NotSafetensors):
        from_bytes(raw[:cut])


@FUZZ
@given(tensors=TENSORS, meta=METADATA, data=st.data())
def test_mutated_files_are_read_or_refused(tensors, meta, data):
    raw = bytearray(to_bytes(tensors, meta))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        kind = data.draw(st.sampled_from(["set", "insert", "delete"]))
        if kind == "insert" or at == len(raw):
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=4))
        elif kind == "set":
            raw[at] = data.draw(st.integers(0, 255))
        else:
            del raw[at : at + data.draw(st.integers(1, 4))]
    read_or_refuse(bytes(raw))


@pytest.mark.parametrize("why,match", [
    (lambda h: h["x"].update(shape=[0, 2**62]), "too large for an array"),  # no bytes, but NumPy cannot make it
    (lambda h: h["x"].update(shape=[0, 2**64]), "too large for an array"),
    (lambda h: h["x"].update(dtype="BF16"), "is stored as BF16; tinynet loads F32 and F64"),
    (lambda h: h.update(__metadata__={"a": 1}), "must map names to strings"),
])
def test_refusals_name_the_tensor_and_the_rule(why, match):
    raw = to_bytes({"x": np.zeros(0, np.float32)}, {})
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    why(header)
    text = json.dumps(header).encode()
    with pytest.raises(SafetensorsError, match=match):
        from_bytes(len(text).to_bytes(8, "little") + text)


def test_a_name_defined_twice_is_refused():
    text = b'{"x": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}, "x": ' \
           b'{"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}'
    with pytest.raises(NotSafetensors, match="defines 'x' twice"):
        from_bytes(len(text).to_bytes(8, "little") + text)


def test_the_error_classes_are_value_errors():
    assert issubclass(NotSafetensors, SafetensorsError) and issubclass(SafetensorsError, ValueError)


# The safetensors library and tinynet read each other's files -----------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(tensors=TENSORS.filter(bool), meta=METADATA)
def test_the_safetensors_library_and_tinynet_read_each_others_files(tensors, meta):
    safetensors = pytest.importorskip("safetensors")
    from safetensors.numpy import load, save

    ours = to_bytes(tensors, meta)
    assert_same(load(ours), tensors)  # the library reads tinynet's bytes
    with tempfile.TemporaryDirectory() as d:  # the library gives a file's metadata only
        path = Path(d) / "t.safetensors"
        path.write_bytes(ours)
        with safetensors.safe_open(str(path), framework="np") as f:
            assert (f.metadata() or {}) == meta
    theirs = save(tensors, metadata=meta or None)
    got_meta, got = from_bytes(theirs)  # tinynet reads the library's bytes
    assert got_meta == meta
    assert_same(got, tensors)


# On its own ----------------------------------------------------------------------------------------------------------
def test_the_format_module_imports_only_numpy_and_the_standard_library():
    source = Path(sf.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"imports a tinynet module: {ast.unparse(node)}"
            imported.add(node.module.split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"numpy"}, imported
