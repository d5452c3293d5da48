"""Keras-style callbacks for :func:`tinynet.train.fit`.

A callback gets ``on_train_begin(run)``, ``on_epoch_begin(epoch, run)``,
``on_batch_end(step, logs, run)``, ``on_epoch_end(epoch, logs, run)`` and
``on_train_end(run)``. ``run`` is the :class:`~tinynet.train.Run` (model,
optimizer, history, ``stop_training`` flag).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from .arrays import to_numpy
from .atomic_files import writing
from .checks import integer, real
from .exceptions import InvalidValue, TinynetError


class DivergenceError(TinynetError, FloatingPointError):
    """The loss became NaN, infinite or absurdly large; the message names the epoch and step."""


class Callback:
    def on_train_begin(self, run): ...
    def on_epoch_begin(self, epoch, run): ...
    def on_batch_end(self, step, logs, run): ...
    def on_epoch_end(self, epoch, logs, run): ...
    def on_train_end(self, run): ...


def _better(mode, monitor):
    if mode == "auto":
        mode = "max" if "acc" in monitor else "min"
    if mode not in ("min", "max"):
        raise InvalidValue(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
    return mode


def _improves(value, best, mode, min_delta=0.0):
    """Whether ``value`` beats ``best`` by more than ``min_delta`` in the direction ``mode`` ('min' or 'max')."""
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _monitored(logs, monitor):
    if monitor not in logs:
        raise InvalidValue(f"cannot monitor {monitor!r}: the epoch logs hold {sorted(logs)}")
    return logs[monitor]


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights=True`` the best epoch's weights are put back at
    the end of training *whether or not* patience ran out (Keras only restores
    them when it stops early, a common surprise).
    """

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto", restore_best_weights=False):
        self.monitor, self.patience, self.min_delta = monitor, patience, abs(min_delta)
        self.mode = _better(mode, monitor)
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, run):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch, self.wait, self.best_weights, self.stopped_epoch = None, 0, None, None

    def _improved(self, value):
        return _improves(value, self.best, self.mode, self.min_delta)

    def on_epoch_end(self, epoch, logs, run):
        value = _monitored(logs, self.monitor)
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = {k: to_numpy(p.data).copy() for k, p in run.model.named_arrays().items()}
        else:
            self.wait += 1
            if self.wait >= self.patience:  # Keras: patience epochs without improvement
                self.stopped_epoch = epoch
                run.stop_training = True

    def on_train_end(self, run):
        if self.restore_best_weights and self.best_weights is not None:
            from .backend import get_backend

            b = get_backend(run.model.backend)
            for k, p in run.model.named_arrays().items():
                p.data = b.asarray(self.best_weights[k])
            run.log(f"EarlyStopping: restored the weights of epoch {self.best_epoch + 1} ({self.monitor}={self.best:.4f})")


