"""fit, callbacks and checkpoints: determinism, early stopping, best-only saving, schedules, resume."""

import json
import math

import numpy as np
import pytest
from conftest import host
from helpers import tiny_data, tiny_model

from tinynet.callbacks import (
    Callback,
    DivergenceError,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    exponential_decay,
)
from tinynet.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import Adam
from tinynet.train import evaluate, fit


def train(epochs=3, seed=0, callbacks=(), backend="numpy", **kw):
    model = tiny_model(seed)
    model.to(backend)
    opt = Adam(model.parameters(), lr=0.01)
    x, y = tiny_data()
    h = fit(model, SoftmaxCrossEntropy(), opt, x, y, epochs=epochs, batch_size=16, validation_data=tiny_data(48, 1),
            seed=seed, callbacks=callbacks, verbose=False, **kw)
    return model, opt, h


def weights(model):
    return {k: host(p.data).copy() for k, p in model.named_arrays().items()}


def test_fit_learns_and_records_history():
    model, _, h = train(epochs=6)
    assert len(h) == 6 and set(h.history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"}
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert h.history["val_accuracy"][-1] > 0.8


def test_same_seed_same_numbers_different_seed_different_numbers(backend):
    a, _, ha = train(seed=3, backend=backend.name)
    b, _, hb = train(seed=3, backend=backend.name)
    c, _, hc = train(seed=4, backend=backend.name)
    assert ha.history["loss"] == hb.history["loss"]
    for k, v in weights(a).items():
        np.testing.assert_array_equal(v, weights(b)[k])
    assert ha.history["loss"] != hc.history["loss"]


def test_early_stopping_restores_best_weights_even_without_running_out_of_patience():
    class Snapshot(Callback):
        def on_train_begin(self, run):
            self.per_epoch = []

        def on_epoch_end(self, epoch, logs, run):
            self.per_epoch.append(weights(run.model))

    snap = Snapshot()
    es = EarlyStopping("val_loss", patience=100, restore_best_weights=True)
    model, _, h = train(epochs=8, callbacks=[snap, es])
    assert es.stopped_epoch is None  # patience never ran out
    best = int(np.argmin(h.history["val_loss"]))
    assert best == es.best_epoch
    for k, v in weights(model).items():
        np.testing.assert_array_equal(v, snap.per_epoch[best][k])


def test_early_stopping_stops_after_patience():
    es = EarlyStopping("val_loss", patience=1, min_delta=10.0)  # nothing improves by 10
    _, _, h = train(epochs=8, callbacks=[es])
    assert len(h) == 2 and es.stopped_epoch == 1


def test_model_checkpoint_saves_only_on_improvement(tmp_path):
    ck = ModelCheckpoint(tmp_path / "best.safetensors", monitor="val_loss", save_best_only=True)
    _, _, h = train(epochs=6, callbacks=[ck])
    v = h.history["val_loss"]
    improved = [e for e in range(len(v)) if v[e] < min(v[:e], default=math.inf)]
    assert ck.saved_epochs == improved
    model = tiny_model(99)
    meta = load_checkpoint(tmp_path / "best.safetensors", model)
    assert int(meta["epoch"]) == improved[-1]


def test_exponential_decay_schedule_values():
    sched = exponential_decay(0.01, 10)
    assert sched(0) == pytest.approx(0.01)
    assert sched(10) == pytest.approx(0.001)
    assert sched(5) == pytest.approx(0.01 * 0.1**0.5)
    _, opt, h = train(epochs=3, callbacks=[LearningRateScheduler(sched)])
    assert h.history["lr"] == pytest.approx([sched(0), sched(1), sched(2)])


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path, backend):
    model, opt, _ = train(epochs=2, backend=backend.name)
    x, _ = tiny_data(20, 5)
    save_checkpoint(tmp_path / "m.safetensors", model, opt, epoch=1)
    fresh = tiny_model(7).to(backend.name)
    fresh_opt = Adam(fresh.parameters())
    load_checkpoint(tmp_path / "m.safetensors", fresh, fresh_opt)
    np.testing.assert_array_equal(model.predict(x), fresh.predict(x))
    assert fresh_opt.t == opt.t and fresh_opt.lr == opt.lr


