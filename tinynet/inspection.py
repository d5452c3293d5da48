"""Look inside a model on one batch: what each layer outputs, and what gradient flows back through it.

``inspect_model(model, x, y)`` runs one training-mode forward and backward pass and returns an
:class:`Inspection`; print it for two tables (activations and gradients per layer, then weights and their
gradients), a legend and notes on what is easy to misread. ``tinynet inspect`` prints the same.
"""

from __future__ import annotations

import copy
import math
import textwrap
from dataclasses import dataclass, field

import numpy as np

from .arrays import to_numpy
from .backend import get_backend
from .layers import BatchNorm, Conv2D, Dropout, MaxPool2D
from .losses import SoftmaxCrossEntropy


@dataclass
class Row:
    """The input, or one layer: its output on the batch and the loss's gradient with respect to that output."""

    name: str
    kind: str  # the layer's class: "Conv2D", "ReLU", ...; "input" for the input row
    settings: str
    shape: tuple
    mean: float
    std: float
    zeros: float  # fraction of entries exactly 0
    grad_norm: float  # |dL/dout|
    weights: dict = field(default_factory=dict)  # "W" (or "gamma") and "b" (or "beta") -> (key, shape, |p|, |dp|)
    gain: float | None = None  # BatchNorm: gamma / sigma averaged over channels, what its backward multiplies by


@dataclass
class Inspection:
    rows: list  # [Row]: the input first, then every layer
    loss: float
    classes: int

    def activations(self) -> str:
        """Table 1: per layer, its output's shape and statistics, and the gradient flowing back into it."""
        w = max(len(r.name) for r in self.rows) + 2
        s = max(len(r.settings) for r in self.rows) + 2
        head = f"{'layer':<{w}}{'settings':<{s}}{'output shape':<20}{'mean':>8}{'std':>8}{'zeros':>7}{'|dL/dout|':>11}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r.name:<{w}}{r.settings:<{s}}{str(r.shape):<20}{r.mean:>8.3f}{r.std:>8.3f}"
                         f"{r.zeros:>7.0%}{r.grad_norm:>11.2e}")
        return "\n".join(lines)

    def parameters(self) -> str:
        """Table 2: per layer with weights, the size of W, of its gradient, their ratio, and the bias's."""
        rows = [r for r in self.rows if r.weights]
        if not rows:
            return ""
        w = max(len(r.name) for r in rows) + 2
        head = (f"{'layer':<{w}}{'W and dW shape':<22}{'|W|':>10}{'|dW|':>10}{'|dW|/|W|':>10}   {'b and db shape':<16}"
                f"{'|b|':>10}{'|db|':>10}")
        lines = [head, "-" * len(head)]
        for r in rows:
            wk, wshape, wn, dwn = r.weights["W"]
            bk, bshape, bn, dbn = r.weights["b"]
            ratio = f"{dwn / wn:>10.2e}" if wn else f"{'-':>10}"
            lines.append(f"{r.name:<{w}}{wk + ' ' + str(wshape):<22}{wn:>10.2e}{dwn:>10.2e}{ratio}   "
                         f"{bk + ' ' + str(bshape):<16}{bn:>10.2e}{dbn:>10.2e}")
        return "\n".join(lines)

    def notes(self) -> list:
        """What a student is likely to misread in these numbers, each with this batch's own figures."""
        return [n for n in (self._zeros_before_relu(), *self._batchnorm_gains()) if n]

    def _zeros_before_relu(self) -> str:
        first = next((i for i, r in enumerate(self.rows) if r.kind == "ReLU"), len(self.rows))
        r = next((r for r in self.rows[1:first] if r.zeros > 0), None)
        if r is None:
            return ""
        text = (f"{r.name} outputs {r.zeros:.0%} zeros although no ReLU has run yet. They come from the black "
                f"background: {self.rows[0].zeros:.0%} of the input pixels are exactly 0")
        if not r.weights:
            return text + f", and {r.name} passes them on."
        if r.weights["b"][2] == 0:
            return text + (", a window lying wholly on them computes W * 0 + b = b, and b is still 0 (|b| in the "
                           "second table). Training moves b, and these zeros go.")
        return ""  # a trained bias is not 0: these zeros have another cause, and no note is better than a wrong one

    def _batchnorm_gains(self) -> list:
        """Backprop through BatchNorm scales the gradient by gamma / sigma: one note for the largest jump."""
        jumps = [(before, r) for before, r in zip(self.rows, self.rows[1:], strict=False)
                 if r.gain is not None and r.grad_norm > 0]
        if not jumps:
            return []
        before, bn = max(jumps, key=lambda j: j[0].grad_norm / j[1].grad_norm)
        note = (f"|dL/dout| jumps from {bn.grad_norm:.3g} after {bn.name} to {before.grad_norm:.3g} before it "
                f"(x{before.grad_norm / bn.grad_norm:.3g}), and nothing is exploding. BatchNorm's forward divides its "
                f"input by sigma, the input's standard deviation per channel ({before.name}'s std is "
                f"{before.std:.3g}), so its backward multiplies the gradient by gamma / sigma ({bn.gain:.3g} on "
                "average over its channels): the forward's division by a small sigma, seen from the other side.")
        others = [f"{o.name} x{b.grad_norm / o.grad_norm:.3g} (gamma / sigma {o.gain:.3g})" for b, o in jumps if o is not bn]
        return [note + (" The other BatchNorm layers: " + ", ".join(others) + "." if others else "")]

    def legend(self) -> str:
        items = [
            "|.| is the Euclidean norm of the whole tensor, every image of the batch together: the square root of "
            "the sum of squares of its entries.",
            "mean, std, zeros: over every entry of the layer's output; zeros is the fraction exactly 0 (after a "
            "ReLU: the entries that were negative; after Dropout: those it dropped as well).",
            "|dL/dout|: the gradient of the loss with respect to the layer's output, as backprop hands it to the "
            "layer; on the input row, with respect to the images. L is the batch's mean cross-entropy, so these "
            "shrink as the batch grows.",
            "W, dW: the weights (gamma for BatchNorm) and their gradient; dW always has W's shape, since L is one "
            "number. b, db: the bias (beta for BatchNorm) and its gradient.",
            "|dW|/|W|: the gradient's size relative to the weights'. One plain SGD step changes W by the fraction "
            "lr * |dW|/|W|; Adam rescales each entry's step, so there it only says where the gradients are large.",
        ]
        return _bullets("What the columns mean:", items)

    def __str__(self):
        loss = (f"loss L = {self.loss:.4f} (mean cross-entropy over the batch; predicting all {self.classes} classes "
                f"equally likely gives ln {self.classes} = {math.log(self.classes):.4f})")
        parts = [self.activations(), self.parameters(), loss, self.legend()]
        if self.notes():
            parts.append(_bullets("Easy to misread:", self.notes()))
        return "\n\n".join(p for p in parts if p)


