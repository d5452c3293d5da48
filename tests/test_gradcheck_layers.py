"""Every layer and the loss pass a float64 finite-difference gradient check,
on shapes, strides and paddings drawn by hypothesis, on every backend."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tinynet
from tinynet import Sequential
from tinynet.gradcheck import numerical_derivative, relative_error
from tinynet.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sigmoid, Softmax
from tinynet.losses import SoftmaxCrossEntropy

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def check(make_layer, shape, seed, **kw):
    """Gradient-check at a random input (entries whose stencil would cross a kink are skipped and counted)."""
    x = np.random.default_rng(seed).standard_normal(shape)
    report = tinynet.gradcheck(make_layer(), x, seed=seed, **kw)
    assert report.ok, str(report)
    return report


paddings = st.one_of(st.sampled_from(["valid", "same"]), st.integers(0, 2))


@SETTINGS
@given(
    n=st.integers(1, 2), c=st.integers(1, 3), f=st.integers(1, 3),
    h=st.integers(3, 7), w=st.integers(3, 7),
    k=st.integers(1, 3), s=st.integers(1, 2), pad=paddings, seed=st.integers(0, 2**16),
)
def test_conv2d_gradcheck(backend, n, c, f, h, w, k, s, pad, seed):
    layer = lambda: Conv2D(f, k, stride=s, padding=pad, seed=seed)  # noqa: E731
    check(layer, (n, c, h, w), seed)


@pytest.mark.parametrize("pad", ["same", "valid", 2])
def test_conv2d_gradcheck_on_a_plane_large_enough_for_the_direct_path(backend, pad):
    """The shapes above are too small for conv_direct_pays; 22x23 planes take the direct path where it pays."""
    x_shape = (2, 2, 22, 23)
    check(lambda: Conv2D(3, 3, padding=pad, seed=5), x_shape, seed=5)
    layer = Conv2D(3, 3, padding=pad, seed=5)  # gradcheck checks a copy: which path did this shape take?
    layer(backend.asarray(np.zeros(x_shape, np.float64)))
    assert layer.direct == (backend.name == "numba")  # the only backend where it pays


@SETTINGS
@given(
    n=st.integers(1, 2), c=st.integers(1, 2), h=st.integers(2, 7), w=st.integers(2, 7),
    k=st.integers(1, 3), s=st.integers(1, 3), pad=st.sampled_from(["valid", "same"]), seed=st.integers(0, 2**16),
)
def test_maxpool2d_gradcheck(backend, n, c, h, w, k, s, pad, seed):
    assume(pad == "same" or (k <= h and k <= w))  # else no output pixel: the layer rejects it
    check(lambda: MaxPool2D(k, stride=s, padding=pad), (n, c, h, w), seed)


@SETTINGS
@given(n=st.integers(1, 4), i=st.integers(1, 6), o=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_dense_gradcheck(backend, n, i, o, seed):
    check(lambda: Dense(o, seed=seed), (n, i), seed)


@pytest.mark.parametrize("make", [ReLU, Sigmoid, Softmax, Flatten], ids=lambda m: m.__name__)
@SETTINGS
@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=4), seed=st.integers(0, 2**16))
def test_elementwise_gradcheck(backend, make, shape, seed):
    if make is Softmax:
        shape = shape[:2]
    check(make, tuple(shape), seed)


@SETTINGS
@given(shape=st.sampled_from([(3, 4), (2, 3, 4, 4), (5, 2)]), rate=st.floats(0.1, 0.8), seed=st.integers(0, 2**16))
def test_dropout_gradcheck(backend, shape, rate, seed):
    check(lambda: Dropout(rate, seed=seed), shape, seed)


@pytest.mark.parametrize("training", [True, False])
@SETTINGS
@given(shape=st.sampled_from([(4, 3), (3, 2, 3, 3), (2, 5)]), seed=st.integers(0, 2**16))
def test_batchnorm_gradcheck(backend, training, shape, seed):
    def make():
        bn = BatchNorm()
        bn.build(shape[1:], np.float64)
        rng = np.random.default_rng(seed)  # non-trivial gamma/beta/running stats
        c = shape[1]
        for key in ("gamma", "beta"):
            bn.params[key].data = bn.params[key].data + backend.asarray(rng.standard_normal(c))
        bn.state["moving_mean"].data = backend.asarray(rng.standard_normal(c))
        bn.state["moving_variance"].data = backend.asarray(rng.uniform(0.5, 2, c))
        return bn

    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2 + 1
    if training:
        report = tinynet.gradcheck(make(), x, seed=seed)
    else:
        # Inference mode: check through a wrapper model that runs forward(training=False).
        layer = make()
        y0 = layer.forward(backend.asarray(x), training=False)
        g = backend.asarray(rng.standard_normal(y0.shape))
        dx = host(layer.backward(g))
        xd = backend.asarray(x)
        numeric = [numerical_derivative(lambda: float((layer.forward(xd) * g).sum()), xd, i, 1e-4)
                   for i in np.ndindex(*shape)]
        assert relative_error(dx.reshape(-1), numeric) < 1e-6  # gradcheck.TOLERANCE
        return
    assert report.max_error < 1e-6, str(report)


@pytest.mark.parametrize("onehot", [False, True])
@SETTINGS
@given(n=st.integers(1, 5), k=st.integers(2, 6), scale=st.floats(0.1, 5), seed=st.integers(0, 2**16))
def test_softmax_cross_entropy_gradcheck(backend, onehot, n, k, scale, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, k)) * scale
    labels = rng.integers(0, k, n)
    y = np.eye(k)[labels] if onehot else labels
    loss = SoftmaxCrossEntropy()
    x, yd = backend.asarray(logits), backend.asarray(y)
    loss.forward(x, yd)
    analytic = host(loss.backward())
    numeric = [numerical_derivative(lambda: float(loss.forward(x, yd)), x, i, 1e-4) for i in np.ndindex(*logits.shape)]
    # Confident rows have gradients of 1e-7, below the stencil's round-off floor (~1e-12 / h): an absolute floor too
    np.testing.assert_allclose(analytic.reshape(-1), numeric, rtol=1e-6, atol=1e-10)


def test_whole_cnn_gradcheck_with_loss(backend):
    """The course's CNN (with dropout, mask frozen) checked end to end through the loss."""
    from tinynet.models import build

    model = build("cnn_dropout02", seed=1)
    rng = np.random.default_rng(0)
    report = tinynet.gradcheck(model, rng.random((2, 1, 28, 28)), rng.integers(0, 10, 2), SoftmaxCrossEntropy(),
                               max_entries=8)
    assert report.ok, str(report)
    assert set(report.errors) >= {"conv2d.W", "conv2d_1.W", "dense.W", "dense_1.b", "input"}


