"""Adam and SGD steps equal their formulas, in the parameter's dtype, on every backend."""

import math

import numpy as np
import pytest
from conftest import host, tol

from tinynet import Parameter
from tinynet.optim import SGD, Adam


def make_param(backend, dtype, seed=0):
    rng = np.random.default_rng(seed)
    p = Parameter(backend.asarray(rng.standard_normal((3, 4)).astype(dtype)))
    return p, rng


def test_adam_matches_the_formula_over_several_steps(backend, dtype):
    p, rng = make_param(backend, dtype)
    w = host(p.data).astype(np.float64)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    opt = Adam([p], lr=lr)
    for t in range(1, 6):
        g = rng.standard_normal(w.shape).astype(dtype)
        p.grad = backend.asarray(g)
        opt.step()
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
        assert p.data.dtype == dtype
        np.testing.assert_allclose(host(p.data), w, **tol(dtype))
    assert opt.t == 5


def test_adamw_shrinks_weights_before_the_adam_step_and_leaves_1d_parameters_alone(backend, dtype):
    p, rng = make_param(backend, dtype)  # (3, 4): a weight, decayed
    b = Parameter(backend.asarray(rng.standard_normal(4).astype(dtype)))  # a bias: not decayed
    lr, wd, b1, b2, eps = 0.01, 0.5, 0.9, 0.999, 1e-7
    w, bias = host(p.data).astype(np.float64), host(b.data).astype(np.float64)
    state = {"w": [np.zeros_like(w), np.zeros_like(w)], "b": [np.zeros_like(bias), np.zeros_like(bias)]}
    opt = Adam([p, b], lr=lr, weight_decay=wd)
    for t in range(1, 5):
        opt.lr = lr / t  # the decay follows the current rate, as a schedule sets it
        gw, gb = rng.standard_normal(w.shape).astype(dtype), rng.standard_normal(bias.shape).astype(dtype)
        p.grad, b.grad = backend.asarray(gw), backend.asarray(gb)
        opt.step()
        w = w * (1 - lr / t * wd)
        out = []
        for value, g, (m, v) in ((w, gw, state["w"]), (bias, gb, state["b"])):
            m[:] = b1 * m + (1 - b1) * g
            v[:] = b2 * v + (1 - b2) * g * g
            out.append(value - lr / t * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps))
        w, bias = out
        assert p.data.dtype == dtype and b.data.dtype == dtype
        np.testing.assert_allclose(host(p.data), w, **tol(dtype))
        np.testing.assert_allclose(host(b.data), bias, **tol(dtype))


def test_adamw_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((5, 3))
    p = Parameter(w0.copy())
    tw = torch.tensor(w0, requires_grad=True)
    # Keras's Adam adds eps to sqrt(v), PyTorch to sqrt(v / (1 - b2^t)): a tiny eps makes the two forms agree
    ours = Adam([p], lr=0.01, weight_decay=0.1, eps=1e-12)
    theirs = torch.optim.AdamW([tw], lr=0.01, weight_decay=0.1, eps=1e-12)
    for _ in range(6):
        g = rng.standard_normal(w0.shape)
        p.grad = g.copy()
        tw.grad = torch.tensor(g)
        ours.step()
        theirs.step()
    np.testing.assert_allclose(p.data, tw.detach().numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("wd", [-0.1, float("nan"), float("inf"), "0.1"])
def test_bad_weight_decay_is_rejected(wd):
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0"):
        Adam([Parameter(np.ones((2, 2)))], weight_decay=wd)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_matches_the_formula(backend, dtype, momentum):
    p, rng = make_param(backend, dtype)
    w = host(p.data).astype(np.float64)
    vel = np.zeros_like(w)
    opt = SGD([p], lr=0.1, momentum=momentum)
    for _ in range(4):
        g = rng.standard_normal(w.shape).astype(dtype)
        p.grad = backend.asarray(g)
        opt.step()
        vel = momentum * vel - 0.1 * g
        w = w + vel
        assert p.data.dtype == dtype
        np.testing.assert_allclose(host(p.data), w, **tol(dtype))


def test_optimizers_skip_non_trainable_parameters():
    p = Parameter(np.ones(3))
    frozen = Parameter(np.ones(3), trainable=False)
    opt = Adam([p, frozen])
    assert opt.params == [p]


@pytest.mark.parametrize("lr", [0, -1, float("nan"), float("inf"), "0.1"])
def test_bad_learning_rates_are_rejected(lr):
    with pytest.raises(ValueError, match="learning rate"):
        Adam([Parameter(np.ones(2))], lr=lr)


@pytest.mark.parametrize("t", [-1, 2**53 + 1, 10**400, 1.0, True, "3"])
def test_bad_step_counts_are_rejected_by_every_optimizer(t):
    for opt in (Adam([Parameter(np.ones(2))]), SGD([Parameter(np.ones(2))], lr=0.1)):
        with pytest.raises(ValueError, match=r"step count must be an integer in \[0, 2\*\*53\]"):
            opt.t = t  # Adam once raised OverflowError from NumPy for 10**400
        opt.t = 2**53
        assert opt.t == 2**53
