"""CUDA graph capture under CuPy's and CUDA's real rules.

First the stand-in (fake_cupy.py): each rule it models is CuPy 14.2.0's or CUDA's (the source is cited beside the
rule there), and each test here shows it refusing what they refuse, so code that breaks a rule fails on a machine
without a GPU. Then training: fit's default on the "cupy" backend captures the step under those rules, falls back
to plain steps when a capture fails, and captures again when an array the graph updates has been replaced.
"""

import contextlib
import warnings

import numpy as np
import pytest
from conftest import host
from helpers import tiny_data, tiny_model

import tinynet
from tinynet import models
from tinynet.callbacks import Callback
from tinynet.cuda_graph import GraphCaptureWarning
from tinynet.layers import ReLU
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import Adam
from tinynet.train import fit


@contextlib.contextmanager
def capturing(standin, stream=None, **kw):
    """A capture on a non-blocking stream, ended (whatever happened) when the block is left."""
    s = stream or standin.cuda.Stream(non_blocking=True)
    with s:
        s.begin_capture(**kw)
        try:
            yield s
        finally:
            if standin._capture.stream is s:  # the test did not end it
                with contextlib.suppress(Exception):
                    s.end_capture()


# -- the stand-in refuses what CuPy and CUDA refuse -----------------------------------------------------------------
@pytest.mark.parametrize("product", ["@", "matmul", "dot", "tensordot", "einsum", "method dot"])
def test_cublas_is_refused_while_the_stream_captures(standin, product):
    a, b = standin.asarray(np.ones((3, 4), np.float32)), standin.asarray(np.ones((4, 2), np.float32))
    call = {"@": lambda: a @ b, "matmul": lambda: standin.matmul(a, b), "dot": lambda: standin.dot(a, b),
            "tensordot": lambda: standin.tensordot(a, b, axes=1), "einsum": lambda: standin.einsum("ij,jk->ik", a, b),
            "method dot": lambda: a.dot(b)}[product]
    call()  # outside a capture: cuBLAS runs
    ints = standin.asarray(np.ones((3, 4), np.int64)), standin.asarray(np.ones((4, 2), np.int64))
    with capturing(standin) as s:
        with pytest.raises(NotImplementedError, match="calling cuBLAS API during stream capture is currently unsupported"):
            call()
        assert s.is_capturing()  # CuPy refuses before calling CUDA: the capture goes on
        ints[0] @ ints[1]  # integer products run CuPy's own kernel (_routines_linalg.pyx, tensordot_core): allowed
        assert isinstance(s.end_capture(), standin.cuda.Graph)


@pytest.mark.parametrize("read", ["get", "float", "int", "bool", "item", "tolist", "repr"])
def test_reads_back_to_the_host_are_refused_while_capturing(standin, read):
    a = standin.asarray(np.ones(1, np.float32))
    with capturing(standin) as s:
        with pytest.raises(RuntimeError, match="the current stream is capturing, so D2H transfers are disallowed"):
            {"get": a.get, "float": lambda: float(a), "int": lambda: int(a), "bool": lambda: bool(a),
             "item": a.item, "tolist": a.tolist, "repr": lambda: repr(a)}[read]()
        with pytest.raises(RuntimeError, match="so H2D transfers are disallowed"):
            standin.asarray(np.ones(3))
        assert s.is_capturing()  # checked by CuPy before CUDA is called: the capture is still valid
        s.end_capture()
    assert float(a[0]) == 1.0  # and after it, reads work again


def test_synchronising_a_capturing_stream_invalidates_the_capture(standin):
    s = standin.cuda.Stream(non_blocking=True)
    with s:
        s.begin_capture()
        with pytest.raises(standin.CUDARuntimeError, match="cudaErrorStreamCaptureUnsupported"):
            s.synchronize()
        with pytest.raises(RuntimeError, match="an error has invalidated the capture sequence"):
            s.is_capturing()
        with pytest.raises(standin.CUDARuntimeError, match="cudaErrorStreamCaptureInvalidated"):
            standin.zeros(2) + 1  # every launch after the error fails too
        with pytest.raises(standin.CUDARuntimeError, match="cudaErrorStreamCaptureInvalidated"):
            s.end_capture()
    assert not s.is_capturing()  # the failed end still ends it


