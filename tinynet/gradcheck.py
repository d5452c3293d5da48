"""Check analytic gradients against centred finite differences, in float64.

For a module f (a layer or a model) and input x we pick a random upstream
gradient g and the scalar  L = sum(g * f(x))  (or the model's loss when one is
given). Backprop gives dL/dtheta for every parameter and dL/dx; for a sample of
entries we also compute a numerical derivative (``numerical_derivative``) and
report, per tensor, the relative error |a - n| / (|a| + |n|) over the sampled
entries (a: analytic, n: numeric, |.| the Euclidean norm).

We use the fourth-order centred stencil

    (8 (L(+h) - L(-h)) - (L(+2h) - L(-2h))) / (12 h)

whose truncation error shrinks like h^4 instead of h^2. That lets h be large
(1e-4), which keeps float64 round-off in L (about 1e-16 |L| / h) far below the
gradients being checked — with the two-point formula, small gradients such as
a confident softmax's or BatchNorm's input gradient drown in that round-off.

Finite differences are wrong across a kink: a ReLU switching on or off, a
max-pool window changing its winner. So every evaluation records those
discrete choices (each kinked layer's ``kink_state()``) and compares them with
the unperturbed forward pass. An entry whose stencil crosses a kink is retried
with a 10x and 100x smaller step, and skipped (and counted) if it still does.
Exact ties that no perturbation can break -- a window of ReLU-blocked zeros, or
those zeros after a BatchNorm -- are therefore not kinks, while a tie that a
perturbation does break is caught where it happens.
"""

from __future__ import annotations

import copy
import textwrap
from dataclasses import dataclass, field

import numpy as np

from .arrays import to_numpy
from .backend import get_backend, using_backend
from .layers import Dropout
from .layers.base import Layer
from .sequential import Sequential

TOLERANCE = 1e-6
STEPS = (1.0, 0.1, 0.01)  # times eps: tried in turn while a stencil crosses a kink


class KinkCrossed(ArithmeticError):
    """A finite-difference stencil crossed a kink (a ReLU or max-pool switched): its value is meaningless."""


def numerical_derivative(f, arr, index, h, same_branch=None):
    """d f / d arr[index] by the fourth-order centred difference; ``arr[index]`` is restored afterwards.

    ``f()`` must read ``arr``; ``same_branch()``, if given, is called after every
    evaluation and must return True (else :class:`KinkCrossed` is raised).
    """
    orig = float(arr[index])
    values = {}
    try:
        for s in (-2, -1, 1, 2):
            arr[index] = orig + s * h
            values[s] = f()
            if same_branch is not None and not same_branch():
                raise KinkCrossed(f"the stencil at {index} with step {h:g} crossed a kink")
    finally:
        arr[index] = orig
    return (8 * (values[1] - values[-1]) - (values[2] - values[-2])) / (12 * h)


def relative_error(a, n):
    a, n = np.asarray(a, np.float64), np.asarray(n, np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(n)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - n) / denom)


