"""tinynet.load_model: the architecture saved as JSON beside the weights, so any Sequential of tinynet's layers
comes back from its checkpoint alone, validated like every other metadata value before anything is built."""

import json

import numpy as np
import pytest
from helpers import tiny_data, tiny_model

import tinynet
from tinynet import Sequential, models
from tinynet.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from tinynet.cli import main
from tinynet.layers import BUILT_IN, LAYERS, BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sigmoid, Softmax
from tinynet.layers.base import Layer


def custom_model(dtype="float64"):
    """Not a zoo model: every layer class, arguments off their defaults, and a layer renamed by hand."""
    layers = [Conv2D(3, (3, 2), stride=(1, 2), padding=1, seed=5), Sigmoid(), MaxPool2D(2, stride=1, padding="same"),
              BatchNorm(momentum=0.8, eps=1e-4), Flatten(), Dropout(0.25, seed=9), Dense(7, seed=2), ReLU(),
              Dense(4), Softmax()]
    model = Sequential(layers, input_shape=(2, 6, 6), dtype=dtype, seed=1, name="my_net")
    model.layers[6].name = "hidden"
    return model.build((2, 6, 6))


def rewrite(path, **meta):
    """The checkpoint at ``path`` with metadata values replaced (None removes a key)."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    for k, v in meta.items():
        if v is None:
            header["__metadata__"].pop(k)
        else:
            header["__metadata__"][k] = v
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n :])
    return path


def test_every_layer_class_is_in_the_custom_model_and_the_registry():
    assert {type(layer).__name__ for layer in custom_model().layers} == {cls.__name__ for cls in BUILT_IN} == set(LAYERS)


@pytest.mark.parametrize("name", list(models.MODELS) + ["custom", "tiny"])
def test_get_config_rebuilds_the_same_model_and_predicts_the_same(name, tmp_path):
    model = custom_model() if name == "custom" else tiny_model(seed=2) if name == "tiny" else models.build(name, seed=0)
    config = model.get_config()
    assert json.loads(json.dumps(config)) == config  # plain JSON values
    again = Sequential.from_config(config)
    assert again.get_config() == config
    assert {k: p.shape for k, p in again.named_arrays().items()} == {k: p.shape for k, p in model.named_arrays().items()}
    # param_shapes (what load_model checks before building) is what building creates
    shape = model.input_shape
    for layer in model.layers:
        built = {k: tuple(p.shape) for k, p in list(layer.params.items()) + list(layer.state.items())}
        assert layer.param_shapes(shape) == built, layer.name
        shape = layer.output_shape(shape)
    path = model.save(tmp_path / "m.safetensors")
    loaded = tinynet.load_model(path)
    assert loaded.get_config() == config and loaded.name == model.name and loaded.dtype == model.dtype
    x = np.random.default_rng(0).random((3, *model.input_shape)).astype(model.dtype)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_a_loaded_custom_model_carries_on_training_like_the_original(tmp_path):
    """The dropout generator and BatchNorm statistics come back too: one more training step is the same."""
    from tinynet.losses import SoftmaxCrossEntropy
    from tinynet.train import train_step

    model = custom_model()
    x = np.random.default_rng(1).random((5, 2, 6, 6))
    y = np.array([0, 1, 2, 3, 0])
    loss, opt = SoftmaxCrossEntropy(), tinynet.optim.SGD(model.parameters(), lr=0.1)
    train_step(model, loss, opt, x, y)
    loaded = tinynet.load_model(model.save(tmp_path / "m.safetensors"))
    train_step(model, loss, opt, x, y)
    train_step(loaded, loss, tinynet.optim.SGD(loaded.parameters(), lr=0.1), x, y)
    for k, p in model.named_arrays().items():
        np.testing.assert_array_equal(loaded.named_arrays()[k].data, p.data, err_msg=k)


def test_load_model_on_another_backend(tmp_path, standin):
    path = tiny_model(seed=1).save(tmp_path / "m.safetensors")
    model = tinynet.load_model(path, backend="cupy")
    assert model.backend == "cupy" and tinynet.get_backend().name == "numpy"  # the current backend is left alone
    x = tiny_data(4)[0]
    np.testing.assert_allclose(model.predict(x), tinynet.load_model(path).predict(x), rtol=1e-5, atol=1e-6)


def test_an_old_checkpoint_without_architecture_loads_the_zoo_model_by_name(tmp_path):
    model = models.build("one_conv_cnn", seed=3)
    path = rewrite(model.save(tmp_path / "old.safetensors"), architecture=None)
    assert "architecture" not in read_checkpoint(path)[0]
    loaded = tinynet.load_model(path)
    assert loaded.name == "one_conv_cnn"
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_a_custom_model_without_architecture_says_how_to_load_it(tmp_path):
    path = rewrite(custom_model().save(tmp_path / "old.safetensors"), architecture=None)
    with pytest.raises(CheckpointError, match=r"holds no architecture.*'my_net'.*load_checkpoint\(path, model\)") as e:
        tinynet.load_model(path)
    assert str(path) in str(e.value)


def test_an_unregistered_layer_of_the_users_own_is_never_saved_silently(tmp_path):
    class Scale(Dense):  # a subclass: its constructor could take anything, so no config is written for it
        pass

    model = Sequential([Flatten(), Scale(3)], input_shape=(1, 4, 4), seed=0)
    with pytest.raises(ValueError, match=r"is a Scale, which tinynet cannot rebuild from a file: register the class "
                                         r"first with tinynet.layers.register\(Scale\)"):
        model.get_config()
    with pytest.warns(UserWarning, match=r"saving the weights only: layer 'scale' is a Scale.*register\(Scale\)"):
        path = save_checkpoint(tmp_path / "own.safetensors", model)
    assert "architecture" not in read_checkpoint(path)[0]
    twin = Sequential([Flatten(), Scale(3)], input_shape=(1, 4, 4), seed=1)
    load_checkpoint(path, twin)  # the weights still load into a model built in Python
    np.testing.assert_array_equal(twin.layers[1].params["W"].data, model.layers[1].params["W"].data)
    with pytest.raises(CheckpointError, match=r"holds no architecture \(layer 'scale' is a Scale, which tinynet "
                                              r"cannot rebuild"):
        tinynet.load_model(path)
    with pytest.raises(CheckpointError, match="cannot save the architecture: layer 'scale' is a Scale"):
        model.save(tmp_path / "strict.safetensors", architecture=True)
    assert not (tmp_path / "strict.safetensors").exists()
    path = model.save(tmp_path / "weights.safetensors", architecture=False)  # asked for: no warning
    with pytest.raises(CheckpointError, match=r"holds no architecture \(it was saved with architecture=False\)"):
        tinynet.load_model(path)


def forbidden(*args, **kwargs):
    raise AssertionError("a layer was built before the checkpoint was validated")


def _with_layers(path, layers):
    return rewrite(path, architecture=json.dumps(layers))


def test_architecture_and_tensors_must_agree_before_anything_is_built(tmp_path, monkeypatch):
    path = tiny_model().save(tmp_path / "m.safetensors")
    layers = json.loads(read_checkpoint(path)[0]["architecture"])
    layers[-1]["config"]["out_features"] = 10**9  # a Dense of 64 x 10**9 weights: must never be allocated
    _with_layers(path, layers)
    monkeypatch.setattr(Layer, "build", forbidden)
    with pytest.raises(CheckpointError, match=r"architecture does not match the saved tensors:\n  dense.W: "
                                              r"architecture \(64, 1000000000\), tensor \(64, 3\)") as e:
        tinynet.load_model(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("change,match", [
    (lambda layers: layers.__setitem__(0, {"class_name": "Lambda", "name": "l", "config": {}}), "unknown layer class"),
    (lambda layers: layers[0]["config"].update(out_channels=0), "out_channels must be an integer >= 1"),
    (lambda layers: layers[0]["config"].update(bias=False), "unexpected keyword argument 'bias'"),
    (lambda layers: layers.pop(4), "Dense takes samples of 1 dimensions"),  # no Flatten
])
def test_a_bad_architecture_is_one_checkpoint_error_before_anything_is_built(tmp_path, monkeypatch, change, match):
    path = tiny_model().save(tmp_path / "m.safetensors")
    layers = json.loads(read_checkpoint(path)[0]["architecture"])
    change(layers)
    _with_layers(path, layers)
    monkeypatch.setattr(Layer, "build", forbidden)
    with pytest.raises(CheckpointError, match=match) as e:
        tinynet.load_model(path)
    assert f"{path}: metadata 'architecture'" in str(e.value)


def test_an_absurd_input_shape_is_a_checkpoint_error(tmp_path):
    path = rewrite(tiny_model().save(tmp_path / "m.safetensors"), input_shape=f"[1, {'9' * 400}, 8]")
    with pytest.raises(CheckpointError, match="metadata 'architecture' is invalid: layer 0: the shapes overflow"):
        tinynet.load_model(path)


def test_an_architecture_needs_its_input_shape(tmp_path):
    path = rewrite(tiny_model().save(tmp_path / "m.safetensors"), input_shape=None)
    with pytest.raises(CheckpointError, match="metadata 'architecture' comes without the 'input_shape'"):
        tinynet.load_model(path)


def test_the_cli_evaluates_and_predicts_a_model_of_its_own(fashion, tmp_path, capsys):
    model = Sequential([Flatten(), Dense(16), ReLU(), Dense(10)], input_shape=(1, 28, 28), seed=0, name="mlp")
    path = model.save(tmp_path / "mlp.safetensors")
    assert main(["evaluate", str(path), "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"mlp from {path}") and "== test: accuracy" in out
    assert main(["predict", str(path), "--index", "2", "--backend", "numpy"]) == 0
    assert "predicted:" in capsys.readouterr().out


def test_the_cli_refuses_a_model_that_does_not_take_fashion_mnist(tmp_path, capsys):
    path = tiny_model().save(tmp_path / "tiny.safetensors")
    assert main(["predict", str(path), "--index", "0", "--backend", "numpy"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinynet: error:") and "(1, 8, 8)" in err and "(1, 28, 28)" in err
