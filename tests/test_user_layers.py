"""A layer of your own: written in a few lines, checked with tinynet.testing, registered, saved and loaded."""

import re

import numpy as np
import pytest

import tinynet
from tinynet import Sequential
from tinynet.arrays import xp_of
from tinynet.layers import Dense, Flatten, Layer, ReLU, register
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import Adam
from tinynet.testing import assert_layer_ok, check_layer
from tinynet.train import fit


@pytest.fixture(autouse=True)
def _registry(monkeypatch):
    """Each test registers into a copy: a class registered here does not leak into other tests."""
    monkeypatch.setattr(tinynet.layers, "LAYERS", dict(tinynet.layers.LAYERS))


class Tanh(Layer):
    """y = tanh(x), elementwise: dx = dy * (1 - y^2)."""

    def forward(self, x, training=False):
        self._check_input(x)
        self.y = xp_of(x).tanh(x)
        return self.y

    def backward(self, dy):
        return dy * (1 - self.y * self.y)


def test_a_correct_layer_of_ones_own_passes_every_check_on_every_backend():
    result = assert_layer_ok(Tanh, (3, 5))
    names = {what for _, what, _, _ in result.rows}
    assert {"gradients (float64)", "float32 in, float32 out", "same numbers as NumPy", "forward leaves x alone",
            "backward leaves dy alone", "second backward", "get_config round trip"} <= names
    assert {b for b, _, _, _ in result.rows} >= set(tinynet.available_backends())


class TanhDyInPlace(Tanh):
    def backward(self, dy):
        dy *= 1 - self.y * self.y  # writes into the caller's dy
        return dy


class TanhXInPlace(Tanh):
    def forward(self, x, training=False):
        self._check_input(x)
        self.y = xp_of(x).tanh(x, out=x)  # overwrites the caller's input
        return self.y


class TanhFloat64(Tanh):
    def forward(self, x, training=False):
        self._check_input(x)
        self.y = xp_of(x).tanh(x.astype(np.float64))
        return self.y


class TanhWrongGradient(Tanh):
    def backward(self, dy):
        return dy * (1 - self.y)


class TanhUnsavable(Tanh):
    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale

    def get_config(self):
        return {"scale": object()}  # not JSON


@pytest.mark.parametrize(("layer", "check"), [
    (TanhDyInPlace, "backward leaves dy alone"), (TanhXInPlace, "forward leaves x alone"),
    (TanhFloat64, "float32 in, float32 out"), (TanhWrongGradient, "gradients (float64)"),
    (TanhUnsavable, "get_config round trip"),
])
def test_each_kind_of_mistake_fails_its_own_check_with_a_readable_table(layer, check):
    result = check_layer(layer, (3, 5), backends=["numpy"])
    failed = {what for _, what, passed, _ in result.rows if not passed}
    assert check in failed and not result.ok
    with pytest.raises(AssertionError, match=rf"(?s)check_layer\({layer.__name__}\):.*{re.escape(check)}\s+FAIL"):
        assert_layer_ok(layer, (3, 5), backends=["numpy"])


def test_a_registered_layer_trains_saves_and_loads_with_its_architecture(tmp_path):
    @register
    class LeakyReLU(Layer):
        """y = x for x > 0, alpha x otherwise."""

        def __init__(self, alpha=0.1):
            super().__init__()
            self.alpha = alpha

        def forward(self, x, training=False):
            self._check_input(x)
            self.slope = xp_of(x).where(x > 0, x.dtype.type(1), x.dtype.type(self.alpha))
            return x * self.slope

        def backward(self, dy):
            return dy * self.slope

        def get_config(self):
            return {"alpha": self.alpha}

    assert_layer_ok(lambda: LeakyReLU(0.2), (4, 6), x=np.random.default_rng(0).standard_normal((4, 6)) + 0.05)
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 1, 4, 4)).astype(np.float32), rng.integers(0, 3, 64)
    model = Sequential([Flatten(), Dense(8), LeakyReLU(0.2), Dense(3)], input_shape=(1, 4, 4), seed=0)
    fit(model, SoftmaxCrossEntropy(), Adam(model.parameters(), lr=0.01), x, y, epochs=2, verbose=False)
    loaded = tinynet.load_model(model.save(tmp_path / "leaky.safetensors"))
    assert isinstance(loaded.layers[2], LeakyReLU) and loaded.layers[2].alpha == 0.2
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_registration_refuses_what_a_file_could_not_name_uniquely():
    with pytest.raises(TypeError, match="register takes a subclass of tinynet.layers.Layer"):
        register(int)

    class ReLU_(ReLU):
        pass

    ReLU_.__name__ = "ReLU"
    with pytest.raises(ValueError, match="a layer class named 'ReLU' is registered already"):
        register(ReLU_)
    assert register(Dense) is Dense  # again: harmless
