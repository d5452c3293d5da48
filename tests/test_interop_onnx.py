"""ONNX export: the inference graph passes onnx.checker and ONNX Runtime gives tinynet's logits."""

import os

import numpy as np
import pytest

from tinynet import Sequential, models
from tinynet.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sigmoid, Softmax

try:
    import onnxruntime as ort
except ImportError as exc:  # CI installs it (make test): there its absence is a failure
    if os.environ.get("CI"):
        raise
    pytest.skip(f"needs onnx and onnxruntime: {exc}", allow_module_level=True)

from tinynet.interop.onnx import export  # noqa: E402


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"images": x})[0]


def _trained_looking(model, seed=1):
    """Weights and BatchNorm statistics away from their initial values, as after training."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for p in list(layer.params.values()):
            p.data = p.data + rng.standard_normal(p.data.shape).astype(p.data.dtype) * 0.05
        if "moving_mean" in layer.state:
            layer.state["moving_mean"].data = rng.standard_normal(layer.state["moving_mean"].shape).astype(np.float32) * .1
            layer.state["moving_variance"].data = rng.uniform(0.5, 2, layer.state["moving_variance"].shape).astype(np.float32)
    return model


@pytest.mark.parametrize("name", models.MODELS)
def test_every_model_of_the_zoo_gives_the_same_logits_in_onnx_runtime(name, fashion, tmp_path):
    from tinynet.data import to_float

    _, (x_test, _) = fashion
    x = to_float(x_test[:256])
    model = _trained_looking(models.build(name, seed=0))
    got = run_onnx(export(model, tmp_path / f"{name}.onnx"), x)
    np.testing.assert_allclose(got, model.predict(x), rtol=0, atol=1e-5)


def test_asymmetric_padding_strides_batchnorm_on_vectors_and_a_final_dropout(tmp_path):
    model = Sequential([Conv2D(3, 3, stride=2, padding="same"), Sigmoid(), MaxPool2D(3, 2, padding="same"),
                        BatchNorm(), Flatten(), Dense(5), BatchNorm(), ReLU(), Dense(4), Softmax(), Dropout(0.5)],
                       input_shape=(2, 9, 8), seed=0)
    x = np.random.default_rng(0).random((7, 2, 9, 8), dtype=np.float32)
    model = _trained_looking(model)
    np.testing.assert_allclose(run_onnx(export(model, tmp_path / "m.onnx"), x), model.predict(x), rtol=0, atol=1e-6)


def test_the_cli_exports_a_checkpoint(tmp_path, capsys):
    from tinynet.checkpoint import save_checkpoint
    from tinynet.cli import main

    model = _trained_looking(models.build("cnn_dropout02", seed=0))
    ckpt = save_checkpoint(tmp_path / "c.safetensors", model)
    assert main(["export", str(ckpt), str(tmp_path / "m.onnx")]) == 0
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", x), model.predict(x), rtol=0, atol=1e-6)
    assert "m.onnx" in capsys.readouterr().out


def test_the_cli_exports_a_model_not_shaped_for_fashion_mnist(tmp_path, capsys):
    """export reads the architecture from the checkpoint: any Sequential, not only 1x28x28 -> 10."""
    from tinynet.cli import main

    model = _trained_looking(Sequential([Conv2D(3, 3, padding=1), ReLU(), Flatten(), Dense(4)], input_shape=(2, 5, 5),
                                        seed=0))
    path = model.save(tmp_path / "small.safetensors")
    assert main(["export", str(path), str(tmp_path / "small.onnx")]) == 0
    x = np.random.default_rng(0).random((3, 2, 5, 5), dtype=np.float32)
    np.testing.assert_allclose(run_onnx(tmp_path / "small.onnx", x), model.predict(x), rtol=0, atol=1e-6)