def test_resume_equals_an_uninterrupted_run_bitwise(tmp_path):
    straight, opt_a, h_a = train(epochs=4)
    ck = ModelCheckpoint(tmp_path / "ck.safetensors", monitor="val_loss", save_best_only=False)
    train(epochs=2, callbacks=[ck])
    resumed, opt_b, h_b = train(epochs=4, resume_from=tmp_path / "ck.safetensors")
    assert h_b.history["loss"] == h_a.history["loss"]
    for k, v in weights(straight).items():
        np.testing.assert_array_equal(v, weights(resumed)[k])
    assert opt_a.t == opt_b.t
    for a, b in zip(opt_a.m + opt_a.v, opt_b.m + opt_b.v, strict=True):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_holds_the_promised_metadata(tmp_path):
    model, opt, h = train(epochs=1)
    save_checkpoint(tmp_path / "c.safetensors", model, opt, epoch=0, rng=np.random.default_rng(1), history=h.as_dict())
    from tinynet.checkpoint import read_checkpoint

    meta, shapes, _ = read_checkpoint(tmp_path / "c.safetensors")
    assert meta["format"] == "tinynet-checkpoint" and meta["format_version"] == "2" and meta["model_name"] == "tiny"
    dropout = model.layers[5]
    assert "train_rng" in meta and json.loads(meta["layer_rngs"]) == {"dropout": {"seed": 0, "calls": 6}}
    assert dropout.rng_state() == {"seed": 0, "calls": 6}  # 96 images in batches of 16: 6 training forwards
    assert shapes["model/batch_normalization.moving_mean"] == (4,)
    assert "optimizer/m.0" in shapes and meta["optimizer_t"] == str(opt.t)


@pytest.mark.parametrize("where", ["x", "validation x"])
def test_nan_in_the_data_is_refused_before_training(backend, where, tmp_path):
    model = tiny_model().to(backend.name)
    x, y = tiny_data()
    xv, yv = tiny_data(48, 1)
    (x if where == "x" else xv)[40, 0, 3, 3] = np.nan
    before = weights(model)
    with pytest.raises(ValueError, match=f"^{where} holds 1 NaN or infinite value in 1 sample, the first in sample 40"):
        fit(model, SoftmaxCrossEntropy(), Adam(model.parameters()), x, y, validation_data=(xv, yv), epochs=1,
            verbose=False, callbacks=[ModelCheckpoint(tmp_path / "ck.safetensors")])
    assert not (tmp_path / "ck.safetensors").exists()
    for k, w in weights(model).items():
        np.testing.assert_array_equal(w, before[k])
    with pytest.raises(ValueError, match="holds 1 NaN"):
        evaluate(model, SoftmaxCrossEntropy(), xv if where == "validation x" else x, yv if where == "validation x" else y)


def test_one_nan_pixel_spreads_to_its_sample_on_every_backend(backend):
    """Every backend propagates NaN through conv, ReLU, BatchNorm's inference, max-pool and dense alike."""
    model = tiny_model().to(backend.name)
    x, _ = tiny_data(8)
    x[5, 0, 2, 3] = np.nan
    out = host(model.forward(backend.asarray(x)))
    assert np.isnan(out[5]).all() and np.isfinite(np.delete(out, 5, axis=0)).all()


class _PoisonAfter(Callback):
    """Turns a weight into NaN after step ``k``, as a diverging update would."""

    def __init__(self, k):
        self.k = k

    def on_batch_end(self, step, logs, run):
        if step == self.k:
            run.model.parameters()[0].data[...] = np.nan


def test_a_nan_during_training_stops_it_naming_epoch_and_step(backend, tmp_path):
    model = tiny_model().to(backend.name)
    ck = ModelCheckpoint(tmp_path / "ck.safetensors", monitor="loss", save_best_only=False)
    with pytest.raises(DivergenceError, match="loss became nan at epoch 1, step 4"):
        fit(model, SoftmaxCrossEntropy(), Adam(model.parameters()), *tiny_data(), epochs=2, batch_size=16,
            callbacks=[_PoisonAfter(2), ck], verbose=False, sync_every=1)
    assert not (tmp_path / "ck.safetensors").exists()


