"""Damaged and unusual checkpoint files, by class: tensor dtypes and duplicate names, metadata trusted on resume,
concurrent saves, NaN and inf in the weights. Each bad file is one CheckpointError naming what and where,
raised before anything in the model, the optimizer or an RNG changes."""

import json
import math
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_data, tiny_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinynet import checkpoint
from tinynet.callbacks import ModelCheckpoint
from tinynet.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import Adam
from tinynet.train import fit

TESTS = Path(__file__).parent
ROOT = TESTS.parent  # a script's own folder comes first on its sys.path, not the cwd: import this checkout's tinynet


# Helpers: a checkpoint's header and data, and a snapshot of everything a load could change ----------------------------
def split(raw):
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def join(header, body):
    """A file from a header (a dict, or JSON text written as is) and the data bytes."""
    text = header if isinstance(header, str) else json.dumps(header)
    return len(text.encode()).to_bytes(8, "little") + text.encode() + body


def build(tensors, meta):
    """A safetensors file from {name: (dtype, shape, data bytes)}, laid out in the order given."""
    header, pos = {"__metadata__": meta}, 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [pos, pos + len(data)]}
        pos += len(data)
    return join(header, b"".join(d for _, _, d in tensors.values()))


def tensors_of(raw):
    """{name: (dtype, shape, bytes)} of a checkpoint's bytes, in the file's order."""
    header, body = split(raw)
    meta = header.pop("__metadata__")
    entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"])
    return {k: (e["dtype"], e["shape"], body[slice(*e["data_offsets"])]) for k, e in entries}, meta


def snapshot(model, opt):
    out = {f"model/{k}": np.array(p.data, copy=True) for k, p in model.named_arrays().items()}
    out.update({f"optimizer/{k}": np.array(v, copy=True) for k, v in opt.state_arrays().items()})
    out["t"], out["lr"] = np.array(opt.t), np.array(opt.lr)
    out["dropout"] = np.array([model.layers[5].rng_state()["seed"], model.layers[5].rng_state()["calls"]], np.uint64)
    return out


def assert_unchanged(before, model, opt):
    after = snapshot(model, opt)
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k], err_msg=f"{k} changed although the load was refused")


def fresh():
    """A model and optimizer whose state differs from every checkpoint below (other seed, no step taken)."""
    model = tiny_model(seed=3)
    return model, Adam(model.parameters(), lr=0.005)


@pytest.fixture(scope="module")
def resumable(tmp_path_factory):
    """The bytes of a checkpoint written by fit after epoch 0: weights, Adam state, history, both RNG states."""
    path = tmp_path_factory.mktemp("ck") / "ck.safetensors"
    model = tiny_model(seed=0)
    x, y = tiny_data()
    fit(model, SoftmaxCrossEntropy(), Adam(model.parameters(), lr=0.01), x, y, epochs=1, batch_size=16, seed=4,
        verbose=False, callbacks=[ModelCheckpoint(path, "loss", save_best_only=False)])
    return path.read_bytes()


def resume(path, model, opt, epochs=3):
    x, y = tiny_data()
    return fit(model, SoftmaxCrossEntropy(), opt, x, y, epochs=epochs, batch_size=16, seed=4, verbose=False,
               resume_from=path)


def refused(path, match, raw=None):
    """Resuming fit from ``path`` raises a CheckpointError naming the file and matching ``match``; nothing changed."""
    if raw is not None:
        path.write_bytes(raw)
    model, opt = fresh()
    before = snapshot(model, opt)
    with pytest.raises(CheckpointError, match=match) as err:
        resume(path, model, opt)
    assert str(path) in str(err.value)
    assert_unchanged(before, model, opt)
    return str(err.value)