class ModelCheckpoint(Callback):
    """Save a checkpoint after an epoch; with ``save_best_only`` only when ``monitor`` improved.

    A non-finite monitored value never counts as an improvement, so a diverged
    run can never overwrite the last good checkpoint.
    """

    def __init__(self, path, monitor="val_loss", save_best_only=True, mode="auto", extra=None):
        self.path, self.monitor, self.save_best_only = path, monitor, save_best_only
        self.mode = _better(mode, monitor)
        self.extra = dict(extra or {})  # more metadata for every file it writes (strings), e.g. the CLI's recipe

    def on_train_begin(self, run):
        if not hasattr(self, "best"):
            self.best = math.inf if self.mode == "min" else -math.inf
            # a resumed run (fit's resume_from) brings its earlier epochs: the best of them is the one to beat,
            # or the first epoch after the resume would overwrite a better checkpoint
            for value in run.history.as_dict().get(self.monitor, []):
                if value is not None and np.isfinite(value) and _improves(value, self.best, self.mode):
                    self.best = value
        self.saved_epochs = []

    def on_epoch_end(self, epoch, logs, run):
        from .checkpoint import save_checkpoint

        value = _monitored(logs, self.monitor)
        if not np.isfinite(value):
            return
        improved = _improves(value, self.best, self.mode)
        if self.save_best_only and not improved:
            return
        self.best = value if improved else self.best
        save_checkpoint(
            self.path, run.model, run.optimizer, epoch=epoch, rng=run.rng, history=run.history.as_dict(),
            augment=run.augment,
            extra={**self.extra, "monitor": self.monitor, "best": value},
        )
        self.saved_epochs.append(epoch)


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate at the start of each epoch to ``schedule(epoch, lr)``."""

    def __init__(self, schedule):
        self.schedule = schedule

    def on_epoch_begin(self, epoch, run):
        lr = float(self.schedule(epoch, run.optimizer.lr))
        if not (math.isfinite(lr) and lr > 0):
            raise InvalidValue(f"schedule gave learning rate {lr!r} for epoch {epoch}")
        run.optimizer.lr = lr


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs, never going below ``min_lr``; then wait ``cooldown`` epochs before counting again.

    Keras's semantics, step for step (keras.callbacks.ReduceLROnPlateau). The new rate applies from the next
    epoch; put this callback before ModelCheckpoint so a checkpoint holds the rate a resumed run should use.
    Its count of epochs without improvement is not checkpointed: a resumed run starts counting afresh.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4, min_lr=0.0, cooldown=0,
                 mode="auto"):
        self.monitor = monitor
        self.factor = real(factor, "ReduceLROnPlateau factor", 0, 1, low_open=True, high_open=True)
        self.patience = integer(patience, "ReduceLROnPlateau patience", 0)
        self.min_delta = real(min_delta, "ReduceLROnPlateau min_delta", 0)
        self.min_lr = real(min_lr, "ReduceLROnPlateau min_lr", 0)
        self.cooldown = integer(cooldown, "ReduceLROnPlateau cooldown", 0)
        self.mode = _better(mode, monitor)

    def on_train_begin(self, run):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait, self.cooldown_counter = 0, 0

    def _improved(self, value):
        return _improves(value, self.best, self.mode, self.min_delta)

    def on_epoch_end(self, epoch, logs, run):
        value = _monitored(logs, self.monitor)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(value):
            self.best, self.wait = value, 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = run.optimizer.lr
                if old > np.float32(self.min_lr):  # as Keras: a rate already at min_lr (in float32) stays
                    run.optimizer.lr = max(old * self.factor, self.min_lr)
                    run.log(f"ReduceLROnPlateau: {self.monitor} has not improved for {self.wait} epochs; learning "
                            f"rate {old:.3g} -> {run.optimizer.lr:.3g}")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """Write one row per epoch to the CSV file ``path``: the epoch (from 0, as in Keras) and History's metrics.

    A new run writes the header and its rows; a resumed run (``fit(resume_from=...)``) appends to the file,
    dropping first any rows of epochs the checkpoint does not hold (a run that went on past its last checkpoint),
    so the file always matches the history. ``append=True`` always appends, ``False`` always starts afresh.
    Each row is written at the end of its epoch, so a run that is stopped leaves every finished epoch in the file.
    """

    def __init__(self, path, append=None):
        self.path, self.append = Path(path), append

    def on_train_begin(self, run):
        from .history import History

        self.columns = ["epoch", *History.KEYS]
        done = len(run.history)  # epochs before this run: > 0 when fit resumes from a checkpoint
        rows = []
        if (self.append or (self.append is None and done)) and self.path.is_file():
            with open(self.path, newline="") as f:
                old = list(csv.reader(f))
            if old and old[0] != self.columns:
                raise InvalidValue(f"{self.path} is not a CSV log with the columns {','.join(self.columns)}: "
                                 "give CSVLogger another file, or append=False to replace it")
            rows = [r for r in old[1:] if r and (not done or (r[0].isdigit() and int(r[0]) < done))]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with writing(self.path), open(self.path, "w", newline="") as f:
            csv.writer(f).writerows([self.columns, *rows])

    def on_epoch_end(self, epoch, logs, run):
        h = run.history.history  # logs with NaN for what this run does not have (no validation, say)
        with writing(self.path), open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([epoch, *(repr(float(h[k][-1])) for k in self.columns[1:])])


def exponential_decay(initial_lr, decay_steps):
    """The course's schedule: lr(epoch) = initial_lr * 0.1 ** (epoch / decay_steps)."""

    def schedule(epoch, lr=None):
        return initial_lr * 0.1 ** (epoch / decay_steps)

    return schedule


def cosine_decay(initial_lr, epochs, final_fraction=0.0):
    """lr(epoch) = final + (initial - final) * (1 + cos(pi * epoch / epochs)) / 2: from initial_lr at epoch 0
    down to initial_lr * final_fraction, slowly at first and at the end (Loshchilov & Hutter's SGDR, one cycle)."""

    def schedule(epoch, lr=None):
        final = initial_lr * final_fraction
        return final + (initial_lr - final) * (1 + math.cos(math.pi * epoch / epochs)) / 2

    return schedule


class TerminateOnNaN(Callback):
    """Stop with :class:`DivergenceError` as soon as the loss is NaN, infinite or above ``max_loss``.

    Why a ceiling too: with a learning rate of 1e6 the float32 loss jumps to
    ~1e12 and can even fall back to 0 on absurd logits without ever being NaN.
    Cross-entropy starts near ln(classes) ≈ 2.3, so a loss of 1e4 means the
    logits are thousands apart: the run has diverged.
    ``fit`` adds one unless told not to. It raises (rather than quietly
    stopping) so no checkpoint of the broken weights is written afterwards.
    """

    def __init__(self, max_loss=1e4):
        self.max_loss = max_loss

    def on_epoch_end(self, epoch, logs, run):
        """The epoch's figures too: a NaN validation loss would otherwise keep every checkpoint from being written."""
        for key in ("loss", "val_loss"):
            value = logs.get(key)
            if value is not None and not (math.isfinite(value) and value <= self.max_loss):
                what = "validation loss" if key == "val_loss" else "training loss"
                raise DivergenceError(f"training diverged: the {what} of epoch {epoch + 1} is {value:.4g}; "
                                      "check the inputs and lower the learning rate")

    def on_batch_end(self, step, logs, run):
        loss = logs.get("loss")
        if loss is None or (math.isfinite(loss) and loss <= self.max_loss):
            return
        earlier = f" (or up to {run.sync_every - 1} steps before)" if run.sync_every > 1 else ""
        what = f"loss became {loss}" if not math.isfinite(loss) else f"loss {loss:.3g} exceeds {self.max_loss:g}"
        raise DivergenceError(
            f"training diverged: {what} at epoch {run.epoch + 1}, step {step + 1}{earlier}; "
            "check the inputs for NaN and lower the learning rate"
        )