def test_a_nan_validation_loss_stops_training_naming_the_epoch(tmp_path):
    class PoisonStats(Callback):  # NaN running statistics: training is fine, evaluation gives NaN
        def on_epoch_end(self, epoch, logs, run):
            pass

        def on_epoch_begin(self, epoch, run):
            if epoch == 1:
                run.model.layers[2].state["moving_variance"].data[...] = np.nan

    model = tiny_model()
    ck = ModelCheckpoint(tmp_path / "ck.safetensors")
    with pytest.raises(DivergenceError, match="validation loss of epoch 2 is nan"):
        fit(model, SoftmaxCrossEntropy(), Adam(model.parameters()), *tiny_data(), epochs=3, batch_size=16,
            validation_data=tiny_data(48, 1), callbacks=[PoisonStats(), ck], verbose=False)
    assert ck.saved_epochs == [0]


def test_evaluate_reports_loss_and_accuracy():
    model, _, _ = train(epochs=4)
    x, y = tiny_data(48, 1)
    r = evaluate(model, SoftmaxCrossEntropy(), x, y)
    assert 0 <= r["accuracy"] <= 1 and r["loss"] > 0 and r["predictions"].shape == (48,)  # as when it was a dict
    assert r.accuracy == r["accuracy"] == (r.predictions == y).mean() and r.logits.shape == (48, 3)
    np.testing.assert_array_equal(r.predictions, r.logits.argmax(axis=1))
    assert repr(r) == f"Evaluation(loss={r.loss:.4f}, accuracy={r.accuracy:.4f}, samples=48)"
    with pytest.raises(KeyError):
        r["probabilities"]


def test_history_repr_is_one_readable_line():
    from tinynet.train import History

    assert repr(History()) == "History(0 epochs)"
    h = History({"loss": [1.0, 0.5, 0.25], "accuracy": [0.5, 0.75, 0.875], "val_loss": [0.9, 0.4, 0.6],
                 "val_accuracy": [0.5, 0.8, 0.7]})
    assert repr(h) == ("History(3 epochs; last: loss 0.2500, accuracy 0.8750, val_loss 0.6000, val_accuracy 0.7000; "
                       "best val_loss 0.4000 at epoch 2)")
    model = tiny_model()
    trained = fit(model, SoftmaxCrossEntropy(), Adam(model.parameters()), *tiny_data(32), verbose=False)
    assert math.isnan(trained.history["val_loss"][0])  # no validation: NaN, which the line leaves out
    assert repr(trained).startswith("History(1 epoch; last: loss ") and "val" not in repr(trained)


def test_predict_proba_gives_probabilities_and_decode_predictions_names_them():
    from tinynet import Sequential
    from tinynet.data import CLASS_NAMES, decode_predictions
    from tinynet.layers import Dense, Flatten, Softmax
    from tinynet.layers.softmax import softmax

    model = tiny_model()
    x = tiny_data(5)[0]
    p = model.predict_proba(x)
    assert p.dtype == np.float64 and p.shape == (5, 3)
    np.testing.assert_allclose(p, softmax(model.predict(x).astype(np.float64)))
    np.testing.assert_allclose(p.sum(axis=1), 1)
    ends_in_softmax = Sequential([Flatten(), Dense(3), Softmax()], input_shape=(1, 8, 8), seed=0)
    np.testing.assert_array_equal(ends_in_softmax.predict_proba(x), ends_in_softmax.predict(x))  # not twice

    probs = np.full((2, 10), 0.05)
    probs[0, 9], probs[0, 7], probs[1, 1] = 0.5, 0.15, 0.6
    assert decode_predictions(probs, top=2) == [[("Ankle boot", 0.5), ("Sneaker", 0.15)],
                                                [("Trouser", 0.6), (CLASS_NAMES[0], 0.05)]]
    assert decode_predictions(p, top=1, class_names=["a", "b", "c"])[0][0][0] in "abc"
    with pytest.raises(ValueError, match=r"shape \(N, 10\)"):
        decode_predictions(p)


