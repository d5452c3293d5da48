"""Softmax cross-entropy from logits, fused because the pair has a tiny gradient."""

from __future__ import annotations

import numpy as np

from . import checks, kernels
from .backend import check_array, get_backend


class SoftmaxCrossEntropy:
    """loss = mean over the batch of  -log softmax(logits)[label].

    ``forward(logits (N, K), labels)`` where labels are integer class indices
    (N,) or one-hot / soft targets (N, K). Returns a 0-d array in the logits'
    dtype (on the GPU it stays there: ``float(loss)`` is the only sync).
    ``backward() -> dlogits = (softmax(logits) - onehot(labels)) / N``.

    Stable: log-sum-exp with the row max subtracted, so logits of 1000 are fine
    in float32. With class indices, loss and gradient come from one kernel
    (``tinynet.kernels.softmax_cross_entropy``); ``totals``, a float64 array of
    2, collects the summed loss and the number of correct predictions on the
    device, as ``fit`` does for its epoch figures. Set ``check_labels=False``
    when the labels were validated once up front (``fit`` does), which saves a
    device-to-host sync per step.

    ``label_smoothing`` = e trains towards (1 - e) * onehot + e / K instead of the one-hot target, as Keras's
    ``CategoricalCrossentropy(label_smoothing=e)``: the network is no longer pushed to ever larger logits for
    images it already classifies. The gradient becomes softmax - smoothed target; the loss is measured against
    the smoothed target too (so it does not fall to 0), and the accuracy against the label.
    """

    def __init__(self, check_labels: bool = True, label_smoothing: float = 0.0):
        self.check_labels = check_labels
        self.label_smoothing = checks.real(label_smoothing, "label_smoothing", 0, 1, high_open=True)

    def __repr__(self):
        return f"SoftmaxCrossEntropy(label_smoothing={self.label_smoothing})" if self.label_smoothing else \
            "SoftmaxCrossEntropy()"

    def _smoothed(self, labels, k, dtype):
        """(N, K) targets (1 - e) * onehot + e / K: from class indices by broadcasting (no scatter, no sync)."""
        e = self.label_smoothing
        if labels.ndim == 1:
            xp = get_backend().xp
            labels = labels[:, None] == xp.arange(k)
        return labels.astype(dtype) * dtype.type(1 - e) + dtype.type(e / k)

    def _check(self, logits, labels):
        check_array(logits, "logits")
        check_array(labels, "labels")
        if logits.ndim != 2 or logits.shape[0] == 0:
            raise ValueError(f"logits must have shape (N, K) with N > 0, got {tuple(logits.shape)}")
        if logits.dtype.kind != "f":
            raise TypeError(f"logits must be float32 or float64, got {logits.dtype}")
        n, k = logits.shape
        if labels.ndim == 1:
            checks.class_labels(labels, k, n, values=self.check_labels)  # values: a device-to-host copy
        elif labels.ndim == 2:
            if tuple(labels.shape) != (n, k):
                raise ValueError(f"one-hot labels must have shape {(n, k)}, got {tuple(labels.shape)}")
            if labels.dtype.kind != "f":
                raise ValueError(f"one-hot labels must be float, got {labels.dtype}")
        else:
            raise ValueError(f"labels must be (N,) class indices or (N, K) one-hot, got shape {tuple(labels.shape)}")

    def forward(self, logits, labels, totals=None):
        self._check(logits, labels)
        if self.label_smoothing:
            labels = self._smoothed(labels, logits.shape[1], logits.dtype)
        if labels.ndim == 1:
            if labels.dtype != np.int64:
                labels = labels.astype(np.int64)
            rows, self.dlogits = kernels.softmax_cross_entropy(logits, labels, totals)
            return rows.mean()
        xp = get_backend().xp
        z = logits - logits.max(axis=1, keepdims=True)
        e = xp.exp(z)
        total = e.sum(axis=1, keepdims=True)
        n = logits.dtype.type(logits.shape[0])
        soft = labels.astype(logits.dtype)
        self.dlogits = (e / total - soft) / n
        rows = -(soft * (z - xp.log(total))).sum(axis=1)
        if totals is not None:
            totals[0] += rows.sum(dtype=np.float64)
            totals[1] += (logits.argmax(axis=1) == labels.argmax(axis=1)).sum()
        return rows.sum() / n

    def backward(self):
        return self.dlogits

    __call__ = forward
