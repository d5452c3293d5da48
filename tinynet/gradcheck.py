"""Check analytic gradients against centred finite differences, in float64.

For a module f (a layer or a model) and input x we pick a random upstream
gradient g and the scalar  L = sum(g * f(x))  (or the model's loss when one is
given). Backprop gives dL/dtheta for every parameter and dL/dx; for a sample of
entries we also compute

    (L(theta + eps) - L(theta - eps)) / (2 eps)

and report, per tensor, the relative error |a - n| / (|a| + |n|) over the
sampled entries (a: analytic, n: numeric, |.| the Euclidean norm).

We use the fourth-order centred stencil

    (8 (L(+h) - L(-h)) - (L(+2h) - L(-2h))) / (12 h)

whose truncation error shrinks like h^4 instead of h^2. That lets h be large
(1e-4), which keeps float64 round-off in L (about 1e-16 |L| / h) far below the
gradients being checked — with the two-point formula, small gradients such as
a confident softmax's or BatchNorm's input gradient drown in that round-off.

Finite differences are wrong across a kink (ReLU at 0, a max-pool tie), so the
check measures how close the input of every ReLU/MaxPool2D sits to one, shrinks
h so that no step can reach it (h <= margin / 10), reports it, and relaxes the
tolerance from 1e-6 to 1e-4 when the input sits near a kink; tests regenerate
inputs that sit too close.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from .backend import get_backend, to_numpy, using_backend
from .layers import Dropout
from .layers.base import Layer
from .sequential import Sequential

TOLERANCE = 1e-6
KINK_TOLERANCE = 1e-4


@dataclass
class GradcheckReport:
    errors: dict = field(default_factory=dict)  # name -> relative error
    checked: dict = field(default_factory=dict)  # name -> number of entries checked
    shapes: dict = field(default_factory=dict)
    kink_margin: float = np.inf
    eps: float = 1e-4  # the step asked for
    step: float = 1e-4  # the step used (smaller when a kink is near)

    @property
    def near_kink(self) -> bool:
        """True when some ReLU/max-pool input is within 50 h of a kink (steps reach 2 h)."""
        return self.kink_margin < 50 * self.eps

    @property
    def tolerance(self) -> float:
        return KINK_TOLERANCE if self.near_kink else TOLERANCE

    @property
    def max_error(self) -> float:
        return max(self.errors.values()) if self.errors else 0.0

    @property
    def ok(self) -> bool:
        return self.max_error < self.tolerance

    def __str__(self):
        w = max([len(k) for k in self.errors] + [10]) + 2
        lines = [f"{'tensor':<{w}}{'shape':<20}{'checked':>8}  {'rel. error':>11}  verdict"]
        for k, e in self.errors.items():
            verdict = "ok" if e < self.tolerance else "FAIL"
            lines.append(f"{k:<{w}}{str(self.shapes[k]):<20}{self.checked[k]:>8}  {e:>11.2e}  {verdict}")
        margin = "none" if not np.isfinite(self.kink_margin) else f"{self.kink_margin:.1e}"
        lines.append(
            f"max relative error {self.max_error:.2e} (tolerance {self.tolerance:.0e}); "
            f"closest kink {margin}{' — near a kink' if self.near_kink else ''}; step {self.step:.0e}: "
            f"{'PASS' if self.ok else 'FAIL'}"
        )
        return "\n".join(lines)


def _layers_of(module):
    return module.layers if isinstance(module, Sequential) else [module]


def _kink_margin(module, x):
    """Run forward layer by layer and ask kinked layers how close their input is."""
    margin = np.inf
    for layer in _layers_of(module):
        if hasattr(layer, "kink_margin"):
            margin = min(margin, layer.kink_margin(x))
        x = layer.forward(x, training=True)
    return margin


def _rel_error(a, n):
    a, n = np.asarray(a, np.float64), np.asarray(n, np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(n)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - n) / denom)


def gradcheck(module, x, y=None, loss=None, *, eps=1e-4, max_entries=40, seed=0, check_input=True):
    """Gradient-check ``module`` (a Layer or Sequential) at input ``x``.

    ``loss`` (e.g. ``SoftmaxCrossEntropy()``) with labels ``y`` makes the scalar
    the model's loss; otherwise it is ``sum(g * module(x))`` for a random g.
    At most ``max_entries`` randomly chosen entries of each tensor are checked.
    The module is deep-copied and cast to float64; the original is untouched.
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

        out = m.forward(x, training=True)
        # Freeze dropout masks so every evaluation below sees the same function.
        for layer in _layers_of(m):
            if isinstance(layer, Dropout) and layer.last_mask() is not None:
                layer.fixed_mask = layer.last_mask()
        g = backend.asarray(rng.standard_normal(out.shape))

        def objective():
            o = m.forward(x, training=True)
            return float(loss.forward(o, y)) if loss is not None else float((o * g).sum())

        report = GradcheckReport(eps=eps)
        report.kink_margin = _kink_margin(m, x)
        h = report.step = max(min(eps, report.kink_margin / 10), 1e-8)

        objective()  # forward once more so the caches match x exactly
        dout = loss.backward() if loss is not None else g
        dx = m.backward(dout)

        tensors = {}
        for layer in _layers_of(m):
            for key, p in layer.params.items():
                tensors[f"{layer.name}.{key}"] = (p.data, to_numpy(p.grad).copy())
        if check_input:
            tensors["input"] = (x, to_numpy(dx).copy())

        for name, (arr, analytic) in tensors.items():
            flat = analytic.reshape(-1)
            k = min(max_entries, flat.size)
            idx = rng.choice(flat.size, size=k, replace=False)
            numeric = np.empty(k)
            for j, i in enumerate(idx):
                pos = np.unravel_index(i, arr.shape)
                orig = float(arr[pos])
                f = {}
                for step in (-2, -1, 1, 2):
                    arr[pos] = orig + step * h
                    f[step] = objective()
                arr[pos] = orig
                numeric[j] = (8 * (f[1] - f[-1]) - (f[2] - f[-2])) / (12 * h)
            report.errors[name] = _rel_error(flat[idx], numeric)
            report.checked[name] = int(k)
            report.shapes[name] = tuple(arr.shape)
        return report