def test_checkpoint_of_another_model_is_refused_with_names_and_shapes(tmp_path):
    from helpers import tiny_model as make

    from tinynet import Sequential
    from tinynet.layers import Conv2D, Dense, Flatten

    other = Sequential([Conv2D(8, 3), Flatten(), Dense(3)], input_shape=(1, 8, 8), name="other")
    save_checkpoint(tmp_path / "o.safetensors", other)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "o.safetensors", make())
    msg = str(err.value)
    assert "conv2d.W: checkpoint has shape (8, 1, 3, 3), model has (4, 1, 3, 3)" in msg
    assert "missing parameter batch_normalization.gamma" in msg


def test_fit_leaves_the_callers_loss_as_it_found_it():
    model = tiny_model()
    loss = SoftmaxCrossEntropy()
    x, y = tiny_data(32)
    fit(model, loss, Adam(model.parameters()), x, y, epochs=1, batch_size=16, verbose=False)
    assert loss.check_labels is True
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\]"):
        loss.forward(model.forward(x[:2]), np.array([0, 3]))


def test_softmax_helper_works_on_host_arrays_whatever_the_backend(backend):
    from tinynet.layers.softmax import softmax

    p = softmax(np.array([[0.0, np.log(3.0)]]))  # the report calls it on host logits
    assert isinstance(p, np.ndarray)
    np.testing.assert_allclose(p, [[0.25, 0.75]])


def _fit_logging(verbose, epochs=2):
    model = tiny_model()
    return fit(model, SoftmaxCrossEntropy(), Adam(model.parameters()), *tiny_data(32), epochs=epochs,
               batch_size=16, validation_data=tiny_data(16, 1), verbose=verbose)


@pytest.mark.parametrize("verbose", [True, "auto", 2, "epoch"])
def test_fit_logs_one_line_per_epoch_when_output_is_not_a_terminal(capsys, verbose):
    """Keras's verbose=2, and what verbose=True does in a redirected log: no progress-bar frames at all."""
    h = _fit_logging(verbose)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 2 and err == ""
    for epoch, line in enumerate(lines):
        assert line.startswith(f"Epoch {epoch + 1}/2 - ") and f"loss: {h.history['loss'][epoch]:.4f}" in line
        assert f"val_accuracy: {h.history['val_accuracy'][epoch]:.4f}" in line and line.endswith("lr: 0.001")


@pytest.mark.parametrize("verbose,terminal", [(True, True), ("auto", True), (1, False), ("bar", False)])
def test_fit_draws_a_progress_bar_on_a_terminal_or_when_asked(capsys, monkeypatch, verbose, terminal):
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    _fit_logging(verbose)
    out, err = capsys.readouterr()
    assert out == "" and "Epoch 2/2" in err and "batch" in err


@pytest.mark.parametrize("verbose", [False, 0, "quiet", None])
def test_fit_is_quiet_when_told(capsys, verbose):
    _fit_logging(verbose)
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("verbose", ["loud", 3, "", [1]])
def test_fit_refuses_an_unknown_logging_mode(verbose):
    with pytest.raises(ValueError, match="verbose must be True or 'auto'"):
        _fit_logging(verbose)


class _Optimizer:
    lr = 1.0


class _Run:
    """What ReduceLROnPlateau sees of a run."""

    def __init__(self):
        self.optimizer, self.messages = _Optimizer(), []

    def log(self, msg):
        self.messages.append(msg)


