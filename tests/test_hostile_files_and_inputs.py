"""Attacks on tinynet: hostile and damaged files (pickles, truncated or mutated checkpoints and data, gzip
bombs), a kill mid-save, bad inputs; each answered by one clear error with nothing lost."""

import gzip
import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import host
from helpers import tiny_data, tiny_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinynet
from tinynet import checkpoint, models
from tinynet.callbacks import DivergenceError, ModelCheckpoint
from tinynet.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinynet.data import DataError, parse_idx, read_gzip
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import Adam
from tinynet.train import fit

TESTS = Path(__file__).parent


# 1. Hostile checkpoint -------------------------------------------------------------------------
class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # unpickling would create the marker file


def test_a_pickle_bomb_checkpoint_is_refused_and_runs_no_code(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    bad = tmp_path / "weights.npz"
    np.savez(bad, W=np.array([_Exploit(str(marker))], dtype=object), allow_pickle=True)
    calls = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: calls.append("pickle.loads"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: calls.append("pickle.load"))
    monkeypatch.setattr(np, "load", lambda *a, **k: calls.append("np.load"))
    with pytest.raises(CheckpointError, match="not a valid safetensors checkpoint"):
        load_checkpoint(bad, tiny_model())
    assert not marker.exists() and calls == []


def test_no_module_of_the_library_can_unpickle():
    src = "\n".join(p.read_text() for p in Path(tinynet.__file__).parent.rglob("*.py"))
    assert "import pickle" not in src and "allow_pickle=True" not in src and "np.load(" not in src


# 2. Interrupted save -----------------------------------------------------------------------------
def test_an_exception_mid_save_keeps_the_previous_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "ck.safetensors"
    model = tiny_model()
    save_checkpoint(path, model)
    before = path.read_bytes()
    model.parameters()[0].data += 1

    def boom(fd):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.safetensors"]
    load_checkpoint(path, tiny_model())


def test_checkpoints_get_the_usual_file_permissions(tmp_path):
    path = save_checkpoint(tmp_path / "ck.safetensors", tiny_model())
    assert path.stat().st_mode & 0o777 == checkpoint.default_file_mode()


def test_a_kill_mid_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, tiny_model())
    before = path.read_bytes()
    code = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(TESTS)!r})
        from helpers import tiny_model
        from tinynet.checkpoint import save_checkpoint
        real = os.fsync
        def slow(fd):
            print("writing", flush=True)
            time.sleep(30)
            real(fd)
        os.fsync = slow
        save_checkpoint({str(path)!r}, tiny_model(seed=5))
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert path.read_bytes() == before  # the old file is untouched
    load_checkpoint(path, tiny_model())
    save_checkpoint(path, tiny_model())  # the next save sweeps the killed one's temp file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.safetensors"]


# 3. Truncated or inconsistent checkpoint -----------------------------------------------------------
def _header_and_body(path):
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return raw[8 : 8 + n], raw[8 + n :]


def _with_header(header, body):
    return len(header).to_bytes(8, "little") + header + body


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, tiny_model(), Adam(tiny_model().parameters()))
    return path


def test_one_byte_short(saved):
    saved.write_bytes(saved.read_bytes()[:-1])
    with pytest.raises(CheckpointError, match="not a valid safetensors checkpoint"):
        load_checkpoint(saved, tiny_model())


def test_a_header_claiming_more_data_than_there_is(saved):
    header, body = _header_and_body(saved)
    saved.write_bytes((len(header) + 10**6).to_bytes(8, "little") + header + body)
    with pytest.raises(CheckpointError, match="not a valid safetensors checkpoint"):
        load_checkpoint(saved, tiny_model())


def test_a_declared_shape_of_a_trillion_elements_fails_before_allocating(saved):
    import json

    header, body = _header_and_body(saved)
    meta = json.loads(header)
    key = "model/dense.W"
    meta[key]["shape"] = [10**6, 10**6]
    saved.write_bytes(_with_header(json.dumps(meta).encode(), body))
    with pytest.raises(CheckpointError, match="not a valid safetensors checkpoint"):
        load_checkpoint(saved, tiny_model())


