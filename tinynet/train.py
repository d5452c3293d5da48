"""Training and evaluation: ``train_step`` (the lesson), ``fit`` (Keras-like) and ``evaluate``.

``fit`` is built in the shape of CS231n's Solver: ``train_step`` does one step of
gradient descent, ``train_epoch`` runs the steps of an epoch, ``evaluate`` checks
accuracy, and ``fit`` puts them together with the callbacks.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time

import numpy as np
from tqdm.auto import tqdm

from . import checks
from .arrays import to_numpy
from .backend import get_backend, using_backend
from .callbacks import TerminateOnNaN
from .checkpoint import load_checkpoint
from .checks import integer, positive_int
from .exceptions import InvalidValue
from .history import Evaluation, History  # noqa: F401  (tinynet.train.History, as before)
from .inference import EVAL_BUFFER_BYTES, batched_outputs, predict_logits  # noqa: F401  (tinynet.train.predict_logits, as before)
from .losses import check_model_fits


def train_step(model, loss, optimizer, xb, yb, totals=None):
    """One step of gradient descent on a batch; returns the batch's mean loss (a 0-d array, on the device).

    ``totals`` (float64, shape (2,)) collects the summed loss and the number of correct
    predictions without a device-to-host copy (see SoftmaxCrossEntropy).
    """
    with using_backend(model.backend):  # the loss and the optimizer run where the model lives
        out = model.forward(xb, training=True)  # 1. predictions
        value = loss.forward(out, yb, totals)  # 2. how wrong they are
        model.backward(loss.backward(), input_grad=False)  # 3. every parameter's gradient
        optimizer.step()  # 4. a small step against it
    return value


class Run:
    """What callbacks see of a training run."""

    def __init__(self, model, optimizer, history, rng, verbose, sync_every, augment=None):
        self.model, self.optimizer, self.history, self.rng, self.augment = model, optimizer, history, rng, augment
        self.verbose, self.sync_every = verbose, sync_every
        self.stop_training = False
        self.epoch = 0

    def log(self, msg):
        if self.verbose:
            from tqdm.auto import tqdm

            tqdm.write(msg)


LOG_MODES = {"bar": "bar", 1: "bar", "epoch": "epoch", 2: "epoch", "quiet": None, 0: None, None: None}  # 0: False too


def _log_mode(verbose):
    """fit's ``verbose`` as "bar", "epoch" or None (quiet).

    True or "auto" (the default) draws a progress bar on a terminal and prints one line per epoch otherwise, so a
    log redirected to a file holds no bar frames; 1 / "bar", 2 / "epoch" and 0 / False / "quiet" as in Keras.
    """
    if verbose is True or verbose == "auto":
        isatty = getattr(sys.stderr, "isatty", None)  # the bar draws on stderr (tqdm's default); it may be None
        return "bar" if isatty is not None and isatty() else "epoch"
    try:
        return LOG_MODES[verbose]
    except (KeyError, TypeError):
        raise InvalidValue(f"verbose must be True or 'auto', 1 or 'bar', 2 or 'epoch', 0, False or 'quiet', "
                         f"got {verbose!r}") from None


def _epoch_line(epoch, epochs, logs):
    """Keras's verbose=2 line: 'Epoch 3/10 - 12.3s - loss: 0.3012 - accuracy: 0.8912 - ... - lr: 0.001'."""
    figures = [f"{k}: {logs[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs]
    return " - ".join([f"Epoch {epoch + 1}/{epochs}", f"{logs['seconds']:.1f}s", *figures, f"lr: {logs['lr']:.3g}"])


def _check_data(model, x, what="x"):
    """x is a batch of the model's samples, on the host or the model's device, finite (tinynet/checks.py)."""
    checks.float_batch(x, what, get_backend("numpy" if isinstance(x, np.ndarray) else model.backend))
    checks.fits(x, "model", model.input_shape, model.dtype)
    checks.finite_values(x, what)


def evaluate(model, loss, x, y, batch_size=1000):
    """Loss and accuracy over (x, y) in inference mode, on the host: an :class:`Evaluation` (with the logits and
    predictions too)."""
    _check_data(model, x)
    check_model_fits(model, loss)
    checks.warn_if_unscaled(x, stacklevel=2)
    return _evaluate(model, loss, x, y, batch_size)


def _evaluate(model, loss, x, y, batch_size):
    """evaluate without the checks of x, which fit has made once for all epochs."""
    k = model.output_shape[0]
    y = checks.class_labels(y, k, len(x)).astype(np.int64)
    logits = batched_outputs(model, x, batch_size)
    with using_backend("numpy"):
        value = float(loss.forward(logits.astype(np.float64), y))
    pred = logits.argmax(axis=1)
    return Evaluation(value, float((pred == y).mean()), logits, pred)


@contextlib.contextmanager
def _labels_checked_up_front(loss):
    """fit validates all labels once, on the host; the loss may skip its per-step check
    (a device-to-host sync on the GPU) until fit returns, then gets its setting back."""
    checked, loss.check_labels = loss.check_labels, False
    try:
        yield
    finally:
        loss.check_labels = checked


def _split_validation(model, x, y, validation_data, validation_split):
    num_classes = model.output_shape[0]
    _check_data(model, x)
    y = checks.class_labels(y, num_classes, len(x))
    if validation_data is None and validation_split:
        if not 0 < validation_split < 1:
            raise InvalidValue(f"validation_split must be in (0, 1), got {validation_split}")
        cut = len(x) - int(len(x) * validation_split)
        x, y, validation_data = x[:cut], y[:cut], (x[cut:], y[cut:])
    if validation_data is not None:
        _check_data(model, validation_data[0], "validation x")
        checks.class_labels(validation_data[1], num_classes, len(validation_data[0]), "validation labels")
    return x, y, validation_data


def _resume(checkpoint, model, optimizer, rng, augment):
    """(history, first epoch): from the checkpoint, which also restores the model, optimizer and RNG states."""
    if checkpoint is None:
        return History(), 0
    meta = load_checkpoint(checkpoint, model, optimizer, rng, augment)
    start = meta["parsed"].get("epoch", -1) + 1
    # no saved history (a checkpoint written by hand): NaN for the epochs before, so history[e] stays epoch e
    return History(meta["parsed"].get("history") or {k: [math.nan] * start for k in History.KEYS}), start


def _stepper(model, loss, optimizer, backend, batch_size, n, cuda_graph, totals, augment=None):
    """The function that runs one step on rows ``idx``: plainly, or replaying a captured CUDA graph."""

    def plain(xd, yd, idx):
        xb = xd[idx] if augment is None else augment(xd[idx])
        return train_step(model, loss, optimizer, xb, yd[idx], totals)

    on_device = optimizer._scalars is not None  # a replay cannot run host code: t and lr must live on the device
    if cuda_graph is None:  # auto: on a GPU, with an optimizer that keeps its per-step numbers on the device
        cuda_graph = backend.name == "cupy" and on_device and n // batch_size >= 3
    if not cuda_graph:
        return plain, contextlib.nullcontext()
    if backend.name != "cupy":
        raise InvalidValue(f"cuda_graph=True needs the 'cupy' backend, the model is on {backend.name!r}")
    if not on_device:
        raise InvalidValue(f"cuda_graph=True needs an optimizer that keeps its step count and learning rate on the "
                         f"device (Adam); {type(optimizer).__name__} counts steps on the host, which a replay skips")
    from .cuda_graph import CapturedStep

    def buffers():  # what the graph updates in place: it is replayed only while these are the arrays it captured
        return [*model.persistent_arrays(), *optimizer.persistent_arrays()]

    step = CapturedStep(lambda xb, yb: train_step(model, loss, optimizer, xb, yb, totals), backend, batch_size,
                        model.input_shape, model.dtype, augment, buffers)
    return step, step


def fit(
    model, loss, optimizer, x, y, epochs=1, batch_size=32, validation_data=None, validation_split=0.0,
    shuffle=True, seed=0, callbacks=(), verbose="auto", resume_from=None, terminate_on_nan=True,
    eval_batch_size=1000, sync_every=None, cuda_graph=None, augment=None,
):
    """Train ``model`` on ``x`` (N, C, H, W) float and ``y`` (N,) int labels, on the host or the model's device.

    The whole data set is moved onto the model's backend once (on a GPU it
    stays resident); batches are gathered there. ``resume_from`` a checkpoint
    continues a run exactly where it was saved (weights, optimizer state,
    epoch, shuffling and dropout RNG states, history). On a GPU the step runs
    as a captured CUDA graph (``cuda_graph=None`` decides: with Adam and at
    least 3 full batches; see tinynet/cuda_graph.py), and the loss and accuracy
    are read back every ``sync_every`` steps (default 20; 1 on the CPU).
    ``augment`` (e.g. ``tinynet.data.Augment(shift=2, flip=True, seed=0)``) transforms every training batch;
    its state is checkpointed with the rest. ``verbose``: "auto" (or True) draws a progress bar on a terminal and
    prints one line per epoch otherwise; "bar" (1), "epoch" (2), "quiet" (0, False). Returns a :class:`History`.
    """
    mode = _log_mode(verbose)
    batch_size = positive_int(batch_size, "batch_size")
    epochs = integer(epochs, "epochs", 0)
    x, y, validation_data = _split_validation(model, x, y, validation_data, validation_split)
    check_model_fits(model, loss)
    if not checks.warn_if_unscaled(x, stacklevel=2) and validation_data is not None:  # one warning at most
        checks.warn_if_unscaled(validation_data[0], "validation x", stacklevel=2)

    backend = get_backend(model.backend)
    sync_every = positive_int(sync_every or (1 if backend.name != "cupy" else 20), "sync_every")
    rng = np.random.default_rng(seed)
    history, start = _resume(resume_from, model, optimizer, rng, augment)
    callbacks = list(callbacks)
    if terminate_on_nan and not any(isinstance(c, TerminateOnNaN) for c in callbacks):
        callbacks.append(TerminateOnNaN())
    run = Run(model, optimizer, history, rng, mode is not None, sync_every, augment)
    xd, yd = backend.asarray(x), backend.asarray(np.asarray(y, dtype=np.int64))
    totals = backend.xp.zeros(2, dtype=np.float64)  # summed loss, correct predictions: stay on the device
    step, stream = _stepper(model, loss, optimizer, backend, batch_size, len(x), cuda_graph, totals, augment)
    validate = None if validation_data is None else lambda: _evaluate(model, loss, *validation_data, eval_batch_size)

    with using_backend(backend.name), _labels_checked_up_front(loss), stream:
        for c in callbacks:
            c.on_train_begin(run)
        for epoch in range(start, epochs):
            logs = _epoch(run, epoch, epochs, step, (xd, yd, totals), batch_size, shuffle, callbacks, mode, validate)
            history.append(logs)
            for c in callbacks:
                c.on_epoch_end(epoch, logs, run)
            if run.stop_training:
                run.log(f"stopped early after epoch {epoch + 1}")
                break
        for c in callbacks:
            c.on_train_end(run)
    return history


def _epoch(run, epoch, epochs, step, data, batch_size, shuffle, callbacks, mode, validate):
    """Epoch ``epoch`` of fit: the callbacks' start, the steps (with a progress bar or not), the validation
    figures, the epoch's line; returns its logs."""
    run.epoch = epoch
    for c in callbacks:
        c.on_epoch_begin(epoch, run)
    if hasattr(step, "new_epoch"):
        step.new_epoch()
    t0 = time.perf_counter()
    bar = tqdm(total=math.ceil(len(data[0]) / batch_size), desc=f"Epoch {epoch + 1}/{epochs}", unit="batch",
               disable=mode != "bar", leave=True)
    logs = train_epoch(run, step, *data, batch_size, shuffle, callbacks, bar)
    if validate is not None:
        v = validate()
        logs.update(val_loss=v["loss"], val_accuracy=v["accuracy"])
    logs["seconds"] = time.perf_counter() - t0
    bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items() if k != "seconds"}, refresh=True)
    bar.close()
    if mode == "epoch":
        print(_epoch_line(epoch, epochs, logs), flush=True)
    return logs


def train_epoch(run, step, xd, yd, totals, batch_size, shuffle, callbacks, bar):
    """One pass over the data in a fresh shuffled order; returns the epoch's loss, accuracy and lr."""
    n = len(xd)
    steps = math.ceil(n / batch_size)
    backend = get_backend(run.model.backend)
    order = backend.asarray(run.rng.permutation(n) if shuffle else np.arange(n))
    totals.fill(0)
    for i in range(steps):
        value = step(xd, yd, order[i * batch_size : (i + 1) * batch_size])
        bar.update(1)
        if (i + 1) % run.sync_every == 0 or i == steps - 1:  # the only reads back from the device
            logs = {"loss": float(value)}
            for c in callbacks:
                c.on_batch_end(i, logs, run)
            if hasattr(step, "callbacks_ran"):  # a captured step: one may have replaced an array the graph updates
                step.callbacks_ran()
            loss_sum, correct = to_numpy(totals)
            seen = min((i + 1) * batch_size, n)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}", refresh=False)
    loss_sum, correct = to_numpy(totals)
    return {"loss": float(loss_sum) / n, "accuracy": float(correct) / n, "lr": run.optimizer.lr}