def test_the_unchanged_checkpoint_resumes_and_changes_the_state(tmp_path, resumable):
    """The control for every refusal below: the same file, untouched, loads, and the snapshot sees it."""
    path = tmp_path / "ck.safetensors"
    path.write_bytes(resumable)
    model, opt = fresh()
    before = snapshot(model, opt)
    h = resume(path, model, opt, epochs=2)
    assert len(h) == 2 and opt.t == 12
    with pytest.raises(AssertionError, match="changed although"):
        assert_unchanged(before, model, opt)


# A. Tensor dtypes and duplicate names ---------------------------------------------------------------------------------
# Every dtype of the safetensors format (0.8) that tinynet does not load, with its size in bits.
FOREIGN_DTYPES = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8,
                  "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "I64": 64,
                  "U64": 64, "C64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}


@pytest.mark.parametrize("dtype", list(FOREIGN_DTYPES))
def test_a_tensor_of_any_other_safetensors_dtype_is_refused_naming_tensor_and_file(tmp_path, resumable, dtype):
    tensors, meta = tensors_of(resumable)
    _, shape, _ = tensors["model/dense.W"]  # (64, 3): whole bytes even at 4 and 6 bits an element
    tensors["model/dense.W"] = (dtype, shape, bytes(math.prod(shape) * FOREIGN_DTYPES[dtype] // 8))
    path = tmp_path / "ck.safetensors"
    path.write_bytes(build(tensors, meta))
    from safetensors import SafetensorError, safe_open

    try:  # the file is well formed: safetensors itself reads its header and knows the dtype
        assert safe_open(str(path), framework="np").get_slice("model/dense.W").get_dtype() == dtype
    except SafetensorError as exc:
        assert "Dtype not understood" in str(exc)  # this safetensors knows the name but has no slice for it
    msg = refused(path, re.escape(f"tensor 'model/dense.W' is stored as {dtype};"))
    assert "tinynet loads F32 and F64 tensors only" in msg
    with pytest.raises(CheckpointError, match=f"model/dense.W' is stored as {dtype}"):
        read_checkpoint(path)  # `tinynet evaluate` and `predict` read the header first


def test_an_unknown_dtype_name_is_refused_too(tmp_path, resumable):
    tensors, meta = tensors_of(resumable)
    tensors["model/dense.b"] = ("F128", tensors["model/dense.b"][1], tensors["model/dense.b"][2])
    refused(tmp_path / "ck.safetensors", "'model/dense.b' is stored as F128, not a safetensors dtype", build(tensors, meta))


def test_float64_weights_into_a_float32_model_are_refused(tmp_path):
    model = tiny_model(seed=1, dtype="float64")
    path = save_checkpoint(tmp_path / "ck.safetensors", model, Adam(model.parameters()))
    refused(path, "conv2d.W is float64, model is float32")


def test_a_tensor_defined_twice_is_refused(tmp_path, resumable):
    header, body = split(resumable)
    text = json.dumps(header)  # the same name again, with the very same entry: JSON alone would keep the last one
    again = json.dumps(header["model/dense.b"])
    raw = join(text[:-1] + f', "model/dense.b": {again}}}', body)
    refused(tmp_path / "ck.safetensors", "the header defines 'model/dense.b' twice", raw)


def test_a_metadata_key_defined_twice_is_refused(tmp_path, resumable):
    header, body = split(resumable)
    text = json.dumps(header).replace('"epoch": "0"', '"epoch": "0", "epoch": "5"')
    assert text.count('"epoch"') == 2
    refused(tmp_path / "ck.safetensors", "the header defines 'epoch' twice", join(text, body))


def _entry_cases():
    n = 64 * 3 * 4  # model/dense.W: (64, 3) float32
    return [
        ("dtype", 32, "dtype 32 is not a string"),
        ("shape", [64, "3"], "is not a list of at most 32 integers"),
        ("shape", [64, -3], "is not a list of at most 32 integers"),
        ("shape", [64, True, 3], "is not a list of at most 32 integers"),
        ("shape", [1] * 40, "is not a list of at most 32 integers"),
        ("shape", [2**64, 2**64], "needs"),
        ("shape", [64, 3.0], "is not a list of at most 32 integers"),
        ("data_offsets", [0], "are not \\[begin, end\\]"),
        ("data_offsets", [n, 0], "are not \\[begin, end\\]"),
        ("data_offsets", [0, 10**30], "are not \\[begin, end\\]"),
        ("data_offsets", [-4, n - 4], "are not \\[begin, end\\]"),
        ("data_offsets", [0.0, float(n)], "are not \\[begin, end\\]"),
        ("extra", 1, "expected an object with dtype, shape and data_offsets"),
    ]


@pytest.mark.parametrize("field,value,match", _entry_cases(), ids=lambda v: repr(v)[:30])
def test_a_malformed_tensor_entry_is_refused_before_reading_data(tmp_path, resumable, field, value, match):
    header, body = split(resumable)
    header["model/dense.W"][field] = value
    refused(tmp_path / "ck.safetensors", match, join(header, body))


def test_tensors_must_cover_the_data_without_gaps_or_overlaps(tmp_path, resumable):
    header, body = split(resumable)
    b, e = header["model/dense.b"]["data_offsets"]
    gamma = header["model/batch_normalization.gamma"]  # (4,) float32, as is beta: point both at the same bytes
    header["model/batch_normalization.beta"]["data_offsets"] = gamma["data_offsets"]
    refused(tmp_path / "a.safetensors", "starts at byte|after the last tensor", join(header, body))
    header, body = split(resumable)
    refused(tmp_path / "b.safetensors", "4 bytes of data after the last tensor", join(header, body + bytes(4)))
    assert e - b == 12


def test_header_length_and_metadata_shape(tmp_path, resumable):
    header, body = split(resumable)
    p = tmp_path / "ck.safetensors"
    refused(p, "fewer than the 8 of the header length", b"\x01\x00")
    refused(p, "runs past the end of the file", (2**63).to_bytes(8, "little") + b"{}")
    with open(p, "wb") as f:  # a sparse file: 100 MB of zeros that take no disk
        f.write((10**8 + 1).to_bytes(8, "little"))
        f.truncate(8 + 10**8 + 1)
    refused(p, "is over the 100000000-byte limit")
    refused(p, "the header is not JSON", join("[" * 100_000, b""))  # deeper than the JSON parser recurses
    refused(p, "not an object", join("[1, 2]", b""))
    refused(p, "'__metadata__' must map names to strings", join(dict(header, __metadata__={"epoch": 0}), body))
    refused(p, "'__metadata__' must map names to strings", join(dict(header, __metadata__=[]), body))


JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                    max_leaves=12)


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_header_entries_give_only_checkpoint_errors(tmp_path, resumable, data):
    """Any JSON in a tensor entry's fields (or as the whole entry, or as the metadata) is a CheckpointError."""
    header, body = split(resumable)
    name = data.draw(st.sampled_from(sorted(header)))
    if name == "__metadata__" or data.draw(st.booleans()):
        header[name] = data.draw(JSON)
    else:
        header[name][data.draw(st.sampled_from(["dtype", "shape", "data_offsets"]))] = data.draw(JSON)
    p = tmp_path / "fz.safetensors"
    p.write_bytes(join(header, body))
    model = tiny_model()
    try:
        load_checkpoint(p, model, Adam(model.parameters()))
    except CheckpointError:
        pass


def test_a_reader_keeps_reading_the_file_it_validated(tmp_path):
    """A save that replaces the path between reading the header and reading a tensor cannot mix two files."""
    path = save_checkpoint(tmp_path / "ck.safetensors", tiny_model(seed=1))
    _, shapes, reader = read_checkpoint(path)
    save_checkpoint(path, tiny_model(seed=2))
    with reader:
        np.testing.assert_array_equal(reader.get_tensor("model/dense.W"), tiny_model(seed=1).layers[-1].params["W"].data)


def test_files_written_by_the_safetensors_library_still_load(tmp_path, resumable):
    from safetensors.numpy import save_file

    tensors, meta = tensors_of(resumable)
    arrays = {k: np.frombuffer(d, "<f4").reshape(s) for k, (_, s, d) in tensors.items()}
    save_file(arrays, tmp_path / "st.safetensors", metadata=meta)
    model, opt = fresh()
    load_checkpoint(tmp_path / "st.safetensors", model, opt)
    np.testing.assert_array_equal(model.layers[-1].params["W"].data, arrays["model/dense.W"])


# B. Every metadata value is checked with the constructors' rules, before anything changes --------------------------------
MT19937 = np.random.MT19937(0).state
MT19937 = json.dumps(dict(MT19937, state={"key": MT19937["state"]["key"].tolist(), "pos": MT19937["state"]["pos"]}))


def _pcg(**changes):
    state = {"bit_generator": "PCG64", "state": {"state": 5, "inc": 7}, "has_uint32": 0, "uinteger": 0}
    for k, v in changes.items():
        if k in ("state", "inc"):
            state["state"][k] = v
        elif v is None:
            state.pop(k)
        else:
            state[k] = v
    return json.dumps(state)


BAD_METADATA = [
    ("epoch", v) for v in ["-1", "-7", "1.5", "", "one", " 0", "0x1", "1e3", str(10**18)]
] + [
    ("optimizer_t", v) for v in ["-1", "2.5", "nan", str(2**53 + 1), "9" * 5000, "True"]
] + [
    ("lr", v) for v in ["-0.01", "0", "nan", "inf", "-inf", "1e400", "fast", ""]
] + [
    ("history", v) for v in [
        '"abc"', '{"loss": "abc"}', '{"loss": [true]}', '{"loss": [null]}', '{"loss": [[0.5]]}', '{"loss": ["0.5"]}',
        '{"loss": 0.5}', '{"bogus": [0.5]}', '[0.5]', 'null', '{"loss": [0.5], "accuracy": [0.5, 0.6]}',
        '{"loss": [0.5, 0.4], "accuracy": [0.5, 0.6]}', '{"loss": [], "accuracy": []}', '{"loss": [0.5], "loss": [0.4]}',
        "nope"]
] + [
    ("input_shape", v) for v in ["[0, 8, 8]", "[-1, 8, 8]", "[]", "[1.5, 8, 8]", "[true, 8, 8]", '"1,8,8"', '{"c": 1}']
] + [
    ("dtype", v) for v in ["float16", "int32", "", "object"]
] + [
    ("layer_rngs", v) for v in [
        '{"dropout": {"seed": -1, "calls": 0}}', '{"dropout": {"seed": 0}}', '{"dropout": {"seed": 0, "calls": 1.5}}',
        '{"dropout": {"seed": 0, "calls": 18446744073709551616}}', "[]", '{"dropout": 5}',
        '{"dropout": {"seed": true, "calls": 0}}', '{"dropout": {"seed": 0, "calls": 0, "x": 1}}']
] + [
    ("train_rng", v) for v in [
        "{}", '"abc"', '{"bit_generator": "seed"}', _pcg(state=-1), _pcg(inc=2**200), _pcg(inc=1.5), _pcg(state=True),
        _pcg(uinteger=-3), _pcg(uinteger=None), _pcg(extra=1), _pcg(bit_generator="MT19937"),
        MT19937]  # a valid MT19937 state: but fit's generator is a PCG64
] + [
    ("architecture", v) for v in [
        "nope", "[]", '{"layers": []}', '[{"class_name": "ReLU"}]', '[{"class_name": "Lambda", "name": "l", "config": {}}]',
        '[{"class_name": "Layer", "name": "l", "config": {}}]', '[{"class_name": "__init__", "name": "l", "config": {}}]',
        '[{"class_name": "ReLU", "name": "", "config": {}}]', '[{"class_name": "ReLU", "name": "r", "config": []}]',
        '[{"class_name": "Conv2D", "name": "c", "config": {"out_channels": -1, "kernel_size": 3}}]',
        '[{"class_name": "Conv2D", "name": "c", "config": {"out_channels": 4, "kernel_size": 1.5}}]',
        '[{"class_name": "Conv2D", "name": "c", "config": {"out_channels": 4, "kernel_size": 3, "activation": "relu"}}]',
        '[{"class_name": "Conv2D", "name": "c", "config": {"out_channels": 4, "kernel_size": 9}}]',  # 9x9 on 8x8
        '[{"class_name": "Dense", "name": "d", "config": {"out_features": 3}}]',  # Dense on (1, 8, 8) samples
        '[{"class_name": "ReLU", "name": "r", "config": {}}, {"class_name": "ReLU", "name": "r", "config": {}}]',
        '[{"class_name": "ReLU", "name": "r", "config": {"self": 1}}]', "[" * 100_000]
]


@pytest.mark.parametrize("key,value", BAD_METADATA, ids=[f"{k}={v[:24]!r}" for k, v in BAD_METADATA])
def test_a_bad_metadata_value_is_refused_on_resume_naming_key_and_file(tmp_path, resumable, key, value):
    header, body = split(resumable)
    header["__metadata__"][key] = value
    refused(tmp_path / "ck.safetensors", f"metadata '{key}'", join(header, body))


def test_a_history_inconsistent_with_the_epoch_is_refused(tmp_path, resumable):
    header, body = split(resumable)
    header["__metadata__"]["epoch"] = "4"  # the history holds one epoch
    refused(tmp_path / "ck.safetensors", r"metadata 'history' holds 1 epochs.*epoch 4 \(expected 5\)", join(header, body))


def test_nan_and_inf_in_the_history_are_numbers_and_load(tmp_path, resumable):
    header, body = split(resumable)
    history = json.loads(header["__metadata__"]["history"])
    assert math.isnan(history["val_loss"][0])  # no validation data: NaN, and that must load
    history["loss"] = [math.inf]
    header["__metadata__"]["history"] = json.dumps(history)
    (tmp_path / "ck.safetensors").write_bytes(join(header, body))
    model, opt = fresh()
    h = resume(tmp_path / "ck.safetensors", model, opt, epochs=2)
    assert h.history["loss"][0] == math.inf and len(h) == 2


def test_save_refuses_what_load_would_refuse(tmp_path):
    model = tiny_model()
    opt = Adam(model.parameters())
    with pytest.raises(ValueError, match="metadata 'epoch' must be an integer >= 0"):
        save_checkpoint(tmp_path / "a.safetensors", model, opt, epoch=-1)
    with pytest.raises(ValueError, match="metadata 'history' has lists of different lengths"):
        save_checkpoint(tmp_path / "a.safetensors", model, opt, history={"loss": [1.0, 2.0], "accuracy": [0.5]})
    with pytest.raises(ValueError, match="metadata 'history' holds 2 epochs"):
        save_checkpoint(tmp_path / "a.safetensors", model, opt, epoch=0, history={"loss": [1.0, 2.0]})
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_without_history_resumes_and_saves_again(tmp_path):
    """fit fills the epochs before the checkpoint with NaN, so the history it saves next agrees with the epoch."""
    model, opt = fresh()
    path = save_checkpoint(tmp_path / "ck.safetensors", model, opt, epoch=1, rng=np.random.default_rng(4))
    x, y = tiny_data()
    h = fit(model, SoftmaxCrossEntropy(), opt, x, y, epochs=3, batch_size=16, verbose=False, resume_from=path,
            callbacks=[ModelCheckpoint(path, "loss", save_best_only=False)])
    assert len(h) == 3 and all(math.isnan(v) for v in h.history["loss"][:2]) and np.isfinite(h.history["loss"][2])
    meta, _, _ = read_checkpoint(path)
    assert meta["parsed"]["epoch"] == 2 and len(meta["parsed"]["history"]["loss"]) == 3


# C. Saves at the same time ------------------------------------------------------------------------------------------------
def models_by_seed(seeds):
    out = {}
    for s in seeds:
        model = tiny_model(seed=s)
        out[s] = (model, Adam(model.parameters()))
    return out


def which(path, known):
    """Load ``path`` into a fresh model and say which known model it is (a whole checkpoint, not a mix)."""
    model, opt = fresh()
    load_checkpoint(path, model, opt)
    got = {k: np.asarray(p.data) for k, p in model.named_arrays().items()}
    for seed, (m, _) in known.items():
        if all(np.array_equal(got[k], np.asarray(p.data)) for k, p in m.named_arrays().items()):
            return seed
    raise AssertionError(f"{path} holds none of the saved models")


def test_threads_saving_one_path_at_once_all_succeed_and_leave_no_temp_file(tmp_path):
    path = tmp_path / "best.safetensors"
    known = models_by_seed(range(4))
    errors, start = [], threading.Barrier(len(known))

    def saver(seed):
        model, opt = known[seed]
        start.wait()
        try:
            for epoch in range(8):
                save_checkpoint(path, model, opt, epoch=epoch)
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(repr(exc))

    threads = [threading.Thread(target=saver, args=(s,)) for s in known]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [p.name for p in tmp_path.iterdir()] == ["best.safetensors"]
    assert which(path, known) in known


SAVER = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
from helpers import tiny_model
from tinynet.checkpoint import save_checkpoint
from tinynet.optim import Adam
seed = int(sys.argv[1])
model = tiny_model(seed=seed)
opt = Adam(model.parameters())
print("ready", flush=True)
sys.stdin.readline()
for epoch in range({saves}):
    save_checkpoint({path!r}, model, opt, epoch=epoch)
"""


def test_two_processes_saving_one_path_while_a_reader_loads_it(tmp_path):
    path = tmp_path / "best.safetensors"
    known = models_by_seed([0, 1, 2])
    save_checkpoint(path, *known[0])
    script = tmp_path / "saver.py"
    script.write_text(SAVER.format(root=str(ROOT), tests=str(TESTS), path=str(path), saves=30))
    procs = [subprocess.Popen([sys.executable, str(script), str(s)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for s in (1, 2)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        seen = []
        while any(p.poll() is None for p in procs) or not seen:
            seen.append(which(path, known))  # every load is one whole checkpoint of one writer
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(timeout=120)
    assert [p.returncode for p in procs] == [0, 0]
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".py"] == ["best.safetensors"]
    assert which(path, known) in (1, 2)


def test_only_temp_files_of_dead_writers_are_swept(tmp_path):
    path = tmp_path / "ck.safetensors"
    tag = checkpoint._writer_tag()
    host = tag.split("-")[0]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        names = {
            f".ck.safetensors.{host}-{dead.pid}.abc_123.tmp": False,  # killed mid-save: swept
            f".ck.safetensors.{host}-{alive.pid}.abc_123.tmp": True,  # another process, still writing
            f".ck.safetensors.{host}-{os.getpid()}.abc_123.tmp": True,  # another thread of this process
            f".ck.safetensors.{'0' * 8 if host != '0' * 8 else '1' * 8}-{dead.pid}.abc_123.tmp": True,  # other machine
            ".ck.safetensors.abc_123.tmp": True,  # no writer named: cannot be proven dead
            f".other.safetensors.{host}-{dead.pid}.abc_123.tmp": True,  # another checkpoint's
        }
        for name in names:
            (tmp_path / name).write_bytes(b"partial")
        save_checkpoint(path, tiny_model())
        assert {p.name for p in tmp_path.iterdir()} == {"ck.safetensors", *(n for n, keep in names.items() if keep)}
    finally:
        alive.stdin.close()
        alive.wait()


def test_a_save_names_its_temp_file_after_its_writer(tmp_path, monkeypatch):
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append(Path(src).name)
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    save_checkpoint(tmp_path / "ck.safetensors", tiny_model())
    assert re.fullmatch(re.escape(f".ck.safetensors.{checkpoint._writer_tag()}.") + r"\w+\.tmp", seen[0])


SAME_BYTES = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
import numpy as np
from helpers import tiny_model
from tinynet.checkpoint import save_checkpoint
from tinynet.optim import Adam
model = tiny_model(seed=1)
save_checkpoint(sys.argv[1], model, Adam(model.parameters()), epoch=0, rng=np.random.default_rng(2),
                history={{"loss": [0.5]}}, extra={{"monitor": "loss"}})
"""


def test_identical_tensors_and_metadata_give_byte_identical_files(tmp_path):
    model = tiny_model(seed=1)
    kw = dict(epoch=0, history={"loss": [0.5]}, extra={"monitor": "loss"})
    a = save_checkpoint(tmp_path / "a.safetensors", model, Adam(model.parameters()), rng=np.random.default_rng(2), **kw)
    b = save_checkpoint(tmp_path / "b.safetensors", model, Adam(model.parameters()), rng=np.random.default_rng(2), **kw)
    assert a.read_bytes() == b.read_bytes()
    script = tmp_path / "same.py"
    script.write_text(SAME_BYTES.format(root=str(ROOT), tests=str(TESTS)))
    subprocess.run([sys.executable, str(script), str(tmp_path / "c.safetensors")], check=True)
    assert (tmp_path / "c.safetensors").read_bytes() == a.read_bytes()  # another process, the same bytes
    from safetensors import safe_open

    f = safe_open(str(a), framework="np")  # and the safetensors library reads them
    _, shapes, reader = read_checkpoint(a)
    assert f.metadata() == reader.metadata() and set(f.keys()) == set(shapes)
    for k in f.keys():
        np.testing.assert_array_equal(f.get_tensor(k), reader.get_tensor(k))


# D. NaN and inf in the weights or the optimizer state ----------------------------------------------------------------------
def test_nan_and_inf_weights_are_refused_with_tensor_file_and_count(tmp_path):
    model = tiny_model(seed=1)
    opt = Adam(model.parameters())
    model.layers[-1].params["W"].data[0, 0] = np.nan
    model.layers[-1].params["W"].data[1, 1] = np.inf
    model.layers[-1].params["W"].data[2, 2] = -np.inf
    model.layers[2].state["moving_variance"].data[1] = np.nan
    opt.v[0][0, 0, 0, 0] = np.inf
    path = save_checkpoint(tmp_path / "ck.safetensors", model, opt)
    msg = refused(path, "holds NaN or inf")
    assert "model/dense.W: 3 non-finite values of 192" in msg
    assert "model/batch_normalization.moving_variance: 1 non-finite value of 4" in msg
    assert "optimizer/v.0: 1 non-finite value of 36" in msg
    with pytest.raises(CheckpointError, match="model/dense.W: 3 non-finite values"):
        load_checkpoint(path, tiny_model())  # weights only, as evaluate and predict load them


def test_predict_on_a_nan_checkpoint_says_so(tmp_path, capsys):
    from tinynet import models
    from tinynet.cli import main

    model = models.build("cnn_dropout02", seed=0)
    model.layers[0].params["W"].data[0] = np.nan
    path = save_checkpoint(tmp_path / "nan.safetensors", model)
    from PIL import Image

    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "black.png")  # a valid image: the checkpoint fails
    assert main(["predict", str(path), "--image", str(tmp_path / "black.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinynet: error:") and "non-finite values" in err and str(path) in err
