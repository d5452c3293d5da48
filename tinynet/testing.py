"""Check a layer of your own the way tinynet checks its own: ``check_layer(MyLayer(), input_shape)``.

What Chainer's ``check_backward`` and ``torch.autograd.gradcheck`` give their users, with tinynet's explanations.
:func:`check_layer` runs, on every installed backend:

- a gradient check in float64 (:func:`tinynet.gradcheck`: every parameter and the input, a random direction);
- float32 in, float32 out (forward's output, backward's dx and every parameter's gradient);
- the same numbers on every backend as on NumPy (forward and backward, same weights);
- forward leaves its input alone, backward leaves ``dy`` alone;
- a second backward without a new forward: refused (an error) or the same answer; which one is reported;
- ``get_config``: JSON values from which ``type(layer)(**config)`` builds a layer of the same shapes.

It returns a :class:`LayerCheck` whose ``str()`` is a table of what passed and why something did not;
:func:`assert_layer_ok` and :func:`assert_gradients_ok` raise ``AssertionError`` with that table, for pytest.
``conv_geometries()`` and ``pool_geometries()`` are hypothesis strategies for window layers (hypothesis is a test
dependency, imported only when they are called).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .arrays import to_numpy
from .backend import available_backends, using_backend
from .gradcheck import GradcheckReport, gradcheck
from .layers.base import Layer


@dataclass
class LayerCheck:
    """The checks of one layer: (backend, what, passed, detail) rows; ``ok`` when every one passed."""

    layer: str
    rows: list = field(default_factory=list)
    gradchecks: dict = field(default_factory=dict)  # backend -> GradcheckReport

    def add(self, backend: str, what: str, passed: bool, detail: str = "") -> None:
        self.rows.append((backend, what, bool(passed), detail))

    @property
    def ok(self) -> bool:
        return all(passed for _, _, passed, _ in self.rows)

    def __str__(self) -> str:
        w = max([len(w) for _, w, _, _ in self.rows] + [5]) + 2
        lines = [f"check_layer({self.layer}):", f"{'backend':<14}{'check':<{w}}result  detail"]
        lines += [f"{b:<14}{w_:<{w}}{'ok' if p else 'FAIL':<8}{d}" for b, w_, p, d in self.rows]
        failed = [r for r in self.rows if not r[2]]
        lines.append(f"{len(self.rows) - len(failed)} of {len(self.rows)} checks passed: {'PASS' if not failed else 'FAIL'}")
        for backend, report in self.gradchecks.items():
            if not report.ok:
                lines += ["", f"gradcheck on {backend}:", report.format(entries=3)]
        return "\n".join(lines)


def check_layer(layer: Layer | Callable[[], Layer], input_shape: tuple, *, backends: list[str] | None = None,
                seed: int = 0, max_entries: int = 20, x: np.ndarray | None = None) -> LayerCheck:
    """Run every check above on ``layer`` (a Layer, deep-copied, or a function making one) for a batch of
    ``input_shape`` (batch axis included, e.g. (2, 3, 8, 8)); ``x`` (float64) replaces the random input, e.g. to
    keep away from a kink. ``backends``: the installed ones by default."""
    make = layer if callable(layer) and not isinstance(layer, Layer) else (lambda: copy.deepcopy(layer))
    if x is None:
        x = np.random.default_rng(seed).standard_normal(tuple(input_shape))
    reference = make()
    check = LayerCheck(type(reference).__name__)
    with using_backend("numpy"):
        reference.build(tuple(x.shape[1:]), np.float64)  # its weights, once: every run below starts from a copy
        ref = _run(copy.deepcopy(reference), x)  # (a copy also keeps any state, a dropout counter, as it was)
    for name in backends or available_backends():
        with using_backend(name) as b:
            _check_on(check, name, b, reference, x, ref, seed, max_entries)
    _check_config(check, reference)
    return check


def _run(layer: Layer, x: np.ndarray, dy: np.ndarray | None = None) -> dict[str, Any]:
    """Forward and backward of ``layer`` (on the current backend) at host ``x``; every result on the host."""
    from .backend import get_backend

    b = get_backend()
    layer.to(b.name)
    xd = b.asarray(x.copy())  # copies: the layer's mistakes must not reach the caller's arrays (or each other)
    y = layer.forward(xd, training=True)
    g = np.random.default_rng(7).standard_normal(tuple(y.shape)).astype(x.dtype) if dy is None else dy
    gd = b.asarray(g.copy())
    dx = layer.backward(gd)
    grads = {k: to_numpy(p.grad) for k, p in layer.params.items()}
    return {"x": xd, "y": y, "dy": gd, "dy_host": g, "dx": dx, "grads": grads}


def _check_on(check: LayerCheck, name: str, b: Any, reference: Layer, x: np.ndarray, ref: dict, seed: int,
              max_entries: int) -> None:
    report = gradcheck(copy.deepcopy(reference), x, seed=seed, max_entries=max_entries)
    check.gradchecks[name] = report
    check.add(name, "gradients (float64)", report.ok, report.verdict())
    layer = copy.deepcopy(reference).astype(np.float64)
    x_before = x.copy()
    out = _run(layer, x, ref["dy_host"])
    check.add(name, "forward leaves x alone", np.array_equal(to_numpy(out["x"]), x_before))
    check.add(name, "backward leaves dy alone", np.array_equal(to_numpy(out["dy"]), ref["dy_host"]))
    same = np.allclose(to_numpy(out["y"]), to_numpy(ref["y"]), rtol=1e-10, atol=1e-12) and all(
        np.allclose(out["grads"][k], g, rtol=1e-10, atol=1e-12) for k, g in ref["grads"].items())
    check.add(name, "same numbers as NumPy", same, "forward and every gradient, float64")
    _check_second_backward(check, name, layer, out)
    f32 = _run(copy.deepcopy(reference).astype(np.float32), x.astype(np.float32))
    dtypes = {str(to_numpy(a).dtype) for a in (f32["y"], *([f32["dx"]] if f32["dx"] is not None else []),
                                                *f32["grads"].values())}
    check.add(name, "float32 in, float32 out", dtypes == {"float32"}, f"dtypes seen: {', '.join(sorted(dtypes))}")


def _check_second_backward(check: LayerCheck, name: str, layer: Layer, out: dict) -> None:
    """A second backward on the caches of the first: an error is fine (documented refusal), a different answer not."""
    try:
        again = layer.backward(out["dy"])
    except Exception as exc:  # any refusal that says why
        check.add(name, "second backward", True, f"refused: {type(exc).__name__}: {exc}"[:80])
        return
    same = (again is None and out["dx"] is None) or np.array_equal(to_numpy(again), to_numpy(out["dx"]))
    check.add(name, "second backward", same, "gives the same dx" if same else "gives a different dx")


def _check_config(check: LayerCheck, layer: Layer) -> None:
    config = layer.get_config()
    try:
        text = json.dumps(config)
        twin = type(layer)(**json.loads(text))
    except (TypeError, ValueError) as exc:
        check.add("-", "get_config round trip", False, f"{type(exc).__name__}: {exc}"[:100])
        return
    if layer.built:
        twin.build(layer.input_shape, layer.dtype)
        same = twin.output_shape(layer.input_shape) == layer.output_shape(layer.input_shape) and \
            {k: p.data.shape for k, p in twin.params.items()} == {k: p.data.shape for k, p in layer.params.items()}
    else:
        same = True
    check.add("-", "get_config round trip", same, text[:80])


def assert_layer_ok(layer: Layer | Callable[[], Layer], input_shape: tuple, **kwargs: Any) -> LayerCheck:
    """:func:`check_layer`, raising AssertionError with its table when a check fails (for pytest)."""
    result = check_layer(layer, input_shape, **kwargs)
    if not result.ok:
        raise AssertionError("\n" + str(result))
    return result


def assert_gradients_ok(report: GradcheckReport) -> GradcheckReport:
    """Raise AssertionError with the gradcheck report's table when it did not pass (for pytest)."""
    if not report.ok:
        raise AssertionError("\n" + report.format(entries=3))
    return report


def conv_geometries(max_size: int = 7) -> Any:
    """A hypothesis strategy of (input_shape, kernel, stride, padding) for a Conv2D or MaxPool2D that fits."""
    from hypothesis import strategies as st

    @st.composite
    def geometry(draw: Any) -> tuple:
        n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
        h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
        k, s = draw(st.integers(1, 3)), draw(st.integers(1, 2))
        padding = draw(st.one_of(st.sampled_from(["valid", "same"]), st.integers(0, 2)))
        pad = 0 if padding == "valid" else (k - 1) if padding == "same" else 2 * padding
        if h + pad < k or w + pad < k:  # the window would not fit: shrink it to the input
            k = max(1, min(h, w))
        return (n, c, h, w), k, s, padding

    return geometry()


def pool_geometries(max_size: int = 7) -> Any:
    """A hypothesis strategy of (input_shape, pool size, stride, padding) for a MaxPool2D that fits."""

    return conv_geometries(max_size).map(lambda g: (g[0], g[1], g[2], g[3] if g[3] in ("valid", "same") else "valid"))
