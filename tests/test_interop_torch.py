"""PyTorch as a second gradient oracle: the same model and weights give the same loss and gradients."""

import os

import numpy as np
import pytest

from tinynet import Sequential, models
from tinynet.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sigmoid, Softmax

try:
    import torch
except ImportError as exc:  # CI installs the CPU wheel (make test): there its absence is a failure
    if os.environ.get("CI"):
        raise
    pytest.skip(f"needs PyTorch: {exc}", allow_module_level=True)

from tinynet.interop.torch import compare_gradients, from_torch, to_torch  # noqa: E402


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", models.MODELS)
def test_every_model_of_the_zoo_matches_pytorch_autograd(name, dtype):
    rng = np.random.default_rng(0)
    result = compare_gradients(models.build(name, seed=0), rng.random((4, 1, 28, 28)), rng.integers(0, 10, 4), dtype)
    assert result.ok, str(result)
    assert {r[0] for r in result.rows} >= {"input"} | {f"{layer.name}.W" for layer in models.build(name).layers
                                                      if isinstance(layer, (Conv2D, Dense))}


def test_asymmetric_same_padding_strides_and_every_layer_kind():
    model = Sequential([Conv2D(3, 3, stride=2, padding="same"), Sigmoid(), MaxPool2D(3, 2, padding="same"),
                        BatchNorm(0.9), Conv2D(4, (2, 3), padding=1), ReLU(), Flatten(), Dropout(0.3, seed=1),
                        Dense(5), BatchNorm(), Dense(4), Softmax()], input_shape=(2, 9, 8), seed=0)
    assert model.layers[0].pads == (1, 1, 0, 1)  # the extra column of 'same' padding on the right
    rng = np.random.default_rng(1)
    result = compare_gradients(model, rng.standard_normal((6, 2, 9, 8)), rng.integers(0, 4, 6))
    assert result.ok, str(result)


def test_a_wrong_gradient_fails_the_comparison():
    class Broken(Dense):
        def backward(self, dy):
            dx = super().backward(dy)
            self.params["b"].grad = self.params["b"].grad * 1.001
            return dx

    model = Sequential([Flatten(), Broken(10)], input_shape=(1, 4, 4), seed=0)
    result = compare_gradients(model, np.ones((3, 1, 4, 4)), np.array([0, 1, 2]))
    assert not result.ok and "FAIL" in str(result)


def test_weights_go_there_and_back():
    model = models.build("four_conv_bn_cnn", seed=0)
    x = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    twin = to_torch(model).eval()
    with torch.no_grad():
        np.testing.assert_allclose(twin(torch.as_tensor(x)).numpy(), model.predict(x), rtol=1e-4, atol=1e-5)
        for p in twin.parameters():
            p.add_(0.01)
    back = from_torch(twin, models.build("four_conv_bn_cnn", seed=1))
    with torch.no_grad():
        np.testing.assert_allclose(back.predict(x), twin(torch.as_tensor(x)).numpy(), rtol=1e-4, atol=1e-5)


def test_the_cli_checks_against_torch(capsys):
    from tinynet.cli import main

    assert main(["gradcheck", "one_conv_cnn", "--against", "torch", "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "against PyTorch's autograd (float64" in out and "(float32" in out and "FAIL" not in out