def test_a_device_wide_synchronize_or_a_captured_event_is_refused_too(standin):
    s = standin.cuda.Stream(non_blocking=True)
    with s:
        s.begin_capture()
        with pytest.raises(standin.CUDARuntimeError, match="cudaErrorStreamCaptureUnsupported"):
            standin.cuda.Device().synchronize()
        with pytest.raises(standin.CUDARuntimeError, match="Invalidated"):
            s.end_capture()
        s.begin_capture()
        event = s.record()
        with pytest.raises(standin.CUDARuntimeError, match="cudaErrorStreamCaptureUnsupported"):
            event.synchronize()
        with contextlib.suppress(standin.CUDARuntimeError):
            s.end_capture()


def test_waiting_for_work_recorded_outside_the_capture_is_an_isolation_error(standin):
    outside = standin.cuda.get_current_stream().record()
    s = standin.cuda.Stream(non_blocking=True)
    s.wait_event(outside)  # before the capture: fine (what CapturedStep does on entering)
    with s:
        s.begin_capture()
        with pytest.raises(standin.CUDARuntimeError, match="cudaErrorStreamCaptureIsolation"):
            s.wait_event(outside)
        with pytest.raises(standin.CUDARuntimeError, match="Invalidated"):
            s.end_capture()


def test_the_legacy_stream_cannot_capture_nor_be_used_beside_a_blocking_capture(standin):
    with pytest.raises(RuntimeError, match="cannot capture on the default \\(legacy\\) stream"):
        standin.cuda.get_current_stream().begin_capture()
    blocking = standin.cuda.Stream()
    blocking.begin_capture()
    with pytest.raises(standin.CUDARuntimeError, match="cudaErrorStreamCaptureImplicit"):
        standin.zeros(3) + 1  # issued on the legacy stream while a blocking stream captures
    with pytest.raises(standin.CUDARuntimeError, match="Invalidated"):
        blocking.end_capture()


def test_work_on_another_stream_runs_at_once_and_is_not_in_the_graph(standin):
    a, b = standin.asarray(np.zeros(2)), standin.asarray(np.zeros(2))
    other = standin.cuda.Stream(non_blocking=True)
    with capturing(standin) as s:
        a += 1  # captured
        with other:
            b += 10  # not captured: runs now
            with pytest.raises(NotImplementedError, match="stand-in cannot run work on another stream"):
                a += 10  # the stand-in cannot tell what a GPU would do with this race, so it refuses it
        g = s.end_capture()
    np.testing.assert_array_equal(a.get(), 0)  # the captured add has not run
    np.testing.assert_array_equal(b.get(), 10)  # the other stream's has
    g.launch(stream=s)
    np.testing.assert_array_equal(a.get(), 1)
    np.testing.assert_array_equal(b.get(), 10)


def test_relaxed_mode_by_default_and_allocation_refused_in_global_mode(standin):
    with capturing(standin) as s:  # CuPy's default: relaxed, so a growing memory pool may call cudaMalloc
        standin.zeros(4) + 1
        s.end_capture()
    s = standin.cuda.Stream(non_blocking=True)
    with s:
        s.begin_capture(mode=standin.STREAM_CAPTURE_MODE_GLOBAL)
        with pytest.raises(standin.CUDARuntimeError, match="cudaErrorStreamCaptureUnsupported"):
            standin.zeros(4)
        with pytest.raises(standin.CUDARuntimeError, match="Invalidated"):
            s.end_capture()


def test_memory_made_during_a_capture_holds_garbage_until_the_graph_runs(standin):
    a = standin.asarray(np.arange(3.0))
    with capturing(standin) as s:
        b = a * 2
        g = s.end_capture()
    assert np.isnan(b.get()).all()  # on a GPU: whatever the allocator left there
    g.launch(stream=s)
    np.testing.assert_array_equal(b.get(), [0, 2, 4])


