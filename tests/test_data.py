"""The loader verifies content, not presence: every corruption gives one clear DataError."""

import gzip
import hashlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tinynet import data
from tinynet.data import FILES, DataError, load_fashion_mnist, parse_idx, read_verified


def idx_bytes(arr, magic=None):
    arr = np.asarray(arr, dtype=np.uint8)
    magic = magic if magic is not None else (0x0800 | arr.ndim)
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.tobytes()


def write_gz(path, raw):
    with gzip.open(path, "wb") as f:
        f.write(raw)
    return path


def test_real_files_match_the_official_checksums(fashion):
    d = data.find_data_dir(download_missing=False)
    for name, md5 in FILES.items():
        with gzip.open(d / name) as f:
            assert hashlib.md5(f.read()).hexdigest() == md5
    (xtr, ytr), (xte, yte) = fashion
    assert xtr.shape == (60000, 28, 28) and xte.shape == (10000, 28, 28) and xtr.dtype == np.uint8
    assert np.bincount(ytr).tolist() == [6000] * 10 and np.bincount(yte).tolist() == [1000] * 10


@pytest.fixture
def copied(fashion, tmp_path):
    """A private copy of the real files that a test may damage."""
    src = data.find_data_dir(download_missing=False)
    for name in FILES:
        shutil.copy(src / name, tmp_path / name)
    return tmp_path


def test_a_tampered_file_is_rejected_by_its_checksum(copied):
    name = "t10k-labels-idx1-ubyte.gz"
    with gzip.open(copied / name) as f:
        raw = bytearray(f.read())
    raw[100] = (raw[100] + 1) % 10  # one label changed: still a valid IDX file
    write_gz(copied / name, bytes(raw))
    with pytest.raises(DataError, match=f"{name}.*MD5"):
        load_fashion_mnist(copied)


def test_a_half_length_gzip_is_rejected(copied):
    p = copied / "train-labels-idx1-ubyte.gz"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(DataError, match="train-labels.*corrupt or truncated gzip"):
        load_fashion_mnist(copied)


def test_random_bytes_are_rejected(copied):
    (copied / "t10k-images-idx3-ubyte.gz").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(DataError, match="t10k-images.*gzip"):
        load_fashion_mnist(copied)


def test_a_missing_file_is_named(copied):
    (copied / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing t10k-images"):
        load_fashion_mnist(copied)


# Structural checks, on files with names that carry no official checksum.
@pytest.mark.parametrize(
    "name,raw,message",
    [
        ("my-labels-idx1-ubyte.gz", idx_bytes(np.zeros((4, 28, 28)), magic=0x803), "magic is 0x00000803, expected 0x00000801"),
        ("my-images-idx3-ubyte.gz", idx_bytes(np.zeros(5), magic=0x801), "magic is 0x00000801, expected 0x00000803"),
        ("my-images-idx3-ubyte.gz", idx_bytes(np.zeros((2, 28, 28)))[:-5], r"header says \(2, 28, 28\)"),
        ("my-images-idx3-ubyte.gz", idx_bytes(np.zeros((2, 28, 28))) + b"xx", "file holds 1570"),
        ("my-images-idx3-ubyte.gz", idx_bytes(np.zeros((2, 14, 56))), "must be 28x28"),
        ("my-labels-idx1-ubyte.gz", idx_bytes(np.array([0, 3, 10])), "labels must be 0-9, found 10"),
        ("my-labels-idx1-ubyte.gz", b"\x00\x00", "too short"),
    ],
)
def test_structural_corruptions(tmp_path, name, raw, message):
    with pytest.raises(DataError, match=message):
        read_verified(write_gz(tmp_path / name, raw))


def test_unequal_image_and_label_counts(tmp_path):
    write_gz(tmp_path / "x-images-idx3-ubyte.gz", idx_bytes(np.zeros((3, 28, 28))))
    write_gz(tmp_path / "x-labels-idx1-ubyte.gz", idx_bytes(np.zeros(2)))
    with pytest.raises(DataError, match="3 images but 2 labels"):
        data._load_split(tmp_path, "x")


def test_errors_hold_under_python_O(tmp_path):
    """No assert does the checking: the same error under ``python -O``."""
    p = write_gz(tmp_path / "my-labels-idx1-ubyte.gz", idx_bytes(np.array([1, 12])))
    code = f"from tinynet.data import read_verified\nread_verified({str(p)!r})"
    r = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True)
    assert r.returncode != 0 and "DataError" in r.stderr and "found 12" in r.stderr


