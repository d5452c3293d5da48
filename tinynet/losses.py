"""Softmax cross-entropy from logits, fused because the pair has a tiny gradient."""

from __future__ import annotations

from .backend import check_array, get_backend


class SoftmaxCrossEntropy:
    """loss = mean over the batch of  -log softmax(logits)[label].

    ``forward(logits (N, K), labels)`` where labels are integer class indices
    (N,) or one-hot / soft targets (N, K). Returns a 0-d array in the logits'
    dtype (on the GPU it stays there: ``float(loss)`` is the only sync).
    ``backward() -> dlogits = (softmax(logits) - onehot(labels)) / N``.

    Stable: log-sum-exp with the row max subtracted, so logits of 1000 are fine
    in float32. Set ``check_labels=False`` when the labels were validated once
    up front (``fit`` does), which saves a device-to-host sync per step.
    """

    def __init__(self, check_labels: bool = True):
        self.check_labels = check_labels

    def _check(self, logits, labels):
        check_array(logits, "logits")
        check_array(labels, "labels")
        if logits.ndim != 2 or logits.shape[0] == 0:
            raise ValueError(f"logits must have shape (N, K) with N > 0, got {tuple(logits.shape)}")
        if logits.dtype.kind != "f":
            raise TypeError(f"logits must be float32 or float64, got {logits.dtype}")
        n, k = logits.shape
        if labels.ndim == 1:
            if labels.dtype.kind not in "iu":
                raise ValueError(
                    f"labels of shape (N,) must be integer class indices, got dtype {labels.dtype}"
                    " (pass one-hot targets as (N, K) floats)"
                )
            if labels.shape[0] != n:
                raise ValueError(f"labels have {labels.shape[0]} entries but logits have {n} rows")
            if self.check_labels and labels.size:
                lo, hi = int(labels.min()), int(labels.max())
                if lo < 0 or hi >= k:
                    raise ValueError(f"labels must be in [0, {k - 1}], got values from {lo} to {hi}")
        elif labels.ndim == 2:
            if tuple(labels.shape) != (n, k):
                raise ValueError(f"one-hot labels must have shape {(n, k)}, got {tuple(labels.shape)}")
            if labels.dtype.kind != "f":
                raise ValueError(f"one-hot labels must be float, got {labels.dtype}")
        else:
            raise ValueError(f"labels must be (N,) class indices or (N, K) one-hot, got shape {tuple(labels.shape)}")

    def forward(self, logits, labels):
        xp = get_backend().xp
        self._check(logits, labels)
        n = logits.shape[0]
        z = logits - logits.max(axis=1, keepdims=True)
        e = xp.exp(z)
        total = e.sum(axis=1, keepdims=True)
        logp = z - xp.log(total)
        self.probs = e / total
        self.labels = labels
        if labels.ndim == 1:
            picked = logp[xp.arange(n), labels]
            return -picked.mean()
        return -(labels.astype(logits.dtype) * logp).sum() / logits.dtype.type(n)

    def backward(self):
        xp = get_backend().xp
        n = self.probs.shape[0]
        d = self.probs.copy()
        if self.labels.ndim == 1:
            d[xp.arange(n), self.labels] -= 1
        else:
            d -= self.labels.astype(d.dtype)
        d /= d.dtype.type(n)
        return d

    __call__ = forward
