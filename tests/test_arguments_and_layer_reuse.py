"""Arguments and assembly: one layer object used twice, NumPy scalars as hyper-parameters, half-done
optimizer steps. (NaN in the data: test_training.py; kernels on bad input: test_kernel_parity.py.)"""

import numpy as np
import pytest
from conftest import host
from helpers import tiny_data

import tinynet
from tinynet import Sequential
from tinynet.checkpoint import load_checkpoint, save_checkpoint
from tinynet.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sigmoid, Softmax
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import SGD, Adam
from tinynet.train import fit

EVERY_LAYER = {
    "ReLU": ReLU, "Sigmoid": Sigmoid, "Flatten": Flatten, "Dropout": lambda: Dropout(0.2, seed=0),
    "BatchNorm": BatchNorm, "MaxPool2D": lambda: MaxPool2D(1), "Conv2D": lambda: Conv2D(2, 1),
    "Dense": lambda: Dense(4), "Softmax": Softmax,
}


@pytest.mark.parametrize("kind", EVERY_LAYER)
def test_one_layer_object_twice_in_a_model_is_refused_when_the_model_is_built(kind):
    layer = EVERY_LAYER[kind]()
    with pytest.raises(ValueError, match=f"layers 1 and 3 are the same {type(layer).__name__} object.*wrong gradients"):
        Sequential([Flatten(), layer, ReLU(), layer])


def test_two_instances_of_the_same_layer_pass_the_gradient_check():
    """What the error tells the user to do gives correct gradients (the shared instance gave 0.4-0.55)."""
    model = Sequential([Flatten(), Dense(16), ReLU(), Dense(16), ReLU(), Dense(3)], input_shape=(1, 3, 3),
                       dtype="float64", seed=0)
    x = np.random.default_rng(0).standard_normal((4, 1, 3, 3))
    report = tinynet.gradcheck(model, x, np.array([0, 1, 2, 1]), SoftmaxCrossEntropy())
    assert report.ok, str(report)


NUMPY_SCALARS = {
    "Dense(np.int64(10))": lambda: Dense(np.int64(10), in_features=np.int32(4), seed=np.uint8(1)),
    "Conv2D(np.int64 everywhere)": lambda: Conv2D(np.int64(4), np.int32(3), stride=np.int64(1), padding=np.int64(1)),
    "MaxPool2D(np.int64(2))": lambda: MaxPool2D(np.int64(2), stride=(np.int16(2), 2)),
    "Dropout(np.float32(0.5))": lambda: Dropout(np.float32(0.5), seed=np.int64(3)),
    "BatchNorm(np.float64(0.9), np.float32(1e-3))": lambda: BatchNorm(np.float64(0.9), np.float32(1e-3)),
}


@pytest.mark.parametrize("case", NUMPY_SCALARS)
def test_numpy_scalars_are_accepted_and_keep_float32_float32(backend, case):
    layer = NUMPY_SCALARS[case]()
    x = np.random.default_rng(0).standard_normal((3, 4, 6, 6) if "Dense" not in case else (3, 4)).astype(np.float32)
    y = layer.forward(backend.asarray(x), training=True)
    assert y.dtype == np.float32
    dx = layer.backward(backend.asarray(np.ones(y.shape, np.float32)))
    assert dx.dtype == np.float32
    for p in list(layer.params.values()) + list(layer.state.values()):
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32, p.name


def test_batchnorm_with_numpy_momentum_saves_a_checkpoint_a_float32_model_loads(tmp_path):
    model = Sequential([Conv2D(2, 3, padding="same", seed=0), BatchNorm(momentum=np.float64(0.9)), Flatten(), Dense(3)],
                       input_shape=(1, 8, 8), seed=0)
    x, y = tiny_data()
    fit(model, SoftmaxCrossEntropy(), Adam(model.parameters(), lr=np.float32(1e-2)), x, y, epochs=1,
        batch_size=np.int64(16), verbose=False)
    assert all(p.data.dtype == np.float32 for p in model.named_arrays().values())
    save_checkpoint(tmp_path / "bn.safetensors", model)
    fresh = Sequential([Conv2D(2, 3, padding="same"), BatchNorm(), Flatten(), Dense(3)], input_shape=(1, 8, 8))
    load_checkpoint(tmp_path / "bn.safetensors", fresh)
    np.testing.assert_array_equal(fresh.predict(x), model.predict(x))


