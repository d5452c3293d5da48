"""What training and evaluation return: the per-epoch ``History`` and an ``Evaluation``.

A leaf module (only the standard library), so the training loop, the callbacks and the checkpoint code can all
name History's keys without importing each other.
"""

from __future__ import annotations

import math


class History:
    """Per-epoch metrics: ``history.history["val_accuracy"][e]`` etc., as in Keras."""

    KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")

    def __init__(self, data=None):
        self.history = {k: list((data or {}).get(k, [])) for k in self.KEYS}

    def append(self, logs):
        for k in self.KEYS:
            self.history[k].append(logs.get(k, math.nan))

    def as_dict(self):
        return {k: list(v) for k, v in self.history.items()}

    def __len__(self):
        return len(self.history["loss"])

    def __repr__(self):
        """One line: the epochs, the last epoch's figures and, with validation, the best validation loss."""
        h, n = self.history, len(self)
        last = ", ".join(f"{k} {h[k][-1]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy")
                         if n and not math.isnan(h[k][-1]))
        text = f"History({n} epoch{'s' if n != 1 else ''}" + (f"; last: {last}" if last else "")
        val = [v if not math.isnan(v) else math.inf for v in h["val_loss"]]
        if val and min(val) < math.inf:
            best = val.index(min(val))
            text += f"; best val_loss {val[best]:.4f} at epoch {best + 1}"
        return text + ")"


class Evaluation:
    """What :func:`evaluate` returns: ``loss`` and ``accuracy``, and per sample the ``logits`` and the
    ``predictions`` (class indices). Its repr is one line, not 10,000 logits; ``r["accuracy"]`` still works as it
    did when evaluate returned a dict."""

    def __init__(self, loss, accuracy, logits, predictions):
        self.loss, self.accuracy, self.logits, self.predictions = loss, accuracy, logits, predictions

    def __getitem__(self, key):
        if key not in ("loss", "accuracy", "logits", "predictions"):
            raise KeyError(key)
        return getattr(self, key)

    def __repr__(self):
        return f"Evaluation(loss={self.loss:.4f}, accuracy={self.accuracy:.4f}, samples={len(self.logits):,})"