def test_reduce_lr_on_plateau_follows_keras_step_by_step():
    from tinynet.callbacks import ReduceLROnPlateau

    cb = ReduceLROnPlateau("val_loss", factor=0.5, patience=2, min_delta=0.01, min_lr=0.2, cooldown=1)
    run = _Run()
    cb.on_train_begin(run)
    lrs = []
    for epoch, value in enumerate([1.0, 1.0, 0.995, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]):
        cb.on_epoch_end(epoch, {"val_loss": value}, run)
        lrs.append(run.optimizer.lr)
    # 0.995 is not better than 1.0 by more than min_delta; after each cut one epoch of cooldown, then patience again;
    # 0.125 is below min_lr, so 0.2; and a rate at min_lr stays there
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2]
    assert run.messages[0] == "ReduceLROnPlateau: val_loss has not improved for 2 epochs; learning rate 1 -> 0.5"

    up = ReduceLROnPlateau("val_accuracy", patience=1)  # "acc" in the name: higher is better, as in Keras
    up.on_train_begin(run)
    for epoch, value in enumerate([0.5, 0.6, 0.6]):
        up.on_epoch_end(epoch, {"val_accuracy": value}, run)
    assert run.optimizer.lr == pytest.approx(0.02)


@pytest.mark.parametrize("kw", [dict(factor=1.0), dict(factor=0), dict(patience=-1), dict(min_lr=-1),
                                dict(min_delta=-0.1), dict(mode="up")])
def test_reduce_lr_on_plateau_refuses_bad_arguments(kw):
    from tinynet.callbacks import ReduceLROnPlateau

    with pytest.raises(ValueError):
        ReduceLROnPlateau(**kw)


def test_reduce_lr_on_plateau_in_fit():
    from tinynet.callbacks import ReduceLROnPlateau

    # nothing improves by 10 after the first epoch: the rate halves at the end of every epoch from the second
    _, opt, h = train(epochs=4, callbacks=[ReduceLROnPlateau("loss", factor=0.5, patience=1, min_delta=10)])
    assert h.history["lr"] == [0.01, 0.01, 0.005, 0.0025] and opt.lr == 0.00125


def _csv(path):
    import csv

    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_csv_logger_writes_a_header_and_one_row_per_epoch(tmp_path):
    from tinynet.callbacks import CSVLogger

    _, _, h = train(epochs=3, callbacks=[CSVLogger(tmp_path / "log.csv")])
    rows = _csv(tmp_path / "log.csv")
    assert rows[0] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"] and len(rows) == 4
    for epoch, row in enumerate(rows[1:]):
        assert int(row[0]) == epoch
        assert [float(v) for v in row[1:]] == [h.history[k][epoch] for k in rows[0][1:]]
    train(epochs=1, callbacks=[CSVLogger(tmp_path / "log.csv")])  # a new run starts a new file
    assert len(_csv(tmp_path / "log.csv")) == 2
    train(epochs=1, callbacks=[CSVLogger(tmp_path / "log.csv", append=True)])  # Keras's append: the header once
    assert [r[0] for r in _csv(tmp_path / "log.csv")] == ["epoch", "0", "0"]


def test_csv_logger_appends_on_resume_and_drops_epochs_the_checkpoint_lacks(tmp_path):
    from tinynet.callbacks import CSVLogger

    ck, log = tmp_path / "ck.safetensors", tmp_path / "log.csv"
    train(epochs=2, callbacks=[ModelCheckpoint(ck, "loss", save_best_only=False), CSVLogger(log)])
    first = _csv(log)
    with open(log, "a") as f:
        f.write("2,9,9,9,9,9,9\n")  # an epoch the run finished after its last checkpoint, then it was killed
    _, _, h = train(epochs=4, callbacks=[CSVLogger(log)], resume_from=ck)
    rows = _csv(log)
    assert rows[:3] == first and [r[0] for r in rows] == ["epoch", "0", "1", "2", "3"]
    assert [float(r[1]) for r in rows[1:]] == h.history["loss"]


def test_csv_logger_will_not_append_to_another_csv(tmp_path):
    from tinynet.callbacks import CSVLogger

    (tmp_path / "other.csv").write_text("name,price\napple,1\n")
    with pytest.raises(ValueError, match="is not a CSV log with the columns epoch,loss"):
        train(epochs=1, callbacks=[CSVLogger(tmp_path / "other.csv", append=True)])
    assert (tmp_path / "other.csv").read_text() == "name,price\napple,1\n"
