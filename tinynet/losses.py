"""Softmax cross-entropy: from logits, fused because the pair has a tiny gradient; or from probabilities."""

from __future__ import annotations

import numpy as np

from . import checks, kernels
from .backend import check_array, get_backend
from .exceptions import InvalidType, InvalidValue


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

    ``from_logits=False`` takes probabilities instead (a model ending in a Softmax layer, as Keras courses build
    them for ``categorical_crossentropy``): loss = -sum(target * log(clip(p, 1e-7, 1 - 1e-7))), Keras's clip, so
    a probability of 0 gives a large finite loss; the gradient is -target / p where p is inside the clip, 0
    outside (the clip's own derivative), and flows back through the model's Softmax. ``fit`` and ``evaluate``
    refuse a model whose last layer does not match this setting (:func:`check_model_fits`).
    """

    def __init__(self, check_labels: bool = True, label_smoothing: float = 0.0, from_logits: bool = True):
        self.check_labels = check_labels
        self.label_smoothing = checks.real(label_smoothing, "label_smoothing", 0, 1, high_open=True)
        if not isinstance(from_logits, bool):
            raise InvalidType(f"from_logits must be True or False, got {from_logits!r}")
        self.from_logits = from_logits

    @classmethod
    def for_model(cls, model, **kwargs):
        """The loss that fits ``model``'s output: from probabilities when it ends in Softmax, else from logits."""
        from .layers import Softmax

        return cls(from_logits=not isinstance(model.layers[-1], Softmax), **kwargs)

    def __repr__(self):
        args = [f"label_smoothing={self.label_smoothing}"] if self.label_smoothing else []
        args += [] if self.from_logits else ["from_logits=False"]
        return f"SoftmaxCrossEntropy({', '.join(args)})"

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
            raise InvalidValue(f"logits must have shape (N, K) with N > 0, got {tuple(logits.shape)}")
        if logits.dtype.kind != "f":
            raise InvalidType(f"logits must be float32 or float64, got {logits.dtype}")
        n, k = logits.shape
        if labels.ndim == 1:
            checks.class_labels(labels, k, n, values=self.check_labels)  # values: a device-to-host copy
        elif labels.ndim == 2:
            if tuple(labels.shape) != (n, k):
                raise InvalidValue(f"one-hot labels must have shape {(n, k)}, got {tuple(labels.shape)}")
            if labels.dtype.kind != "f":
                raise InvalidValue(f"one-hot labels must be float, got {labels.dtype}")
        else:
            raise InvalidValue(f"labels must be (N,) class indices or (N, K) one-hot, got shape {tuple(labels.shape)}")

    def _target(self, labels, k, dtype):
        """(N, K) targets in ``dtype``: one-hot rows from class indices (smoothed when asked), or the given rows."""
        if labels.ndim == 1 or self.label_smoothing:
            return self._smoothed(labels, k, dtype)
        return labels.astype(dtype, copy=False)  # float64 rows (np.eye's) for a float32 model: its dtype, not theirs

    def forward(self, logits, labels, totals=None):
        """The batch's mean loss (a 0-d array); ``logits`` (N, K) are probabilities when from_logits is False."""
        self._check(logits, labels)
        if self.from_logits and labels.ndim == 1 and not self.label_smoothing:  # the fused kernel
            if labels.dtype != np.int64:
                labels = labels.astype(np.int64)
            rows, self.dlogits = kernels.softmax_cross_entropy(logits, labels, totals)
            return rows.mean()
        n = logits.dtype.type(logits.shape[0])
        target = self._target(labels, logits.shape[1], logits.dtype)
        rows = (self._from_logits if self.from_logits else self._from_probabilities)(logits, target, n)
        if totals is not None:
            truth = labels if labels.ndim == 1 else labels.argmax(axis=1)
            totals[0] += rows.sum(dtype=np.float64)
            totals[1] += (logits.argmax(axis=1) == truth).sum()
        return rows.sum() / n

    def _from_logits(self, logits, target, n):
        """Each row's loss against soft targets; dlogits = (softmax - target) / n."""
        xp = get_backend().xp
        z = logits - logits.max(axis=1, keepdims=True)
        e = xp.exp(z)
        total = e.sum(axis=1, keepdims=True)
        self.dlogits = (e / total - target) / n
        return -(target * (z - xp.log(total))).sum(axis=1)

    def _from_probabilities(self, p, target, n):
        """Each row's loss against probabilities clipped to Keras's [eps, 1 - eps]; dlogits = d loss / d p."""
        xp = get_backend().xp
        eps = p.dtype.type(PROBABILITY_CLIP)
        clipped = xp.clip(p, eps, 1 - eps)
        inside = (p >= eps) & (p <= 1 - eps)
        self.dlogits = xp.where(inside, -target / clipped, p.dtype.type(0)) / n
        return -(target * xp.log(clipped)).sum(axis=1)

    def backward(self):
        """d loss / d (the loss's input): the logits' gradient, or the probabilities' with from_logits=False."""
        return self.dlogits

    __call__ = forward


PROBABILITY_CLIP = 1e-7  # Keras's epsilon: probabilities are clipped to [eps, 1 - eps] before the log


def check_model_fits(model, loss):
    """Refuse a model whose output does not fit ``loss``: samples that are not one vector of K class scores, or a
    last layer that disagrees with ``from_logits`` (softmax of softmax trains and reports silently wrong numbers)."""
    from .layers import Softmax

    if not isinstance(loss, SoftmaxCrossEntropy):  # a loss of the user's own: its business
        return
    if len(model.output_shape) != 1:
        raise InvalidValue(f"{type(loss).__name__} takes (N, K) class scores, but model {model.name!r} outputs samples "
                         f"of shape {tuple(model.output_shape)} (N, {', '.join(map(str, model.output_shape))}); end "
                         "it with Flatten and Dense(K)")
    ends_in_softmax = isinstance(model.layers[-1], Softmax)
    if ends_in_softmax and loss.from_logits:
        raise InvalidValue(f"model {model.name!r} ends in Softmax, so it outputs probabilities, but {loss!r} takes "
                         "logits (it applies the softmax itself): drop the final Softmax layer (tinynet's losses take "
                         "logits; predict_proba gives probabilities) or use SoftmaxCrossEntropy(from_logits=False)")
    if not ends_in_softmax and not loss.from_logits:
        raise InvalidValue(f"{loss!r} takes probabilities, but model {model.name!r} ends in "
                         f"{type(model.layers[-1]).__name__}, not Softmax, so it outputs logits: use "
                         "SoftmaxCrossEntropy() (from logits) or end the model with Softmax()")
