"""A model and its loss must agree on what the model outputs: logits, or probabilities from a final Softmax.

A Keras course model ends in Softmax (trained with categorical_crossentropy); tinynet's SoftmaxCrossEntropy took
logits only, so such a model trained and evaluated on softmax(softmax(z)) without a word (an evaluate loss of 2.37
where the model's true cross-entropy was 32.8). Now ``from_logits=False`` computes Keras's loss on probabilities,
and fit, evaluate and the report refuse a model whose last layer disagrees with the loss, or whose output is not
one vector of class scores. An empty Sequential is refused when built.
"""

import numpy as np
import pytest

import tinynet
from tinynet import Sequential
from tinynet.layers import Conv2D, Dense, Flatten, ReLU, Softmax
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import Adam
from tinynet.train import evaluate, fit


def _softmax_model(seed=0):
    return Sequential([Flatten(), Dense(8), ReLU(), Dense(3), Softmax()], input_shape=(1, 4, 4), seed=seed)


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 4, 4)).astype(np.float32), rng.integers(0, 3, n)


def test_from_probabilities_is_kerass_clipped_cross_entropy_with_its_gradient(backend, dtype):
    rng = np.random.default_rng(1)
    p = rng.random((6, 4))
    p[0] = [1.0, 0.0, 0.0, 0.0]  # a probability of 0 at a label: clipped, a large finite loss, no NaN
    p /= p.sum(axis=1, keepdims=True)
    labels = np.array([1, 0, 3, 2, 2, 0])
    loss = SoftmaxCrossEntropy(from_logits=False)
    value = float(loss(backend.asarray(p.astype(dtype)), backend.asarray(labels)))
    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    expected = -np.log(clipped[np.arange(6), labels]).mean()
    assert np.isfinite(value) and value == pytest.approx(expected, rel=1e-6 if dtype == np.float32 else 1e-12)
    grad = tinynet.backend.to_numpy(loss.backward())
    want = np.zeros_like(p)
    inside = (p >= 1e-7) & (p <= 1 - 1e-7)
    want[np.arange(6), labels] = -1 / clipped[np.arange(6), labels] / 6
    np.testing.assert_allclose(grad, np.where(inside, want, 0), rtol=1e-5)


@pytest.mark.parametrize("from_logits", [True, False])
def test_float64_one_hot_rows_give_a_float32_model_float32_loss_and_gradient(backend, from_logits):
    # np.eye gives float64 rows: the loss computes in the model's dtype, or the next matmul refuses the gradient
    p = np.full((4, 3), 1 / 3, dtype=np.float32)
    rows = backend.asarray(np.eye(3)[[0, 1, 2, 0]])
    loss = SoftmaxCrossEntropy(from_logits=from_logits)
    assert loss(backend.asarray(p), rows).dtype == np.float32 and loss.backward().dtype == np.float32
    x, y = _data(8)
    model = _softmax_model() if not from_logits else Sequential(_softmax_model().layers[:-1], input_shape=(1, 4, 4))
    model.to(backend.name)
    loss(model.forward(backend.asarray(x), training=True), backend.asarray(np.eye(3)[y]))
    assert model.backward(loss.backward()).dtype == np.float32


def test_the_gradient_through_the_models_softmax_passes_gradcheck(backend):
    x, y = _data(3)
    report = tinynet.gradcheck(_softmax_model().to(backend.name), x.astype(np.float64), y,
                               SoftmaxCrossEntropy(from_logits=False))
    assert report.ok, str(report)


def test_a_softmax_model_trains_and_evaluates_with_the_true_cross_entropy():
    x, y = _data()
    model = _softmax_model()
    h = fit(model, SoftmaxCrossEntropy(from_logits=False), Adam(model.parameters(), lr=0.01), x, y, epochs=3,
            verbose=False)
    assert h.history["loss"][-1] < h.history["loss"][0]
    r = evaluate(model, SoftmaxCrossEntropy(from_logits=False), x, y)
    p = model.predict(x).astype(np.float64)
    assert r.loss == pytest.approx(-np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1)).mean(), rel=1e-9)


@pytest.mark.parametrize("where", ["fit", "evaluate", "report"])
def test_a_softmax_model_with_a_logits_loss_is_refused_everywhere(where):
    from tinynet.report import build_report

    x, y = _data()
    model = _softmax_model()
    call = {"fit": lambda: fit(model, SoftmaxCrossEntropy(), Adam(model.parameters()), x, y, verbose=False),
            "evaluate": lambda: evaluate(model, SoftmaxCrossEntropy(), x, y),
            "report": lambda: build_report(model, SoftmaxCrossEntropy(), x, y)}[where]
    before = {k: p.data.copy() for k, p in model.named_arrays().items()}
    with pytest.raises(ValueError, match="ends in Softmax, so it outputs probabilities.*from_logits=False"):
        call()
    for k, w in before.items():  # refused before any step
        np.testing.assert_array_equal(model.named_arrays()[k].data, w)


def test_probabilities_expected_from_a_model_that_gives_logits_are_refused():
    x, y = _data()
    model = Sequential([Flatten(), Dense(3)], input_shape=(1, 4, 4), seed=0)
    with pytest.raises(ValueError, match="takes probabilities, but model 'sequential' ends in Dense"):
        evaluate(model, SoftmaxCrossEntropy(from_logits=False), x, y)


def test_a_model_whose_output_is_not_class_scores_is_refused_naming_both_shapes():
    x, y = _data()
    model = Sequential([Conv2D(3, 3)], input_shape=(1, 4, 4), seed=0)
    with pytest.raises(ValueError, match=r"takes \(N, K\) class scores, but model 'sequential' outputs samples of "
                                         r"shape \(3, 2, 2\)"):
        fit(model, SoftmaxCrossEntropy(), Adam(model.parameters()), x, y, verbose=False)


def test_an_empty_sequential_is_refused_when_built():
    with pytest.raises(ValueError, match="Sequential needs at least one layer, got none"):
        Sequential([])


@pytest.mark.parametrize("bad", [0, "no", None])
def test_from_logits_must_be_a_bool(bad):
    with pytest.raises(TypeError, match="from_logits must be True or False"):
        SoftmaxCrossEntropy(from_logits=bad)


def test_the_cli_evaluates_a_softmax_model_with_the_cross_entropy_of_its_probabilities(fashion, tmp_path, capsys):
    """A Keras-style model saved from Python (last layer Softmax): `tinynet evaluate` must not apply a second softmax."""
    from tinynet.cli import main
    from tinynet.data import to_float

    model = Sequential([Flatten(), Dense(10, seed=0), Softmax()], input_shape=(1, 28, 28), seed=0)
    (x, y), (x_test, y_test) = fashion
    fit(model, SoftmaxCrossEntropy(from_logits=False), Adam(model.parameters(), lr=1e-2), to_float(x[:2000]), y[:2000],
        epochs=1, verbose=False)
    path = model.save(tmp_path / "softmax.safetensors")
    assert main(["evaluate", str(path)]) == 0
    p = model.predict(to_float(x_test)).astype(np.float64)
    true_loss = -np.log(np.clip(p[np.arange(len(y_test)), y_test], 1e-7, 1)).mean()
    assert f"loss {true_loss:.4f}" in capsys.readouterr().out
