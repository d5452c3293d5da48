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

The random numbers the check draws -- the upstream gradient g, the entries sampled, one random direction --
come from streams of their own: ``SeedSequence([SALT, seed, tensor])``, which no user seed reproduces. With
``default_rng(seed)`` instead, a user who drew x from the same seed got g == x entry for entry, and a backward
that used x where dy belongs (or a transposed weight gradient, whose error x^T x is symmetric) passed.

Beyond the sampled entries, one random direction v through every entry of every tensor at once is checked too:
the directional derivative sum(grad * v) against (L(theta + h v) - ...) by the same stencil. A wrong entry the
sample missed still moves that sum, at the cost of four more evaluations of L.

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
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .arrays import Array, to_numpy
from .backend import Backend, get_backend, using_backend
from .exceptions import InvalidType, InvalidValue
from .layers import Dropout
from .layers.base import Layer
from .sequential import Sequential

TOLERANCE = 1e-6
STEPS = (1.0, 0.1, 0.01)  # times eps: tried in turn while a stencil crosses a kink
SALT = 0x7C9E6B1F2D4A58E3  # gradcheck's own: no user seed spawns the streams it starts (see the module docstring)
DIRECTION = "every entry, one random direction"  # the report's row for the directional check


def _stream(seed: int, what: str) -> np.random.Generator:
    """A generator for one use (``what``: "upstream gradient", a tensor's name...) that no user seed reproduces."""
    return np.random.default_rng(np.random.SeedSequence([SALT, seed, zlib.crc32(what.encode())]))


class KinkCrossed(ArithmeticError):
    """A finite-difference stencil crossed a kink (a ReLU or max-pool switched): its value is meaningless."""


def numerical_derivative(f: Callable[[], float], arr: Array, index: tuple, h: float,
                         same_branch: Callable[[], bool] | None = None) -> float:
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


def relative_error(a: Any, n: Any) -> float:
    """|a - n| / (|a| + |n|) in the Euclidean norm; 0 when both are 0."""
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
    direction_on_kink: bool = False  # the random-direction check crossed a kink at every step (so was not made)
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
        return [k for k, n in self.checked.items() if n == 0 and k != DIRECTION]

    @property
    def ok(self) -> bool:
        """Every checked entry agrees, and at least one tensor could be checked."""
        tensors = [k for k in self.checked if k != DIRECTION]
        return self.max_error < self.tolerance and len(self.unchecked) < len(tensors)

    def table(self) -> str:
        """One row per tensor: how many of its entries were checked, how many sat on a kink, the relative error."""
        w = max([len(k) for k in self.errors] + [10]) + 2
        sw = max([len(str(s)) for s in self.shapes.values()] + [5]) + 2
        lines = [f"{'tensor':<{w}}{'shape':<{sw}}{'entries checked':>18}{'on kink':>9}  {'rel. error':>10}  verdict"]
        for k, e in self.errors.items():
            verdict = "unchecked" if not self.checked[k] else "ok" if e < self.tolerance else "FAIL"
            if self.checked[k] and all(a == n == 0 for _, a, n in self.samples[k]):
                verdict += " (all 0)"  # an error of 0 from zeros compares nothing: say so
            of = f"{self.checked[k]:,} of {int(np.prod(self.shapes[k])):,}"
            lines.append(f"{k:<{w}}{str(self.shapes[k]):<{sw}}{of:>18}{self.skipped[k]:>9}  {e:>10.2e}  {verdict}")
        return "\n".join(lines)

    def side_by_side(self, entries: int = 3) -> str:
        """The first ``entries`` checked entries of each tensor: backprop's number beside the finite difference's."""
        rows = [(f"{k}[{', '.join(map(str, i))}]" if k != DIRECTION else "sum(grad * v), v random", a, n)
                for k, s in self.samples.items() for i, a, n in s[:entries]]
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
            f"for a random g) with the entry moved by +h; h = {self.eps:.0e}. The random numbers (g, the entries, the "
            "direction below) come from gradcheck's own stream, never the one your seed starts, so g cannot equal "
            "an input you drew with the same seed.",
            f"{DIRECTION}: every entry of every tensor moved at once along one random unit vector v; backprop's "
            "sum(grad * v) against the same finite difference of L. A wrong entry the sample above missed still "
            "shows here.",
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
        name = max((k for k in self.shapes if k != DIRECTION), key=lambda k: np.prod(self.shapes[k]), default=None)
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
            + ("; the random direction crossed a kink at every step (not checked)" if self.direction_on_kink else "")
            + f": {'PASS' if self.ok else 'FAIL'}"
        )

    def format(self, entries: int = 3) -> str:
        """The table, ``entries`` analytic/numeric pairs per tensor (0: none), the legend, and the verdict last."""
        parts = [self.table(), self.side_by_side(entries) if entries else "", self.legend(), self.verdict()]
        return "\n\n".join(p for p in parts if p)

    def __str__(self) -> str:
        return self.format()


