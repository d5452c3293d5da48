"""gradcheck cannot be fooled by the seed its user drew the input with.

The class of bug: gradcheck once drew its upstream gradient g from ``default_rng(seed)``, so for x drawn from the
same seed (the README's own example) g equalled x, and a backward that used x where dy belongs passed, as did a
transposed weight gradient in a square layer (the error x^T x is symmetric). Here a set of deliberately wrong
backward passes must fail for every usual way of drawing the input, on every backend; the right ones must pass.
"""

import numpy as np
import pytest

import tinynet
from tinynet.arrays import xp_of
from tinynet.layers import Conv2D, Dense
from tinynet.layers.base import Layer


class Square(Layer):
    """y = x * x, elementwise: dx = 2 x dy."""

    def forward(self, x, training=False):
        self._check_input(x)
        self.x = x
        return x * x

    def backward(self, dy):
        return 2 * self.x * dy


class SquareDxFromX(Square):
    """The student's bug: x where dy belongs."""

    def backward(self, dy):
        return 2 * self.x * self.x


class DenseTransposedWeightGradient(Dense):
    def backward(self, dy):
        dx = super().backward(dy)
        self.params["W"].grad = xp_of(dy).ascontiguousarray(self.params["W"].grad.T)
        return dx


class DenseMissingBiasGradient(Dense):
    def backward(self, dy):
        dx = super().backward(dy)
        self.params["b"].grad = self.params["b"].grad * 0
        return dx


class ConvTwiceInOneChannel(Conv2D):
    def backward(self, dy):
        dx = super().backward(dy)
        self.params["W"].grad[1] *= 2
        return dx


class DenseOneEntryOfTheWrongSign(Dense):
    def backward(self, dy):
        dx = super().backward(dy)
        self.params["W"].grad[-1, -1] *= -1  # one of 256 entries: the sample of 40 may miss it, the direction not
        return dx


# (a wrong layer, the right one, the input shape); square layers where a square layer is the trap
CASES = {
    "dx from x instead of dy": (SquareDxFromX, Square, (4, 6)),
    "transposed dW in a square Dense": (lambda: DenseTransposedWeightGradient(6, seed=1), lambda: Dense(6, seed=1), (6, 6)),
    "missing bias gradient": (lambda: DenseMissingBiasGradient(5, seed=1), lambda: Dense(5, seed=1), (4, 6)),
    "factor 2 in one output channel": (lambda: ConvTwiceInOneChannel(3, 3, seed=1), lambda: Conv2D(3, 3, seed=1),
                                       (2, 2, 5, 5)),
    "one entry of the wrong sign": (lambda: DenseOneEntryOfTheWrongSign(16, seed=1), lambda: Dense(16, seed=1), (3, 16)),
}


def _legacy_randn(seed, shape):
    np.random.seed(seed)
    return np.random.randn(*shape)


# every usual way a user draws the input, with the seed they would then also pass to gradcheck
DRAWS = {f"default_rng({s})": (lambda shape, s=s: np.random.default_rng(s).standard_normal(shape), s) for s in range(6)}
DRAWS.update({f"np.random.seed({s}) + randn": (lambda shape, s=s: _legacy_randn(s, shape), s) for s in (0, 1, 42)})


@pytest.mark.parametrize("draw", DRAWS)
@pytest.mark.parametrize("case", CASES)
def test_a_wrong_backward_fails_whatever_seed_drew_the_input(backend, case, draw):
    wrong, right, shape = CASES[case]
    make_x, seed = DRAWS[draw]
    x = make_x(shape)
    for gradcheck_seed in (seed, 0):  # the user's seed, and gradcheck's default
        bad = tinynet.gradcheck(wrong(), x, seed=gradcheck_seed)
        assert not bad.ok, f"{case} passed with x from {draw}, gradcheck seed {gradcheck_seed}:\n{bad}"
        good = tinynet.gradcheck(right(), x, seed=gradcheck_seed)
        assert good.ok, str(good)


def test_the_upstream_gradient_is_never_the_input_drawn_from_the_same_seed():
    """The exact trap: x from default_rng(s) and g from gradcheck's stream for seed s must differ."""
    from tinynet.gradcheck import _stream

    for s in range(20):
        x = np.random.default_rng(s).standard_normal(50)
        g = _stream(s, "upstream gradient").standard_normal(50)
        assert abs(np.corrcoef(x, g)[0, 1]) < 0.5


def test_the_random_direction_catches_a_wrong_entry_the_sample_misses():
    x = np.random.default_rng(3).standard_normal((3, 16))
    report = tinynet.gradcheck(DenseOneEntryOfTheWrongSign(16, seed=1), x, max_entries=2)  # 2 of 256 entries sampled
    sampled = [i for i, _, _ in report.samples["denseoneentryofthewrongsign.W"]]
    assert (15, 15) not in sampled and report.errors["denseoneentryofthewrongsign.W"] < 1e-6  # the sample missed it
    assert report.errors["every entry, one random direction"] > 1e-6 and not report.ok  # the direction did not
    assert "every entry, one random direction" in str(report)