def test_graphs_come_only_from_a_capture_and_kernels_take_tuples(standin):
    with pytest.raises(NotImplementedError, match="must be created via stream capture"):
        standin.cuda.Graph()
    from tinynet.kernels import cupy_gpu

    k = cupy_gpu.module().get_function("relu_forward<float>")
    x = standin.asarray(np.ones(4, np.float32))
    with pytest.raises(TypeError, match="grid and block must be tuples"):
        k([1], [32], (x, x, np.int64(4)))
    with pytest.raises(TypeError, match="unexpected keyword argument 'shared'"):
        k((1,), (32,), (x, x, np.int64(4)), shared=0)


def test_launch_caches_each_compiled_function(standin, monkeypatch):
    from tinynet.kernels import cupy_gpu

    x = standin.asarray(np.ones(4, np.float32))
    cupy_gpu.relu_forward(x)
    calls = []
    original = type(cupy_gpu.module()).get_function
    monkeypatch.setattr(type(cupy_gpu.module()), "get_function", lambda self, name: calls.append(name) or original(self, name))
    for _ in range(3):
        cupy_gpu.relu_forward(x)
    assert calls == []  # built once, then taken from the cache


# -- training under those rules -------------------------------------------------------------------------------------
def _fit(model, x, y, **kw):
    kw = {"epochs": 2, "batch_size": 16, "seed": 0, "verbose": False, **kw}
    opt = Adam(model.parameters(), lr=0.01)
    h = fit(model, SoftmaxCrossEntropy(), opt, x, y, **kw)
    return h, opt


def _state(model, opt):
    """Everything a run leaves behind on the device: weights, BatchNorm statistics, optimizer state, dropout counters."""
    arrays = {k: p.data for k, p in model.named_arrays().items()}
    arrays.update({f"optimizer.{k}": v for k, v in opt.state_arrays().items()})
    arrays.update({f"{layer.name}.calls": layer.calls for layer in model.layers if getattr(layer, "calls", None) is not None})
    return {k: host(v) for k, v in arrays.items()}


def _eager_like_the_graph():
    """Plain steps that multiply as a graph-replayed run does (tinynet/cuda_graph.py): the numbers to equal."""
    from tinynet.kernels import cupy_gpu

    return cupy_gpu.own_gemm()


def _count_captures(monkeypatch):
    """A list that grows by one per graph fit captured (CapturedStep._capture that succeeded)."""
    from tinynet.cuda_graph import CapturedStep

    captured, capture = [], CapturedStep._capture

    def counted(self):
        ok = capture(self)
        captured.extend([ok] if ok else [])
        return ok

    monkeypatch.setattr(CapturedStep, "_capture", counted)
    return captured