def _layers_of(module: Layer | Sequential) -> list[Layer]:
    return module.layers if isinstance(module, Sequential) else [module]


def _kink_state(layers: list[Layer]) -> list:
    """The discrete choices of the latest forward pass: which ReLUs passed, which inputs won each pool."""
    return [to_numpy(layer.kink_state()) if hasattr(layer, "kink_state") else None for layer in layers]


def _same(a: list, b: list) -> bool:
    return all(u is v is None or np.array_equal(u, v) for u, v in zip(a, b, strict=True))


def gradcheck(module: Layer | Sequential, x: Any, y: Any = None, loss: Any = None, *, eps: float = 1e-4,
              max_entries: int = 40, seed: int = 0, check_input: bool = True,
              progress: Callable[[int, int, str], None] | None = None) -> GradcheckReport:
    """Gradient-check ``module`` (a Layer or Sequential) at input ``x``.

    ``loss`` (e.g. ``SoftmaxCrossEntropy()``) with labels ``y`` makes the scalar
    the model's loss; otherwise it is ``sum(g * module(x))`` for a random g.
    Up to ``max_entries`` randomly chosen entries of each tensor are checked.
    The module is deep-copied and cast to float64; the original is untouched.
    ``progress(done, total, name)`` is called as tensors are checked.
    Returns a :class:`GradcheckReport` (``.ok``, ``.errors``, printable).
    """
    if not isinstance(module, (Layer, Sequential)):
        raise InvalidType(f"gradcheck needs a tinynet Layer or Sequential, got {type(module).__name__}")
    if (loss is None) != (y is None):
        raise InvalidValue("pass both loss and y, or neither")
    backend = get_backend(module.backend if isinstance(module, Sequential) else None)
    with using_backend(backend.name):
        m, x, y = _float64_copy(module, x, y, backend)
        check = _Check(m, x, y, loss, seed, backend)
        tensors = check.tensors(check_input)
        report = GradcheckReport(eps=eps, step=eps, frozen_dropout=check.frozen)
        for done, (name, (arr, analytic, start)) in enumerate(tensors.items()):
            if progress:
                progress(done, len(tensors) + 1, name)
            check.entries(report, name, arr, analytic, start, eps, max_entries)
        if progress:
            progress(len(tensors), len(tensors) + 1, DIRECTION)
        check.direction(report, tensors, eps)
        if progress:
            progress(len(tensors) + 1, len(tensors) + 1, "")
        return report


def _float64_copy(module: Layer | Sequential, x: Any, y: Any, backend: Backend) -> tuple[Any, Array, Array | None]:
    """The module deep-copied, built and cast to float64, and x (float64) and y on ``backend``."""
    m = copy.deepcopy(module)
    x = backend.asarray(to_numpy(x), dtype=np.float64)
    if isinstance(m, Sequential):
        if not m.built:
            m.build(x.shape[1:], np.float64)
        m.astype(np.float64)
    elif m.built:
        m.astype(np.float64)
    return m, x, None if y is None else backend.asarray(to_numpy(y))