BAD_NUMBERS = {
    "Dense(True)": (lambda: Dense(True), "out_features must be an integer >= 1, got True"),
    "Dense(2.0)": (lambda: Dense(2.0), "out_features must be an integer >= 1, got 2.0"),
    "Conv2D(4, np.float64(3))": (lambda: Conv2D(4, np.float64(3.0)), "kernel_size must be a positive int"),
    "Dropout(nan)": (lambda: Dropout(float("nan")), r"Dropout rate must be a finite number in \[0, 1\)"),
    "Dropout(np.bool_)": (lambda: Dropout(np.bool_(True)), "Dropout rate must be a finite number"),
    "BatchNorm(eps=inf)": (lambda: BatchNorm(eps=np.inf), "BatchNorm eps must be a finite number > 0"),
    "Adam(lr=nan)": (lambda: Adam(_params(), lr=np.float32("nan")),
                     "learning rate must be a finite number > 0"),
    "SGD(lr=-1)": (lambda: SGD(_params(), lr=-1), "learning rate must be"),
    "fit(batch_size=True)": (lambda: _fit(batch_size=True), "batch_size must be an integer >= 1, got True"),
    "fit(epochs=np.float64(2))": (lambda: _fit(epochs=np.float64(2)), "epochs must be an integer >= 0"),
}


def _params():
    return Sequential([Dense(2)], input_shape=(2,)).parameters()


def _fit(**kw):
    model = Sequential([Flatten(), Dense(3)], input_shape=(1, 8, 8))
    fit(model, SoftmaxCrossEntropy(), Adam(model.parameters()), *tiny_data(), verbose=False, **kw)


@pytest.mark.parametrize("case", BAD_NUMBERS)
def test_bools_non_integers_and_non_finite_numbers_are_refused(case):
    make, message = BAD_NUMBERS[case]
    with pytest.raises(ValueError, match=message):
        make()


def test_fit_takes_numpy_integers():
    _fit(batch_size=np.int64(16), epochs=np.int32(1), sync_every=np.uint8(2))


@pytest.mark.parametrize("make", [lambda ps: Adam(ps), lambda ps: SGD(ps, lr=0.1, momentum=0.9)], ids=["Adam", "SGD"])
def test_an_optimizer_step_with_a_missing_gradient_changes_nothing(backend, make):
    model = Sequential([Flatten(), Dense(5, seed=0), ReLU(), Dense(3, seed=1)], input_shape=(1, 8, 8)).to(backend.name)
    opt = make(model.parameters())
    x, y = tiny_data(16)
    fit(model, SoftmaxCrossEntropy(), opt, x, y, epochs=1, batch_size=8, verbose=False)
    before = {k: host(p.data).copy() for k, p in model.named_arrays().items()}
    state = {k: host(v).copy() for k, v in opt.state_arrays().items()}
    t = opt.t
    model.parameters()[2].grad = None  # dense_1.W
    with pytest.raises(ValueError, match="dense_1.W has no gradient"):
        with tinynet.using_backend(backend.name):
            opt.step()
    assert opt.t == t
    for k, p in model.named_arrays().items():
        np.testing.assert_array_equal(host(p.data), before[k])
    for k, v in opt.state_arrays().items():
        np.testing.assert_array_equal(host(v), state[k])
    model.parameters()[2].grad = model.parameters()[2].data.T * 0  # a gradient of the wrong shape: the same
    with pytest.raises(ValueError, match=r"dense_1.W: gradient float32\[3, 5\] does not match the parameter float32\[5, 3\]"):
        with tinynet.using_backend(backend.name):
            opt.step()


def test_evaluation_batches_are_sized_by_the_largest_buffer():
    """deep_bn_cnn's widest convolution makes 288 x 784 floats of columns per image: batches stay under 128 MB."""
    from tinynet import models
    from tinynet.train import EVAL_BUFFER_BYTES, predict_logits

    model = models.build("deep_bn_cnn", seed=0)
    assert model.largest_buffer_per_sample() == 288 * 28 * 28 * 4
    seen = []
    forward = model.forward
    model.forward = lambda x, training=False: (seen.append(len(x)), forward(x, training))[1]
    predict_logits(model, np.zeros((300, 1, 28, 28), np.float32), batch_size=1000)
    cap = EVAL_BUFFER_BYTES // (288 * 28 * 28 * 4)
    assert seen == [cap, cap, 300 - 2 * cap]
    conv = model.layers[0]
    assert conv.cols is None and conv.x is not None  # inference keeps x, not the 9x larger columns