def test_gradcheck_catches_a_wrong_backward():
    """A test double whose backward has its sign flipped must fail the check."""

    class BrokenDense(Dense):
        def backward(self, dy):
            dx = super().backward(dy)
            self.params["W"].grad = -self.params["W"].grad
            return dx

    x = np.random.default_rng(0).standard_normal((3, 4))
    good = tinynet.gradcheck(Dense(2, seed=0), x)
    bad = tinynet.gradcheck(BrokenDense(2, seed=0), x)
    assert good.ok and not bad.ok
    assert bad.errors["brokendense.W"] > 0.5 and bad.errors["input"] < 1e-6  # named after its class


def host(a):
    return tinynet.backend.to_numpy(a)


def test_entries_whose_stencil_crosses_a_kink_are_skipped_and_counted():
    x = np.random.default_rng(0).standard_normal((2, 3)) + 3.0
    x[0, 1] = x[1, 2] = 0.0  # exactly on the ReLU's kink: a nudge either way switches it
    report = tinynet.gradcheck(ReLU(), x)
    assert report.ok and report.skipped["input"] == 2 and report.checked["input"] == 4, str(report)
    assert "2 entries skipped" in str(report)


def test_a_tie_a_nudge_breaks_is_a_kink_and_a_tie_no_nudge_can_break_is_not():
    x = np.array([[[[1.0, 1.0], [-2.0, 0.5]]]])  # a tie for the max: nudging the second 1.0 up makes it win
    report = tinynet.gradcheck(MaxPool2D(2), x)
    assert report.skipped["input"] == 2 and report.ok, str(report)  # both tied entries sit on the kink
    blocked = Sequential([ReLU(), MaxPool2D(2)])  # a window of ReLU-blocked zeros: every nudge leaves it 0, 0, 0, 0
    report = tinynet.gradcheck(blocked, -np.ones((1, 1, 2, 2)) - np.arange(4).reshape(1, 1, 2, 2))
    assert report.skipped["input"] == 0 and report.ok, str(report)


