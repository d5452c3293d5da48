"""Dropout's mask and scaling, BatchNorm's two modes, dtype preservation, no mutation of dy."""

import numpy as np
import pytest
from conftest import host

import tinynet
from tinynet import models
from tinynet.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sigmoid, Softmax
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import Adam


def test_dropout_scales_survivors_and_is_identity_at_inference(backend):
    x = backend.asarray(np.ones((200, 50), dtype=np.float32))
    layer = Dropout(0.25, seed=3)
    y = host(layer.forward(x, training=True))
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    assert 0.70 < kept.mean() < 0.80  # 10,000 draws: far outside would be a bug
    assert y.dtype == np.float32
    dy = backend.asarray(np.full((200, 50), 2.0, dtype=np.float32))
    np.testing.assert_allclose(host(layer.backward(dy)), np.where(kept, 2 / 0.75, 0), rtol=1e-6)
    np.testing.assert_array_equal(host(layer.forward(x, training=False)), host(x))


def test_dropout_is_reproducible_from_its_seed_and_takes_an_injected_mask(backend):
    x = backend.asarray(np.ones((4, 6)))
    a = host(Dropout(0.5, seed=7).forward(x, training=True))
    b = host(Dropout(0.5, seed=7).forward(x, training=True))
    np.testing.assert_array_equal(a, b)
    layer = Dropout(0.5)
    mask = np.zeros((4, 6), dtype=bool)
    mask[:, 0] = True
    layer.fixed_mask = backend.asarray(mask)
    np.testing.assert_array_equal(host(layer.forward(x, training=True)), np.where(mask, 2.0, 0.0))


def test_batchnorm_training_normalises_and_inference_uses_running_stats(backend):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3, 4, 4)) * 5 + 2
    bn = BatchNorm(momentum=0.9, eps=1e-3)
    y = host(bn.forward(backend.asarray(x), training=True))
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-10)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), x.var(axis=(0, 2, 3)) / (x.var(axis=(0, 2, 3)) + 1e-3))
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(host(bn.state["moving_mean"].data), 0.1 * mean)
    np.testing.assert_allclose(host(bn.state["moving_variance"].data), 0.9 + 0.1 * var)
    # Inference: (x - running_mean) / sqrt(running_var + eps), not the batch's statistics.
    y_inf = host(bn.forward(backend.asarray(x), training=False))
    rm, rv = 0.1 * mean, 0.9 + 0.1 * var
    expect = (x - rm[None, :, None, None]) / np.sqrt(rv[None, :, None, None] + 1e-3)
    np.testing.assert_allclose(y_inf, expect, rtol=1e-10)
    assert bn.n_params() == (6, 6)


ALL_LAYERS = [
    lambda: Conv2D(2, 3, padding="same"), lambda: MaxPool2D(2), ReLU, Sigmoid, lambda: Dropout(0.3, seed=0),
    BatchNorm, Flatten,
]


@pytest.mark.parametrize("make", ALL_LAYERS)
def test_layers_preserve_dtype_and_never_mutate_dy(backend, dtype, make):
    rng = np.random.default_rng(0)
    x = backend.asarray(rng.standard_normal((2, 3, 6, 6)).astype(dtype))
    layer = make()
    y = layer.forward(x, training=True)
    assert y.dtype == dtype
    dy = backend.asarray(rng.standard_normal(y.shape).astype(dtype))
    dy_before = host(dy).copy()
    dx = layer.backward(dy)
    assert dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_array_equal(host(dy), dy_before)
    for p in layer.params.values():
        assert p.grad.dtype == dtype and p.grad.shape == p.data.shape


@pytest.mark.parametrize("make", [lambda: Dense(3), Softmax, lambda: BatchNorm()])
def test_vector_layers_preserve_dtype(backend, dtype, make):
    x = backend.asarray(np.random.default_rng(0).standard_normal((4, 5)).astype(dtype))
    layer = make()
    y = layer.forward(x, training=True)
    dx = layer.backward(y * 1)
    assert y.dtype == dtype and dx.dtype == dtype


def test_float32_stays_float32_through_a_whole_training_step(backend, dtype):
    model = models.build("cnn_dropout02", seed=0, dtype=dtype)
    model.to(backend.name)
    loss = SoftmaxCrossEntropy()
    opt = Adam(model.parameters())
    x = backend.asarray(np.random.default_rng(0).random((4, 1, 28, 28)).astype(dtype))
    y = backend.asarray(np.array([0, 1, 2, 3]))
    out = model.forward(x, training=True)
    value = loss.forward(out, y)
    model.backward(loss.backward())
    opt.step()
    assert out.dtype == dtype and value.dtype == dtype
    for p in model.parameters():
        assert p.data.dtype == dtype and p.grad.dtype == dtype
    for arr in opt.state_arrays().values():
        assert arr.dtype == dtype


def test_stable_loss_on_huge_float32_logits(backend):
    logits = np.array([[1000.0, 0.0], [-1000.0, 0.0]])
    labels = np.array([0, 0])
    ref = float(SoftmaxCrossEntropy().forward(backend.asarray(logits), backend.asarray(labels)))
    got = SoftmaxCrossEntropy().forward(backend.asarray(logits.astype(np.float32)), backend.asarray(labels))
    assert got.dtype == np.float32
    assert np.isfinite(float(got)) and float(got) == pytest.approx(ref, rel=1e-6)
    assert ref == pytest.approx(500.0)


def test_sequential_builds_lazily_from_the_first_input_dtype(backend):
    model = tinynet.Sequential([Conv2D(4, 3), ReLU(), Flatten(), Dense(3)])
    y = model.forward(backend.asarray(np.zeros((2, 1, 5, 5), dtype=np.float64)))
    assert y.shape == (2, 3) and y.dtype == np.float64
    assert model.layers[0].params["W"].data.shape == (4, 1, 3, 3)