# 4. Mismatched checkpoint ------------------------------------------------------------------------------
def test_64_filter_weights_into_a_32_filter_model(tmp_path):
    from tinynet import Sequential
    from tinynet.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU

    def cnn(f):
        return Sequential([Conv2D(f, 3), ReLU(), MaxPool2D(2), Flatten(), Dense(10)], input_shape=(1, 28, 28), name="c")

    save_checkpoint(tmp_path / "c.safetensors", cnn(64))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "c.safetensors", cnn(32))
    assert "conv2d.W: checkpoint has shape (64, 1, 3, 3), model has (32, 1, 3, 3)" in str(err.value)
    assert "dense.W: checkpoint has shape (10816, 10), model has (5408, 10)" in str(err.value)


def test_unknown_format_version(saved):
    import json

    header, body = _header_and_body(saved)
    meta = json.loads(header)
    meta["__metadata__"]["format_version"] = "99"
    saved.write_bytes(_with_header(json.dumps(meta).encode(), body))
    with pytest.raises(CheckpointError, match="format version '99'"):
        load_checkpoint(saved, tiny_model())


def test_missing_and_extra_parameters_are_named(tmp_path):
    from safetensors.numpy import save_file

    model = tiny_model()
    tensors = {f"model/{k}": np.asarray(p.data) for k, p in model.named_arrays().items()}
    tensors.pop("model/dense.b")
    tensors["model/dense_9.W"] = np.zeros((2, 2), np.float32)
    save_file(tensors, tmp_path / "x.safetensors", metadata={"format": "tinynet-checkpoint", "format_version": "1"})
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "x.safetensors", tiny_model())
    assert "missing parameter dense.b (model has shape (3,))" in str(err.value)
    assert "unexpected parameter dense_9.W with shape (2, 2)" in str(err.value)


# 5. Bitwise resume in a fresh process ---------------------------------------------------------------------
RESUME = """
import sys, json
sys.path[:0] = [{root!r}, {tests!r}]  # a script's folder comes first on sys.path, not the cwd: this checkout's tinynet
import numpy as np
from helpers import tiny_data, tiny_model
from tinynet.callbacks import ModelCheckpoint
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import Adam
from tinynet.train import fit
model = tiny_model(seed=2)
opt = Adam(model.parameters(), lr=0.01)
x, y = tiny_data(64)
kw = dict(batch_size=16, seed=4, verbose=False)
mode, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "first":
    fit(model, SoftmaxCrossEntropy(), opt, x, y, epochs=2, callbacks=[ModelCheckpoint(path, "loss", False)], **kw)
else:
    h = fit(model, SoftmaxCrossEntropy(), opt, x, y, epochs=4, resume_from=path if mode == "resume" else None, **kw)
    arrays = {{k: np.asarray(p.data) for k, p in model.named_arrays().items()}}
    arrays.update({{f"opt.{{k}}": v for k, v in opt.state_arrays().items()}})
    np.savez(out, t=opt.t, losses=np.array(h.history["loss"]), **arrays)
"""