def test_a_tensor_whose_every_entry_sits_on_a_kink_is_reported_unchecked():
    report = tinynet.gradcheck(ReLU(), np.zeros((2, 2)))
    assert report.unchecked == ["input"] and not report.ok  # nothing at all was checked: no pass
    assert "unchecked (every entry on a kink): input" in str(report) and "FAIL" in str(report).splitlines()[-1]
    # a bias at 0 under all-zero inputs: ReLU(0 + b) has its kink at b = 0, so b cannot be checked; W can
    model = Sequential([Flatten(), Dense(3, seed=0), ReLU(), Dense(2, seed=1)], input_shape=(1, 2, 2), seed=0)
    report = tinynet.gradcheck(model, np.zeros((2, 1, 2, 2)), check_input=False)
    assert report.unchecked == ["dense.b"] and report.ok and "dense.b" in str(report).splitlines()[-1]


@pytest.mark.parametrize("name", __import__("tinynet.models", fromlist=["MODELS"]).MODELS)
def test_every_model_of_the_zoo_passes_gradcheck_from_the_cli(name, capsys):
    """`tinynet gradcheck MODEL` for every model `tinynet models` lists (float64, batch 4, 3 entries per tensor)."""
    from tinynet.cli import main

    assert main(["gradcheck", name, "--entries", "3", "--quiet"]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "PASS" in out and "FAIL" not in out


def _small_model(dropout=True):
    layers = [Flatten(), Dense(6, seed=0), ReLU()] + ([Dropout(0.5, seed=3)] if dropout else []) + [Dense(3, seed=1)]
    return Sequential(layers, input_shape=(1, 4, 4), dtype=np.float64, seed=0)


def test_the_printed_report_says_what_was_sampled_and_what_relative_error_means():
    rng = np.random.default_rng(0)
    report = tinynet.gradcheck(_small_model(), rng.standard_normal((5, 1, 4, 4)), rng.integers(0, 3, 5),
                               SoftmaxCrossEntropy(), max_entries=4)
    text = str(report)
    rows = {line.split()[0]: line for line in report.table().splitlines()[1:]}
    assert "4 of 96" in rows["dense.W"] and "4 of 6" in rows["dense.b"] and "4 of 80" in rows["input"]
    assert "4 of 96 entries of dense.W" in text  # the legend's example is the largest tensor of this check
    assert "relative error = |a - n| / (|a| + |n|)" in text and "Euclidean norm" in text
    assert "Above 1e-06 a tensor fails" in text and "1e-8 or less" in text
    assert "retried with h = 1e-05 and 1e-06, then skipped and counted" in text
    assert report.frozen_dropout == ["dropout"] and "the mask of each Dropout layer (dropout) was drawn once and frozen" in text
    assert text.splitlines()[-1].endswith("PASS")  # the verdict stays the last line


def test_analytic_beside_numeric_are_the_checked_entries_at_their_indices():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 1, 4, 4)), rng.integers(0, 3, 5)
    model, loss = _small_model(dropout=False), SoftmaxCrossEntropy()
    report = tinynet.gradcheck(model, x, y, loss, max_entries=4, check_input=False)
    loss.forward(model.forward(x, training=True), y)  # backprop by hand: the gradients the report must show
    model.backward(loss.backward())
    grads = {f"{layer.name}.{k}": host(p.grad) for layer in model.layers for k, p in layer.params.items()}
    shown = report.side_by_side(entries=4).splitlines()[1:]
    assert len(shown) == 4 + 4 + 4 + 3 + 1  # 4 entries of dense.W, dense.b, dense_1.W; dense_1.b has 3; the direction
    assert shown[-1].startswith("sum(grad * v), v random")
    for name, entries in report.samples.items():
        if name == "every entry, one random direction":
            continue
        assert len(entries) == min(4, grads[name].size) == len(set(i for i, _, _ in entries))
        for index, a, n in entries:
            assert a == grads[name][index] and abs(a - n) < 1e-8
            line = next(s for s in shown if s.startswith(f"{name}[{', '.join(map(str, index))}] "))
            printed_a, printed_n, _ = map(float, line.split()[-3:])
            assert printed_a == pytest.approx(a, rel=1e-11, abs=1e-20)
            assert printed_n == pytest.approx(n, rel=1e-11, abs=1e-20)
    assert "analytic (backprop)" not in report.format(entries=0)


