"""Label smoothing: the loss trains towards (1 - e) * onehot + e / K, as Keras and PyTorch define it."""

import numpy as np
import pytest
from conftest import host, tol
from helpers import tiny_data, tiny_model

import tinynet
from tinynet.gradcheck import numerical_derivative
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import Adam
from tinynet.train import fit


def reference(logits, labels, e):
    """Loss and gradient in float64 with NumPy, written from the definition."""
    z = logits.astype(np.float64)
    n, k = z.shape
    target = np.eye(k)[labels] if labels.ndim == 1 else labels.astype(np.float64)
    target = (1 - e) * target + e / k
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    return -(target * logp).sum(1).mean(), (np.exp(logp) - target) / n


@pytest.mark.parametrize("onehot", [False, True])
@pytest.mark.parametrize("e", [0.1, 0.5])
def test_value_gradient_and_counts_on_every_backend(backend, dtype, onehot, e):
    rng = np.random.default_rng(3)
    logits = (rng.standard_normal((7, 5)) * 3).astype(dtype)
    labels = rng.integers(0, 5, 7)
    given = np.eye(5, dtype=dtype)[labels] if onehot else labels
    loss = SoftmaxCrossEntropy(label_smoothing=e)
    totals = backend.xp.zeros(2, dtype=np.float64)
    value = loss(backend.asarray(logits), backend.asarray(given), totals)
    grad = loss.backward()
    want_value, want_grad = reference(logits, given, e)
    assert value.dtype == dtype and grad.dtype == dtype and grad.shape == logits.shape
    np.testing.assert_allclose(float(value), want_value, **tol(dtype))
    np.testing.assert_allclose(host(grad), want_grad, **tol(dtype))
    np.testing.assert_allclose(host(totals), [want_value * 7, (logits.argmax(1) == labels).sum()], **tol(dtype))


def test_the_gradient_is_the_derivative_of_the_loss_in_float64():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((4, 6)), rng.integers(0, 6, 4)
    loss = SoftmaxCrossEntropy(label_smoothing=0.2)
    loss(logits, labels)
    analytic = loss.backward()

    def f():
        return float(SoftmaxCrossEntropy(label_smoothing=0.2)(logits, labels))

    for index in np.ndindex(logits.shape):
        numeric = numerical_derivative(f, logits, index, 1e-4)
        assert abs(numeric - analytic[index]) <= 1e-8 * max(1.0, abs(numeric)), index


def test_zero_smoothing_is_the_plain_loss_and_the_same_as_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    logits, labels = rng.standard_normal((8, 10)), rng.integers(0, 10, 8)
    for e in (0.0, 0.1, 0.3):
        loss = SoftmaxCrossEntropy(label_smoothing=e)
        value, grad = float(loss(logits, labels)), loss.backward()
        t = torch.tensor(logits, requires_grad=True)
        expected = torch.nn.functional.cross_entropy(t, torch.tensor(labels), label_smoothing=e)
        expected.backward()
        assert value == pytest.approx(expected.item(), rel=1e-12)
        np.testing.assert_allclose(grad, t.grad.numpy(), rtol=0, atol=1e-15)
    plain = SoftmaxCrossEntropy()
    assert float(plain(logits, labels)) == float(SoftmaxCrossEntropy(label_smoothing=0.0)(logits, labels))


@pytest.mark.parametrize("bad", [1.0, -0.1, float("nan"), True, "0.1"])
def test_a_smoothing_outside_zero_to_one_is_refused(bad):
    with pytest.raises((ValueError, TypeError), match="label_smoothing"):
        SoftmaxCrossEntropy(label_smoothing=bad)


def test_a_captured_cuda_graph_step_with_smoothing_equals_the_eager_steps(cp):
    """The smoothed targets are built by broadcasting, with no host read, so the step still captures."""
    from tinynet.kernels import cupy_gpu

    x, y = tiny_data()
    results = []
    for graph in (False, True):
        model = tiny_model(0).to("cupy")
        with cupy_gpu.own_gemm():  # the eager steps multiply as the graph-replayed run does (tinynet/cuda_graph.py)
            h = fit(model, SoftmaxCrossEntropy(label_smoothing=0.1), Adam(model.parameters(), lr=0.01), x, y,
                    epochs=2, batch_size=16, seed=0, verbose=False, cuda_graph=graph)
        results.append((h.history["loss"], host(model.layers[0].params["W"].data)))
    exact = getattr(cp, "IS_STANDIN", False)  # on a GPU the loss totals are added by atomics, in any order
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=0 if exact else 1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=0 if exact else 1e-6, atol=0 if exact else 1e-7)
    tinynet.use_backend("numpy")


def test_the_cli_trains_with_smoothing_and_reports_the_plain_test_loss(fashion, tmp_path, monkeypatch):
    """--label-smoothing reaches the training loss; the report's loss is the unsmoothed cross-entropy."""
    import json

    from tinynet.cli import main

    seen = []
    real_init = SoftmaxCrossEntropy.__init__

    def spy(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        seen.append(self.label_smoothing)

    monkeypatch.setattr(SoftmaxCrossEntropy, "__init__", spy)
    rc = main(["train", "--limit-train", "256", "--limit-test", "100", "--epochs", "1", "--validation", "0",
               "--backend", "numpy", "--label-smoothing", "0.1", "--quiet", "--no-plots", "--out", str(tmp_path)])
    assert rc == 0 and 0.1 in seen and 0.0 in seen
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["run"]["recipe"]["label_smoothing"] == 0.1