def test_parse_idx_round_trip():
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(idx_bytes(a)), a)


def test_preprocessing_helpers():
    x = np.full((3, 28, 28), 255, dtype=np.uint8)
    f = data.to_float(x)
    assert f.shape == (3, 1, 28, 28) and f.dtype == np.float32 and f.max() == 1.0
    np.testing.assert_array_equal(data.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        data.one_hot(np.array([3]), 3)
    with pytest.raises(TypeError, match="uint8"):
        data.to_float(f)
    xs, ys = np.arange(100)[:, None], np.arange(100)
    (a, b), (c, d) = data.train_val_split(xs, ys, 20, seed=1)
    assert len(a) == 80 and len(c) == 20 and set(b) | set(d) == set(range(100)) and not set(b) & set(d)
    (a2, _), _ = data.train_val_split(xs, ys, 20, seed=1)
    np.testing.assert_array_equal(a, a2)
    assert len(data.CLASS_NAMES) == 10 and data.CLASS_NAMES[9] == "Ankle boot"


def test_a_failed_download_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(DataError, match="could not download"):
        data.download(tmp_path / "dl", mirror="http://127.0.0.1:9/", progress=False)
    assert list((tmp_path / "dl").iterdir()) == []


def test_a_second_data_set_needs_no_edit_in_the_library(tmp_path):
    """A Dataset describes itself; loading, training, the report and its plots take it from there."""
    import gzip
    import hashlib

    from helpers import tiny_data, tiny_model

    from tinynet.losses import SoftmaxCrossEntropy
    from tinynet.optim import Adam
    from tinynet.report import build_report, format_text, write_outputs
    from tinynet.train import fit

    x, y = tiny_data(96)  # three classes of 8x8 images
    xt, yt = tiny_data(48, seed=1)
    files = {}
    for prefix, images, labels in (("train", x, y), ("t10k", xt, yt)):
        u8 = np.round(np.clip(images[:, 0], 0, 1) * 255).astype(np.uint8)
        for kind, arr, magic in (("images-idx3", u8, 0x803), ("labels-idx1", labels.astype(np.uint8), 0x801)):
            raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape) + arr.tobytes()
            name = f"{prefix}-{kind}-ubyte.gz"
            (tmp_path / name).write_bytes(gzip.compress(raw))
            files[name] = hashlib.md5(raw).hexdigest()
    stripes = data.Dataset(name="Stripes", class_names=("rows", "columns", "noise"), image_shape=(8, 8), files=files)
    (x_u8, y_tr), (xt_u8, y_te) = data.load(stripes, root=tmp_path)
    assert x_u8.shape == (96, 8, 8) and y_tr.dtype == np.int64
    model = tiny_model()
    fit(model, SoftmaxCrossEntropy(), Adam(model.parameters(), lr=0.01), data.to_float(x_u8), y_tr, epochs=3,
        batch_size=16, verbose=False)
    report = build_report(model, SoftmaxCrossEntropy(), data.to_float(xt_u8), y_te, class_names=stripes.class_names)
    assert report["test"]["accuracy"] > 0.8 and "columns" in format_text(report)
    written = write_outputs(tmp_path / "out", report, {"loss": [1.0], "accuracy": [0.5]}, {"model": "tiny"}, xt_u8, y_te)
    assert {p.name for p in written} >= {"metrics.json", "samples.png", "prediction.png", "confusion_test.png"}
    broken = dict(files, **{"t10k-labels-idx1-ubyte.gz": "0" * 32})
    with pytest.raises(data.DataError, match="does not match the official"):
        data.load(data.Dataset("Stripes", ("a", "b", "c"), (8, 8), broken), root=tmp_path)