def test_a_tensor_whose_checked_entries_are_all_zero_says_so():
    model = _small_model(dropout=False)
    model.layers[1].params["b"].data[:] = -100.0  # every ReLU is off: nothing reaches dense_1.W but zeros
    report = tinynet.gradcheck(model, np.random.default_rng(0).standard_normal((3, 1, 4, 4)), max_entries=3)
    rows = {line.split()[0]: line for line in report.table().splitlines()[1:]}
    assert rows["dense_1.W"].endswith("ok (all 0)") and rows["dense_1.b"].endswith("ok")
    assert "0 beside 0 is a true zero gradient" in str(report)


def test_the_cli_prints_the_sample_pairs_and_the_explanation(capsys):
    from tinynet.cli import main

    assert main(["gradcheck", "cnn_dropout02", "--entries", "3", "--show", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "3 of 102,400" in out and "3 of 102,400 entries of dense.W" in out
    assert sum(line.startswith("dense.W[") for line in out.splitlines()) == 1
    assert "analytic (backprop)" in out and "relative error =" in out and "frozen" in out
    assert main(["gradcheck", "cnn_dropout02", "--entries", "3", "--show", "0", "--quiet"]) == 0
    assert "analytic (backprop)" not in capsys.readouterr().out


# -- every layer of tinynet through tinynet.testing, the check users run on their own layers --------------------------
LAYER_CHECKS = {
    "Conv2D": (lambda: Conv2D(3, 3, stride=2, padding="same", seed=0), (2, 2, 7, 6)),
    "MaxPool2D": (lambda: MaxPool2D(2), (2, 2, 6, 6)),
    "Dense": (lambda: Dense(4, seed=0), (3, 5)),
    "Flatten": (Flatten, (2, 2, 3, 3)),
    "ReLU": (ReLU, (3, 5)),
    "Sigmoid": (Sigmoid, (3, 5)),
    "Softmax": (Softmax, (3, 5)),
    "Dropout": (lambda: Dropout(0.4, seed=3), (3, 6)),
    "BatchNorm": (BatchNorm, (4, 3, 4, 4)),
}


@pytest.mark.parametrize("name", LAYER_CHECKS)
def test_every_layer_passes_tinynet_testing_check_layer(name):
    from tinynet.testing import assert_layer_ok

    make, shape = LAYER_CHECKS[name]
    assert_layer_ok(make, shape)  # on every installed backend: gradients, dtypes, parity, no mutation, config
