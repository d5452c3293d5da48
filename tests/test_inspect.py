"""`tinynet inspect` and tinynet.inspection: the numbers are the model's, and the text explains them."""

import numpy as np
import pytest

from tinynet import Sequential
from tinynet.arrays import to_numpy
from tinynet.cli import main
from tinynet.inspection import inspect_model, settings
from tinynet.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from tinynet.layers.softmax import softmax
from tinynet.losses import SoftmaxCrossEntropy


def model_and_batch(seed=0):
    """A small CNN with every kind of row inspect explains, and images on a black background."""
    layers = [Conv2D(3, 3, seed=seed), ReLU(), BatchNorm(), MaxPool2D(2), Flatten(), Dense(5), ReLU(),
              Dropout(0.5, seed=seed), Dense(3)]
    model = Sequential(layers, input_shape=(1, 8, 8), dtype=np.float64, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.random((6, 1, 8, 8))
    x[:, :, :3] = 0  # a black band, as around a garment
    return model, x, rng.integers(0, 3, 6)


def test_settings_name_each_layers_hyperparameters():
    assert settings(Conv2D(8, 3)) == "3x3, stride 1, valid"
    assert settings(Conv2D(8, (3, 5), stride=(2, 1), padding=1)) == "3x5, stride 2x1, padding 1"
    assert settings(MaxPool2D(2, padding="same")) == "2x2, stride 2, same"
    assert settings(Dropout(0.25)) == "rate 0.25"
    assert settings(BatchNorm(momentum=0.9)) == "momentum 0.9"
    assert settings(ReLU()) == settings(Dense(4)) == ""


def test_the_rows_hold_the_models_own_numbers():
    model, x, y = model_and_batch()
    report = inspect_model(model, x, y)
    assert [r.name for r in report.rows] == ["input"] + [layer.name for layer in model.layers]
    assert report.rows[0].shape == x.shape and report.rows[0].zeros == pytest.approx((x == 0).mean())
    assert report.rows[0].mean == pytest.approx(x.mean()) and report.rows[0].std == pytest.approx(x.std())

    # The same pass by hand, on the model itself, gives the same gradients (the report ran on a copy: with the
    # same dropout generator state, the copy drew the same mask).
    loss = SoftmaxCrossEntropy()
    logits = model.forward(x, training=True)
    assert report.loss == pytest.approx(float(loss.forward(logits, y)))
    dx = model.backward(loss.backward())
    assert report.rows[0].grad_norm == pytest.approx(np.linalg.norm(dx))
    p = softmax(logits)
    p[np.arange(len(y)), y] -= 1  # dL/dlogits = (p - onehot) / N
    assert report.rows[-1].grad_norm == pytest.approx(np.linalg.norm(p / len(y)))
    dense = report.rows[-1]
    W = model.layers[-1].params["W"]
    assert dense.weights["W"] == ("W", (5, 3), pytest.approx(np.linalg.norm(W.data)), pytest.approx(np.linalg.norm(W.grad)))
    assert dense.weights["b"][3] == pytest.approx(np.linalg.norm(model.layers[-1].params["b"].grad))
    bn = report.rows[3]
    assert bn.weights["W"][0] == "gamma" and bn.weights["b"][0] == "beta"
    relu_out = np.maximum(model.layers[0].forward(x), 0)  # BatchNorm's input
    assert bn.gain == pytest.approx(np.mean(1 / np.sqrt(relu_out.var(axis=(0, 2, 3)) + 1e-3)))


def test_inspecting_leaves_the_model_as_it_was():
    model, x, y = model_and_batch()
    arrays = {k: to_numpy(p.data).copy() for k, p in model.named_arrays().items()}
    calls = model.layers[7].rng_state()
    inspect_model(model, x, y)
    for k, p in model.named_arrays().items():  # BatchNorm's moving statistics included
        np.testing.assert_array_equal(to_numpy(p.data), arrays[k], err_msg=k)
        assert not np.any(to_numpy(p.grad)), k
    assert model.layers[7].rng_state() == calls


def test_the_text_has_both_tables_a_legend_and_the_notes_with_this_batchs_numbers():
    model, x, y = model_and_batch()
    report = inspect_model(model, x, y)
    text = str(report)
    table = report.activations().splitlines()
    assert table[0].split() == ["layer", "settings", "output", "shape", "mean", "std", "zeros", "|dL/dout|"]
    assert table[2].startswith("input ") and "(6, 1, 8, 8)" in table[2]
    assert any(line.startswith("conv2d ") and "3x3, stride 1, valid" in line for line in table)
    assert any(line.startswith("dropout ") and "rate 0.5" in line for line in table)
    params = report.parameters().splitlines()
    assert params[0].split()[:5] == ["layer", "W", "and", "dW", "shape"] and "|dW|/|W|" in params[0]
    assert "|db|" in params[0] and [line.split()[0] for line in params[2:]] == ["conv2d", "batch_normalization",
                                                                             "dense", "dense_1"]
    assert "gamma (3,)" in report.parameters() and "beta (3,)" in report.parameters()
    assert "Euclidean norm of the whole tensor" in text and "dW always has W's shape" in text
    assert f"loss L = {report.loss:.4f}" in text and "ln 3 = 1.0986" in text
    conv = report.rows[1]
    assert conv.zeros > 0  # windows on the black band give W * 0 + b = 0
    assert f"conv2d outputs {conv.zeros:.0%} zeros although no ReLU has run yet" in text
    relu, bn = report.rows[2], report.rows[3]
    assert (f"|dL/dout| jumps from {bn.grad_norm:.3g} after batch_normalization to {relu.grad_norm:.3g} before it"
            in text) and f"gamma / sigma ({bn.gain:.3g} on average" in text


def test_no_zeros_note_once_the_bias_has_moved():
    model, x, y = model_and_batch()
    model.layers[0].params["b"].data[:] = 0.01  # a trained bias: W * 0 + b is no longer 0
    report = inspect_model(model, x, y)
    assert report.rows[1].zeros == 0 and "no ReLU has run yet" not in str(report)


def test_the_cli_inspects_a_fresh_model(capsys):
    assert main(["inspect", "cnn_dropout02", "--batch", "4", "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "through a fresh cnn_dropout02 (weights drawn from seed 0)" in out
    assert "\ninput " in out and "What the columns mean" in out and "rate 0.2" in out
    assert "W (1600, 64)" in out


def test_the_cli_inspects_a_trained_checkpoint(tmp_path, capsys):
    from tinynet import models
    from tinynet.checkpoint import save_checkpoint

    model = models.build("cnn_dropout02", seed=3)
    model.layers[0].params["b"].data[:] = 0.05  # as after training
    path = tmp_path / "trained.safetensors"
    save_checkpoint(path, model, epoch=4)
    assert main(["inspect", "--checkpoint", str(path), "--batch", "4", "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert f"through cnn_dropout02 from {path} (epoch 5)" in out
    conv = next(line for line in out.splitlines() if line.startswith("conv2d ") and "W (32, 1, 3, 3)" in line)
    norm_w, norm_b = (np.linalg.norm(model.layers[0].params[k].data) for k in ("W", "b"))
    assert f"{norm_w:.2e}" in conv and f"{norm_b:.2e}" in conv  # the checkpoint's weights, not fresh ones
    assert main(["inspect", "deep_bn_cnn", "--checkpoint", str(path), "--backend", "numpy"]) == 2
    assert "holds cnn_dropout02, not deep_bn_cnn" in capsys.readouterr().err
