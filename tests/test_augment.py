"""Data augmentation: a shifted image is the shifted image, every backend draws the same, resume continues it."""

import json

import numpy as np
import pytest
from conftest import host
from helpers import tiny_data, tiny_model

from tinynet.checkpoint import CheckpointError, save_checkpoint
from tinynet.data import Augment, shifted
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import Adam
from tinynet.train import fit


def shifted_by_hand(image, dy, dx, flip):
    """The reference: flip, then move by (dy, dx) one pixel at a time, filling with zeros."""
    out = image[:, ::-1] if flip else image.copy()
    h, w = out.shape
    moved = np.zeros_like(out)
    for i in range(h):
        for j in range(w):
            if 0 <= i - dy < h and 0 <= j - dx < w:
                moved[i, j] = out[i - dy, j - dx]
    return moved


@pytest.mark.parametrize("seed", range(5))
def test_a_shifted_image_is_the_shifted_image(backend, seed):
    rng = np.random.default_rng(seed)
    x = rng.random((6, 2, 7, 5)).astype(np.float32)
    dy, dx = rng.integers(-3, 4, 6), rng.integers(-3, 4, 6)
    flip = rng.random(6) < 0.5
    got = host(shifted(backend.asarray(x), dy, dx, flip))
    assert got.dtype == np.float32 and got.shape == x.shape
    for n in range(6):
        for c in range(2):
            np.testing.assert_array_equal(got[n, c], shifted_by_hand(x[n, c], dy[n], dx[n], flip[n]))


def test_every_backend_draws_the_same_images(backend):
    x = np.random.default_rng(0).random((32, 1, 8, 8)).astype(np.float32)
    ref, got = Augment(2, True, seed=7), Augment(2, True, seed=7)
    for _ in range(3):
        np.testing.assert_array_equal(host(got(backend.asarray(x))), ref(x))
    assert got.rng_state() == {"seed": 7, "calls": 3, "shift": 2, "flip": True}


def test_the_draws_cover_every_shift_and_both_flips_evenly():
    dy, dx, flip = Augment(2, True, seed=0).draw(50_000)
    for d in (dy, dx):
        counts = np.bincount(d + 2, minlength=5)
        assert set(np.unique(d)) == {-2, -1, 0, 1, 2} and counts.min() > 0.95 * counts.max()
    assert 0.49 < flip.mean() < 0.51
    assert not Augment(2, False, seed=0).draw(100)[2].any()
    assert not np.array_equal(Augment(2, True, seed=0).draw(100)[0], Augment(2, True, seed=1).draw(100)[0])


def test_resume_continues_the_same_augmentation(tmp_path, backend):
    from tinynet.callbacks import ModelCheckpoint

    x, y = tiny_data()

    def run(epochs, resume=None, callbacks=()):
        model = tiny_model(0).to(backend.name)
        h = fit(model, SoftmaxCrossEntropy(), Adam(model.parameters(), lr=0.01), x, y, epochs=epochs, batch_size=16,
                verbose=False, augment=Augment(1, True, seed=3), resume_from=resume, callbacks=callbacks)
        return h.history["loss"], {k: host(p.data) for k, p in model.named_arrays().items()}

    whole = run(3)
    run(2, callbacks=[ModelCheckpoint(tmp_path / "c.safetensors", monitor="loss", save_best_only=False)])
    resumed = run(3, resume=tmp_path / "c.safetensors")
    assert resumed[0] == whole[0]
    for k, w in whole[1].items():
        np.testing.assert_array_equal(resumed[1][k], w)
    plain = run(3)  # and augmentation does change the run
    assert plain[0] == whole[0]
    model = tiny_model(0).to(backend.name)
    h = fit(model, SoftmaxCrossEntropy(), Adam(model.parameters(), lr=0.01), x, y, epochs=3, batch_size=16,
            verbose=False)
    assert h.history["loss"] != whole[0]


@pytest.mark.parametrize("bad", [{"seed": 1, "calls": -1, "shift": 2, "flip": True},
                                 {"seed": 1, "calls": 2, "shift": 2, "flip": 1},
                                 {"seed": 1, "calls": 2, "shift": 2},
                                 [1, 2]])
def test_a_damaged_augmentation_state_is_refused_before_anything_changes(tmp_path, bad):
    from tinynet.checkpoint import load_checkpoint

    model = tiny_model(0)
    path = save_checkpoint(tmp_path / "c.safetensors", model, augment=Augment(2, True, seed=1))
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    header["__metadata__"]["augment_rng"] = json.dumps(bad)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n :])
    augment = Augment(2, True, seed=5)
    with pytest.raises(CheckpointError, match="augment_rng"):
        load_checkpoint(path, tiny_model(0), augment=augment)
    assert augment.rng_state() == {"seed": 5, "calls": 0, "shift": 2, "flip": True}


def test_augment_refuses_nonsense():
    with pytest.raises(ValueError, match="augment shift must be an integer >= 0"):
        Augment(shift=-1)
    with pytest.raises(ValueError, match="augment seed"):
        Augment(seed=1.5)