def test_resume_in_a_fresh_process_is_bitwise_identical(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(RESUME.format(root=str(TESTS.parent), tests=str(TESTS)))
    ck = tmp_path / "ck.safetensors"

    def run(*args):
        subprocess.run([sys.executable, str(script), *map(str, args)], check=True)

    run("straight", ck, tmp_path / "a.npz")
    run("first", ck, "-")
    run("resume", ck, tmp_path / "b.npz")
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:  # our own files, no pickle
        assert set(a.files) == set(b.files) and "opt.m.0" in a.files
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# 7. (stable loss: test_layer_behaviour.py)  8. NaN guard ------------------------------------------------
def test_a_huge_learning_rate_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    path = tmp_path / "ck.safetensors"
    model = tiny_model()
    x, y = tiny_data()
    loss = SoftmaxCrossEntropy()
    fit(model, loss, Adam(model.parameters()), x, y, epochs=1, batch_size=16, verbose=False,
        callbacks=[ModelCheckpoint(path, "loss", save_best_only=False)])
    good = path.read_bytes()
    with pytest.raises(DivergenceError, match=r"epoch 1, step \d+"):
        fit(model, loss, Adam(model.parameters(), lr=1e6), x, y, epochs=3, batch_size=16, verbose=False,
            callbacks=[ModelCheckpoint(path, "loss", save_best_only=False)])
    assert path.read_bytes() == good


# 9. Bad inputs, identical on every backend ------------------------------------------------------------------
def _images(backend, shape, dtype=np.float32):
    return backend.asarray(np.zeros(shape, dtype=dtype))


BAD_INPUTS = [
    ("nhwc", lambda b: (_images(b, (2, 28, 28, 1)), None), r"expects input of shape \(N, 1, 28, 28\), got \(2, 28, 28, 1\)"
     r".*NHWC"),
    ("empty", lambda b: (_images(b, (0, 1, 28, 28)), None), r"empty batch, shape \(0, 1, 28, 28\)"),
    ("3-D", lambda b: (_images(b, (1, 28, 28)), None), r"expects input of shape \(N, 1, 28, 28\), got \(1, 28, 28\)"),
    ("channels", lambda b: (_images(b, (2, 3, 28, 28)), None), r"expects input of shape \(N, 1, 28, 28\), got \(2, 3, 28, 28\)"),
    ("label -1", lambda b: (_images(b, (2, 1, 28, 28)), np.array([0, -1])), r"labels must be in \[0, 9\], got values from -1"),
    ("label 10", lambda b: (_images(b, (2, 1, 28, 28)), np.array([10, 0])), r"labels must be in \[0, 9\].* to 10"),
    ("float labels", lambda b: (_images(b, (2, 1, 28, 28)), np.array([1.0, 2.0])), "integer class indices"),
]


@pytest.mark.parametrize("case,make,message", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_give_a_value_error_naming_expected_and_actual(backend, case, make, message):
    model = models.build("cnn_dropout02", seed=0).to(backend.name)
    x, y = make(backend)
    with pytest.raises(ValueError, match=message):
        if y is None:
            model.forward(x)
        else:
            out = model.forward(x)
            SoftmaxCrossEntropy().forward(out, backend.asarray(y))
    if y is not None:  # fit checks labels up front, on the host, with the same words
        with pytest.raises(ValueError, match=message):
            fit(model, SoftmaxCrossEntropy(), Adam(model.parameters()), host(x), y, verbose=False)


def test_a_3d_input_to_conv2d_and_a_wrong_input_shape(backend):
    from tinynet import Sequential
    from tinynet.layers import Conv2D

    with pytest.raises(ValueError, match=r"Conv2D expects 4-D input \(N, C, H, W\), got shape \(2, 28, 28\)"):
        Conv2D(4, 3).forward(_images(backend, (2, 28, 28)))
    with pytest.raises(ValueError, match=r"Conv2D expects samples with 3 dims, got input_shape \(28, 28\)"):
        Sequential([Conv2D(4, 3)], input_shape=(28, 28))


def test_arrays_of_the_wrong_backend_get_a_clear_error():
    if "cupy" not in tinynet.available_backends():
        with pytest.raises(TypeError, match="is a list, not an array"):
            tinynet.layers.ReLU().forward([1.0, 2.0])
        return

    model = models.build("cnn_dropout02").to("cupy")
    with pytest.raises(TypeError, match="numpy ndarray but the backend is 'cupy'"):
        model.forward(np.zeros((1, 1, 28, 28), np.float32))


# 10. GPU memory ----------------------------------------------------------------------------------------------
OOM = """
import numpy as np, tinynet
from tinynet import models
from tinynet.data import load_fashion_mnist, to_float
from tinynet.train import predict_logits
tinynet.use_backend("cupy")
_, (x, y) = load_fashion_mnist()
m = models.build("cnn_dropout02", seed=0).to("cupy")
pred = predict_logits(m, to_float(x), batch_size=10_000).argmax(1)
print("ACC", (pred == y).mean())
"""


@pytest.mark.gpu
def test_out_of_memory_halves_the_batch_and_gives_the_same_accuracy(fashion):
    if "cupy" not in tinynet.available_backends():
        pytest.skip("needs CuPy and a CUDA GPU")
    from tinynet import models as m_
    from tinynet.data import to_float
    from tinynet.train import predict_logits

    _, (x, y) = fashion
    ref = (predict_logits(m_.build("cnn_dropout02", seed=0), to_float(x)).argmax(1) == y).mean()
    # CuPy reads whole bytes or a percentage ("300MB" would not parse). One 10,000-image batch needs ~0.9 GB.
    env = dict(os.environ, CUPY_GPU_MEMORY_LIMIT=str(300 * 2**20))
    r = subprocess.run([sys.executable, "-c", OOM], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert float(r.stdout.split("ACC")[1]) == pytest.approx(ref)
    env["CUPY_GPU_MEMORY_LIMIT"] = str(600 * 2**10)  # not even the weights and one image fit
    r = subprocess.run([sys.executable, "-c", OOM], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "out of memory" in r.stderr


# 11. Fuzzing ---------------------------------------------------------------------------------------------------
FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid_idx():
    a = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    return (0x803).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in a.shape) + a.tobytes()


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_idx_parser_with_random_bytes(raw):
    try:
        parse_idx(raw, "fuzz")
    except DataError:
        pass


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 4 + 4 * 3 + 20), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, 2 * 28 * 28 + 16))
def test_fuzz_idx_parser_with_mutated_headers(mutations, cut):
    raw = bytearray(_valid_idx())
    for pos, val in mutations:
        raw[pos] = val
    try:
        arr = parse_idx(bytes(raw[: len(raw) - cut]), "fuzz")
        assert arr.nbytes <= len(raw)  # never more data than the file holds
    except DataError:
        pass


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_gzip_reader(tmp_path, raw):
    p = tmp_path / "f.gz"
    p.write_bytes(raw)
    try:
        read_gzip(p)
    except DataError:
        pass