def test_default_fit_trains_cnn_dropout02_to_the_numpy_weights(cp, monkeypatch):
    """The issue's criterion: two epochs of the course CNN, captured as a graph by default, end at NumPy's weights."""
    captured = _count_captures(monkeypatch)
    rng = np.random.default_rng(0)
    x, y = rng.random((192, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 192)
    weights = {}
    for name in ("numpy", "cupy"):
        model = models.build("cnn_dropout02", seed=0).to(name)
        h, _ = _fit(model, x, y, batch_size=64)  # 3 full batches an epoch: fit captures the step by default
        weights[name] = {k: host(p.data) for k, p in model.named_arrays().items()}
        assert np.isfinite(h.history["loss"]).all()
    assert len(captured) == 2  # by default, and once per epoch (the learning rate may change between epochs)
    if getattr(cp, "IS_STANDIN", False):  # the products of the captured steps were tinynet's kernel's
        assert cp.launches_by_name.get("gemm<float>", 0) > 0
    for k, w in weights["numpy"].items():
        np.testing.assert_allclose(weights["cupy"][k], w, rtol=2e-4, atol=2e-5, err_msg=k)


class HostReadingReLU(ReLU):
    """A layer that reads a number back to the host in its training forward: no capture can hold it."""

    def forward(self, x, training=False):
        if training:
            float(x.max())
        return super().forward(x, training)


class SyncingReLU(ReLU):
    """A layer that synchronises the device in its training forward: it invalidates any capture."""

    def forward(self, x, training=False):
        if training:
            tinynet.get_backend().synchronize()
        return super().forward(x, training)


def _same_runs(cp, a, b):
    """Two runs' losses and state: bit for bit on the stand-in; on a GPU the loss totals are added by atomics."""
    exact = getattr(cp, "IS_STANDIN", False)
    np.testing.assert_allclose(a[0], b[0], rtol=0 if exact else 1e-6)
    assert a[1].keys() == b[1].keys()
    for k, w in b[1].items():
        np.testing.assert_allclose(a[1][k], w, rtol=0 if exact else 1e-6, atol=0 if exact else 1e-7, err_msg=k)


@pytest.mark.parametrize("bad_layer", [HostReadingReLU, SyncingReLU])
def test_a_capture_that_fails_falls_back_to_plain_steps_with_one_warning(cp, bad_layer):
    x, y = tiny_data()
    results = []
    for graph in (True, False):
        model = tiny_model(0)
        model.layers[1] = bad_layer()
        model.to("cupy")
        with warnings.catch_warnings(record=True) as caught, _eager_like_the_graph():
            warnings.simplefilter("always")
            h, opt = _fit(model, x, y, cuda_graph=graph)
        fallbacks = [w for w in caught if issubclass(w.category, GraphCaptureWarning)]
        assert len(fallbacks) == (1 if graph else 0)  # one line, once per run
        if graph:
            text = str(fallbacks[0].message)
            assert "could not be captured as a CUDA graph" in text and "\n" not in text
            assert fallbacks[0].filename == __file__  # it points at the user's fit() call, not inside tinynet
            assert ("D2H transfers are disallowed" if bad_layer is HostReadingReLU else "cudaErrorStream") in text
        results.append((h.history["loss"], _state(model, opt)))
    _same_runs(cp, *results)  # the failed capture ran nothing: the same steps as a plain run


def test_a_graph_cuda_refuses_only_at_the_end_of_the_capture_falls_back_too(standin, monkeypatch):
    """CuPy's end_capture also instantiates the graph (cupy/cuda/graph.pyx, Graph.from_stream): CUDA may refuse
    there, after every operation was accepted. That too is a fallback, not a crash."""
    original = standin.cuda.Stream.end_capture

    def refusing(self):
        original(self)
        raise standin.CUDARuntimeError(901)

    monkeypatch.setattr(standin.cuda.Stream, "end_capture", refusing)
    x, y = tiny_data()
    model = tiny_model(0).to("cupy")
    with pytest.warns(GraphCaptureWarning, match="cudaErrorStreamCaptureInvalidated"):
        h, _ = _fit(model, x, y, cuda_graph=True)
    assert len(h) == 2 and np.isfinite(h.history["loss"]).all()


class ReplaceArrays(Callback):
    """Replaces arrays the step updates in place by copies, as loading a checkpoint into the model would."""

    def __init__(self, what):
        self.what, self.done = what, False

    def on_batch_end(self, batch, logs, run):
        if self.done or batch < 3:
            return
        self.done = True
        if self.what == "parameters":
            for p in run.model.parameters():
                p.data = p.data.copy()
        elif self.what == "optimizer moments":
            run.optimizer.m = [m.copy() for m in run.optimizer.m]
        elif self.what == "dropout counter":
            dropout = next(layer for layer in run.model.layers if hasattr(layer, "calls"))
            dropout.calls = dropout.calls.copy()


@pytest.mark.parametrize("what", ["parameters", "optimizer moments", "dropout counter"])
def test_the_graph_is_captured_again_when_an_array_it_updates_is_replaced(cp, what, monkeypatch):
    """A replay after the swap would update the old arrays, which nothing reads any more: the weights would stop
    changing, or a checkpoint would save stale moments and dropout counters, without a word. Captured again, the
    run leaves exactly what the plain one leaves."""
    x, y = tiny_data(160)
    captured = _count_captures(monkeypatch)
    results = []
    for graph in (True, False):
        model = tiny_model(0).to("cupy")
        with _eager_like_the_graph():
            h, opt = _fit(model, x, y, epochs=1, cuda_graph=graph, sync_every=1, callbacks=[ReplaceArrays(what)])
        results.append((h.history["loss"], _state(model, opt)))
    assert len(captured) == 2  # the epoch's capture, and again after the swap
    _same_runs(cp, *results)