@dataclass
class GradcheckReport:
    errors: dict = field(default_factory=dict)  # name -> relative error
    checked: dict = field(default_factory=dict)  # name -> number of entries checked
    skipped: dict = field(default_factory=dict)  # name -> entries whose stencil crossed a kink at every step
    shapes: dict = field(default_factory=dict)
    samples: dict = field(default_factory=dict)  # name -> [(index, analytic, numeric), ...], every checked entry
    frozen_dropout: list = field(default_factory=list)  # Dropout layers whose mask was fixed for the check
    eps: float = 1e-4  # the step asked for
    step: float = 1e-4  # the smallest step used (smaller when a kink was near)
    tolerance: float = TOLERANCE

    @property
    def max_error(self) -> float:
        return max(self.errors.values()) if self.errors else 0.0

    @property
    def unchecked(self) -> list:
        """Tensors none of whose sampled entries could be checked: every stencil crossed a kink (e.g. a bias
        still at 0 under inputs that are exactly 0, where ReLU(0 + b) has its kink at b = 0)."""
        return [k for k, n in self.checked.items() if n == 0]

    @property
    def ok(self) -> bool:
        """Every checked entry agrees, and at least one tensor could be checked."""
        return self.max_error < self.tolerance and len(self.unchecked) < len(self.checked)

    def table(self) -> str:
        """One row per tensor: how many of its entries were checked, how many sat on a kink, the relative error."""
        w = max([len(k) for k in self.errors] + [10]) + 2
        sw = max([len(str(s)) for s in self.shapes.values()] + [5]) + 2
        lines = [f"{'tensor':<{w}}{'shape':<{sw}}{'entries checked':>18}{'on kink':>9}  {'rel. error':>10}  verdict"]
        for k, e in self.errors.items():
            verdict = "unchecked" if not self.checked[k] else "ok" if e < self.tolerance else "FAIL"
            if self.checked[k] and all(a == n == 0 for _, a, n in self.samples[k]):
                verdict += " (all 0)"  # an error of 0 from zeros compares nothing: say so
            of = f"{self.checked[k]} of {int(np.prod(self.shapes[k])):,}"
            lines.append(f"{k:<{w}}{str(self.shapes[k]):<{sw}}{of:>18}{self.skipped[k]:>9}  {e:>10.2e}  {verdict}")
        return "\n".join(lines)

    def side_by_side(self, entries=3) -> str:
        """The first ``entries`` checked entries of each tensor: backprop's number beside the finite difference's."""
        rows = [(f"{k}[{', '.join(map(str, i))}]", a, n) for k, s in self.samples.items() for i, a, n in s[:entries]]
        if not rows:
            return ""
        w = max(len(r[0]) for r in rows) + 2
        lines = [f"{'entry':<{w}}{'analytic (backprop)':>21}{'numeric (finite diff.)':>24}{'difference':>12}"]
        lines += [f"{e:<{w}}{a:>21.12e}{n:>24.12e}{a - n:>12.1e}" for e, a, n in rows]
        return "\n".join(lines)

    def legend(self) -> str:
        """What the columns mean and what a good result looks like, in words."""
        retries = " and ".join(f"{self.eps * s:.0e}" for s in STEPS[1:])
        skipped = sum(self.skipped.values())
        items = [
            "relative error = |a - n| / (|a| + |n|): a holds the analytic gradients of a tensor's checked entries "
            "(backprop), n the numeric ones (finite differences), and |.| is the Euclidean norm over those entries. "
            "0 means they agree exactly, 1 that one of them is 0. In float64 a correct backward pass gives about "
            f"1e-8 or less (the finite difference's own round-off); a bug gives 1e-3 to 1. Above {self.tolerance:.0e} "
            "a tensor fails.",
            f"entries checked: a random sample of each tensor's entries ({self._example_sample()}), since each entry "
            "costs four forward passes.",
            "numeric: (8 (L(+h) - L(-h)) - (L(+2h) - L(-2h))) / (12 h), where L(+h) is the loss (or sum(g * output) "
            f"for a random g) with the entry moved by +h; h = {self.eps:.0e}.",
            "on kink: a finite difference is only valid if no ReLU switches on or off and no max-pool window changes "
            "its winner between -2h and +2h. Every evaluation compares those choices with the unperturbed pass; an "
            f"entry whose stencil crosses one is retried with h = {retries}, then skipped and counted in this column "
            f"({skipped} in all; the smallest step used was {self.step:.0e}).",
        ]
        if any(a == n == 0 for s in self.samples.values() for _, a, n in s):
            items.append("0 beside 0 is a true zero gradient, not a failure: no path from that entry reaches the "
                         "loss (ReLUs or dropout blocked it for every image in the batch, or no max-pool window picked "
                         "it). A tensor whose checked entries are all 0 says 'ok (all 0)': its error of 0 compared "
                         "nothing, so check more entries or another batch.")
        if self.frozen_dropout:
            items.append(f"Dropout: the mask of each Dropout layer ({', '.join(self.frozen_dropout)}) was drawn once "
                         "and frozen for the whole check, so every evaluation of L sees the same function.")
        return "How to read this:\n" + "\n".join(textwrap.fill(t, 116, initial_indent="- ", subsequent_indent="  ")
                                                   for t in items)

    def _example_sample(self) -> str:
        """'10 of 102,400 entries of dense.W', for the largest tensor checked."""
        name = max(self.shapes, key=lambda k: np.prod(self.shapes[k]), default=None)
        if name is None:
            return "none here"
        return f"{self.checked[name]} of {int(np.prod(self.shapes[name])):,} entries of {name}"

    def verdict(self) -> str:
        skipped = sum(self.skipped.values())
        return (
            f"max relative error {self.max_error:.2e} (tolerance {self.tolerance:.0e}); step {self.eps:.0e}"
            + (f" (down to {self.step:.0e} beside a kink)" if self.step < self.eps else "")
            + (f"; {skipped} {'entry' if skipped == 1 else 'entries'} skipped (on a ReLU or max-pool kink)"
               if skipped else "")
            + (f"; unchecked (every entry on a kink): {', '.join(self.unchecked)}" if self.unchecked else "")
            + f": {'PASS' if self.ok else 'FAIL'}"
        )

    def format(self, entries=3) -> str:
        """The table, ``entries`` analytic/numeric pairs per tensor (0: none), the legend, and the verdict last."""
        parts = [self.table(), self.side_by_side(entries) if entries else "", self.legend(), self.verdict()]
        return "\n\n".join(p for p in parts if p)

    def __str__(self):
        return self.format()