class _Check:
    """One gradient check: the module with its dropout masks frozen, the objective L, and backprop's gradients."""

    def __init__(self, m: Any, x: Array, y: Array | None, loss: Any, seed: int, backend: Backend):
        self.m, self.x, self.y, self.loss, self.seed, self.backend = m, x, y, loss, seed, backend
        self.layers = _layers_of(m)
        # One forward pass to fix the dropout masks, so every evaluation below sees the same function.
        out = m.forward(x, training=True)
        self.frozen = []
        for layer in self.layers:
            if isinstance(layer, Dropout) and layer.last_mask() is not None:
                layer.fixed_mask = layer.last_mask()
                self.frozen.append(layer.name)
        self.g = backend.asarray(_stream(seed, "upstream gradient").standard_normal(out.shape))
        self.inputs = [x]  # inputs[k]: what layer k saw; a parameter of layer k only changes layers k, k+1, ...
        if isinstance(m, Sequential):
            m.forward(x, training=True, trace=lambda layer, x_in, y: self.inputs.append(y))
        else:
            self.inputs.append(m.forward(x, training=True))
        self.base_state = _kink_state(self.layers)

    def objective(self, start: int = 0) -> float:
        """L, recomputed from layer ``start`` on (the layers before it did not change)."""
        h = self.inputs[start]
        for layer in self.layers[start:]:
            h = layer.forward(h, training=True)
        return float(self.loss.forward(h, self.y)) if self.loss is not None else float((h * self.g).sum())

    def tensors(self, check_input: bool) -> dict[str, tuple[Array, np.ndarray, int]]:
        """{name: (array to perturb, backprop's gradient, first layer it affects)} after one backward pass."""
        self.objective()  # forward once more so the caches match x exactly, then backprop
        dx = self.m.backward(self.loss.backward() if self.loss is not None else self.g)
        out = {}
        for k, layer in enumerate(self.layers):
            for key, p in layer.params.items():
                out[f"{layer.name}.{key}"] = (p.data, to_numpy(p.grad).copy(), k)
        if check_input:
            out["input"] = (self.x, to_numpy(dx).copy(), 0)
        return out

    def entries(self, report: GradcheckReport, name: str, arr: Array, analytic: np.ndarray, start: int, eps: float,
                max_entries: int) -> None:
        """Check up to ``max_entries`` random entries of one tensor; record the result in ``report``."""
        flat = analytic.reshape(-1)
        got_i: list[tuple] = []
        got_a: list[float] = []
        got_n: list[float] = []
        kinked = 0
        for i in _stream(self.seed, name).permutation(flat.size)[: 3 * max_entries]:
            if len(got_n) == min(max_entries, flat.size):
                break
            pos = np.unravel_index(int(i), arr.shape)
            found = self._numeric(arr, pos, start, eps)
            if found is None:
                kinked += 1
                continue
            n, h = found
            report.step = min(report.step, h)
            got_i.append(tuple(int(j) for j in pos))
            got_a.append(float(flat[i]))
            got_n.append(n)
        self.objective()  # leave the caches at x
        report.errors[name] = relative_error(got_a, got_n)
        report.checked[name] = len(got_n)
        report.skipped[name] = kinked
        report.shapes[name] = tuple(arr.shape)
        report.samples[name] = list(zip(got_i, got_a, got_n, strict=True))

    def direction(self, report: GradcheckReport, tensors: dict, eps: float) -> None:
        """The directional derivative along one random unit vector v through every entry of every tensor: backprop's
        sum(grad * v) against the stencil on L(theta + s h v); the report's last row."""
        rng = _stream(self.seed, DIRECTION)
        v = {name: rng.standard_normal(arr.shape) for name, (arr, _, _) in tensors.items()}
        norm = np.sqrt(sum(float((d * d).sum()) for d in v.values())) or 1.0
        v = {name: d / norm for name, d in v.items()}
        analytic = sum(float((g * v[name]).sum()) for name, (_, g, _) in tensors.items())
        found = None
        for scale in STEPS:
            try:
                found = self._along(tensors, v, eps * scale), eps * scale
                break
            except KinkCrossed:
                continue
        self.objective()  # leave the caches at x
        report.shapes[DIRECTION] = (sum(int(np.prod(arr.shape)) for arr, _, _ in tensors.values()),)
        report.checked[DIRECTION] = 0 if found is None else report.shapes[DIRECTION][0]
        report.skipped[DIRECTION] = 0
        report.direction_on_kink = found is None
        report.errors[DIRECTION] = 0.0 if found is None else relative_error(analytic, found[0])
        report.samples[DIRECTION] = [] if found is None else [((), analytic, found[0])]
        if found is not None:
            report.step = min(report.step, found[1])

    def _along(self, tensors: dict, v: dict, h: float) -> float:
        """dL/ds at s = 0 of L(theta + s v), every tensor moved at once; raises KinkCrossed."""
        saved = {name: arr.copy() for name, (arr, _, _) in tensors.items()}
        device_v = {name: self.backend.asarray(d) for name, d in v.items()}
        values = {}
        try:
            for s in (-2, -1, 1, 2):
                for name, (arr, _, _) in tensors.items():
                    arr[...] = saved[name] + (s * h) * device_v[name]
                values[s] = self.objective()
                if not _same(_kink_state(self.layers), self.base_state):
                    raise KinkCrossed(f"the stencil along the random direction with step {h:g} crossed a kink")
        finally:
            for name, (arr, _, _) in tensors.items():
                arr[...] = saved[name]
        return (8 * (values[1] - values[-1]) - (values[2] - values[-2])) / (12 * h)

    def _numeric(self, arr: Array, pos: tuple, start: int, eps: float) -> tuple[float, float] | None:
        """(dL/d arr[pos], step) by finite differences, the step shrunk beside a kink; None if every step crosses one."""
        for scale in STEPS:
            h = eps * scale
            try:
                return numerical_derivative(lambda: self.objective(start), arr, pos, h,
                                            lambda: _same(_kink_state(self.layers[start:]), self.base_state[start:])), h
            except KinkCrossed:
                continue
        return None