def _bullets(title, items):
    return title + "\n" + "\n".join(textwrap.fill(t, 116, initial_indent="- ", subsequent_indent="  ") for t in items)


def settings(layer) -> str:
    """A layer's hyper-parameters in a few words: '3x3, stride 1, valid', 'rate 0.2', ..."""
    if isinstance(layer, (Conv2D, MaxPool2D)):
        (kh, kw), (sh, sw) = layer.kernel, layer.stride
        padding = layer.padding if isinstance(layer.padding, str) else f"padding {layer.padding}"
        return f"{kh}x{kw}, stride {sh if sh == sw else f'{sh}x{sw}'}, {padding}"
    if isinstance(layer, Dropout):
        return f"rate {layer.rate:g}"
    if isinstance(layer, BatchNorm):
        return f"momentum {layer.momentum:g}"
    return ""


def _row(name, kind, text, out, grad, layer=None) -> Row:
    """Statistics of one output and its gradient (host arrays), plus the layer's weights if it has any."""
    r = Row(name, kind, text, out.shape, float(out.mean()), float(out.std()), float((out == 0).mean()),
            float(np.linalg.norm(grad)))
    if layer is not None and layer.params:
        w_key, b_key = ("gamma", "beta") if isinstance(layer, BatchNorm) else ("W", "b")
        for slot, key in (("W", w_key), ("b", b_key)):
            p = layer.params[key]
            r.weights[slot] = (key, tuple(p.data.shape), float(np.linalg.norm(to_numpy(p.data))),
                               float(np.linalg.norm(to_numpy(p.grad))))
    if isinstance(layer, BatchNorm):
        r.gain = float(np.mean(to_numpy(layer.params["gamma"].data) * to_numpy(layer.inv_std).reshape(-1)))
    return r


def inspect_model(model, x, y, loss=None) -> Inspection:
    """One training-mode forward and backward pass of ``model`` on images ``x`` with labels ``y``.

    It runs on a copy, so the model's BatchNorm statistics, dropout generators and gradients stay as they were.
    ``loss`` defaults to ``SoftmaxCrossEntropy.for_model(model)`` (from probabilities if it ends in Softmax).
    """
    model = copy.deepcopy(model)
    loss = loss or SoftmaxCrossEntropy.for_model(model)
    b = get_backend(model.backend)
    outputs, grads = {}, {}  # by layer name: its output, and dL/d(that output)
    out = model.forward(b.asarray(x), training=True, trace=lambda layer, _, y_: outputs.setdefault(layer.name, y_))
    value = float(loss.forward(out, b.asarray(y)))
    dx = model.backward(loss.backward(), trace=lambda layer, dy, _: grads.setdefault(layer.name, dy))
    rows = [_row("input", "input", "", to_numpy(x), to_numpy(dx))]
    for layer in model.layers:
        rows.append(_row(layer.name, type(layer).__name__, settings(layer), to_numpy(outputs[layer.name]),
                         to_numpy(grads[layer.name]), layer))
    return Inspection(rows, value, model.output_shape[0])