def _layers_of(module):
    return module.layers if isinstance(module, Sequential) else [module]


def _kink_state(layers):
    """The discrete choices of the latest forward pass: which ReLUs passed, which inputs won each pool."""
    return [to_numpy(layer.kink_state()) if hasattr(layer, "kink_state") else None for layer in layers]


def _same(a, b):
    return all(u is v is None or np.array_equal(u, v) for u, v in zip(a, b, strict=True))


def gradcheck(module, x, y=None, loss=None, *, eps=1e-4, max_entries=40, seed=0, check_input=True, progress=None):
    """Gradient-check ``module`` (a Layer or Sequential) at input ``x``.

    ``loss`` (e.g. ``SoftmaxCrossEntropy()``) with labels ``y`` makes the scalar
    the model's loss; otherwise it is ``sum(g * module(x))`` for a random g.
    Up to ``max_entries`` randomly chosen entries of each tensor are checked.
    The module is deep-copied and cast to float64; the original is untouched.
    ``progress(done, total, name)`` is called as tensors are checked.
    Returns a :class:`GradcheckReport` (``.ok``, ``.errors``, printable).
    """
    if not isinstance(module, (Layer, Sequential)):
        raise TypeError(f"gradcheck needs a tinynet Layer or Sequential, got {type(module).__name__}")
    if (loss is None) != (y is None):
        raise ValueError("pass both loss and y, or neither")
    rng = np.random.default_rng(seed)
    backend = get_backend(module.backend if isinstance(module, Sequential) else None)
    with using_backend(backend.name):
        m = copy.deepcopy(module)
        x = backend.asarray(to_numpy(x), dtype=np.float64)
        if isinstance(m, Sequential):
            if not m.built:
                m.build(x.shape[1:], np.float64)
            m.astype(np.float64)
        elif m.built:
            m.astype(np.float64)
        if y is not None:
            y = backend.asarray(to_numpy(y))
        layers = _layers_of(m)

        # One forward pass to fix the dropout masks, so every evaluation below sees the same function.
        out = m.forward(x, training=True)
        frozen = []
        for layer in layers:
            if isinstance(layer, Dropout) and layer.last_mask() is not None:
                layer.fixed_mask = layer.last_mask()
                frozen.append(layer.name)
        g = backend.asarray(rng.standard_normal(out.shape))

        inputs = [x]  # inputs[k]: what layer k saw; a parameter of layer k only changes layers k, k+1, ...
        if isinstance(m, Sequential):
            m.forward(x, training=True, trace=lambda layer, x_in, y: inputs.append(y))
        else:
            inputs.append(m.forward(x, training=True))
        base_state = _kink_state(layers)

        def objective(start=0):
            h = inputs[start]
            for layer in layers[start:]:
                h = layer.forward(h, training=True)
            return float(loss.forward(h, y)) if loss is not None else float((h * g).sum())

        objective()  # forward once more so the caches match x exactly, then backprop
        dout = loss.backward() if loss is not None else g
        dx = m.backward(dout)

        tensors = {}  # name -> (array to perturb, analytic gradient, first layer it affects)
        for k, layer in enumerate(layers):
            for key, p in layer.params.items():
                tensors[f"{layer.name}.{key}"] = (p.data, to_numpy(p.grad).copy(), k)
        if check_input:
            tensors["input"] = (x, to_numpy(dx).copy(), 0)

        report = GradcheckReport(eps=eps, step=eps, frozen_dropout=frozen)
        for done, (name, (arr, analytic, start)) in enumerate(tensors.items()):
            if progress:
                progress(done, len(tensors), name)
            flat = analytic.reshape(-1)
            got_i, got_a, got_n, kinked = [], [], [], 0
            for i in rng.permutation(flat.size)[: 3 * max_entries]:
                if len(got_n) == min(max_entries, flat.size):
                    break
                pos = np.unravel_index(int(i), arr.shape)
                for scale in STEPS:
                    h = eps * scale
                    try:
                        n = numerical_derivative(lambda s=start: objective(s), arr, pos, h,
                                                 lambda s=start: _same(_kink_state(layers[s:]), base_state[s:]))
                    except KinkCrossed:
                        continue
                    report.step = min(report.step, h)
                    got_i.append(tuple(int(j) for j in pos))
                    got_a.append(float(flat[i]))
                    got_n.append(n)
                    break
                else:
                    kinked += 1
            objective()  # leave the caches at x
            report.errors[name] = relative_error(got_a, got_n)
            report.checked[name] = len(got_n)
            report.skipped[name] = kinked
            report.shapes[name] = tuple(arr.shape)
            report.samples[name] = list(zip(got_i, got_a, got_n, strict=True))
        if progress:
            progress(len(tensors), len(tensors), "")
        return report