def test_a_gzip_bomb_is_stopped_before_it_fills_memory(tmp_path, monkeypatch):
    monkeypatch.setattr("tinynet.data.MAX_DECOMPRESSED", 1000)
    p = tmp_path / "bomb.gz"
    p.write_bytes(gzip.compress(b"\0" * 10_000))
    with pytest.raises(DataError, match="decompresses to more than 1000 bytes"):
        read_gzip(p)


@pytest.fixture(scope="module")
def valid_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "ck.safetensors"
    save_checkpoint(path, tiny_model(), Adam(tiny_model().parameters()))
    return path.read_bytes()


@FUZZ
@given(data=st.data())
def test_fuzz_checkpoint_loader_with_mutated_bytes(tmp_path, valid_checkpoint, data):
    raw = bytearray(valid_checkpoint)
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, min(len(raw) - 1, 600)))  # mostly the header
        raw[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, 40))
    p = tmp_path / "fz.safetensors"
    p.write_bytes(bytes(raw[: len(raw) - cut]))
    model = tiny_model()
    try:
        load_checkpoint(p, model, Adam(model.parameters()))
    except CheckpointError:
        pass


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_checkpoint_loader_with_random_bytes(tmp_path, raw):
    p = tmp_path / "rnd.safetensors"
    p.write_bytes(raw)
    try:
        checkpoint.read_checkpoint(p)
    except CheckpointError:
        pass


def test_a_header_length_of_2_to_the_63_is_refused(tmp_path):
    p = tmp_path / "h.safetensors"
    p.write_bytes((2**63).to_bytes(8, "little") + b"{}")
    with pytest.raises(CheckpointError, match="not a valid safetensors checkpoint"):
        checkpoint.read_checkpoint(p)
