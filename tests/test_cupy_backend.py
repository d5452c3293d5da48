"""The whole user path on the CuPy backend: through the strict stand-in on every machine, and on a real GPU (-m gpu).

The stand-in (fake_cupy.py) refuses every implicit host/device transfer as CuPy does, and runs the CUDA
kernels that ship. So a host/device mix-up anywhere below -- training, callbacks, evaluation, the report,
checkpoints, resume, prediction, gradcheck, the CLI, the benchmark -- fails here. The first tests check
that the stand-in is as strict as it claims (a stand-in that lets mistakes through would prove nothing).
"""

import json

import numpy as np
import pytest
from conftest import host
from helpers import tiny_data, tiny_model

import tinynet
from tinynet import models
from tinynet.callbacks import Callback, EarlyStopping, LearningRateScheduler, ModelCheckpoint, exponential_decay
from tinynet.checkpoint import load_checkpoint, save_checkpoint
from tinynet.layers import Dropout
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import SGD, Adam
from tinynet.train import evaluate, fit, predict_logits


# -- the stand-in is strict ------------------------------------------------------------------------------------------
def test_implicit_conversions_and_mixing_are_refused(standin):
    d = standin.asarray(np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(d)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.array(d)
    with pytest.raises(TypeError, match="NumPy array"):
        d + np.ones(3)
    with pytest.raises(TypeError):
        np.ones(3) + d
    with pytest.raises(TypeError, match="NumPy array"):
        d[np.array([0, 1])]
    with pytest.raises(TypeError, match="NumPy"):
        standin.concatenate([d, np.ones((1, 3))])
    with pytest.raises(TypeError, match="pickling"):
        __import__("pickle").dumps(d)
    assert isinstance(d.sum(), standin.ndarray) and d.sum().ndim == 0  # reductions stay on the device
    assert isinstance(np.exp(d), standin.ndarray)  # NumPy's functions dispatch to the device, as with CuPy
    assert float(d.sum()) == 15.0 and standin.stats["to_host"] == 1  # the transfer is explicit and counted


def test_capture_records_without_running_and_a_replay_repeats_the_launches(standin):
    s = standin.cuda.Stream(non_blocking=True)
    a = standin.asarray(np.ones(4))
    with s:
        s.begin_capture()
        a += 1
        b = a * 2
        with pytest.raises(RuntimeError, match="D2H transfers are disallowed"):
            float(b[0])  # no host reads while capturing
        g = s.end_capture()
    np.testing.assert_array_equal(a.get(), 1)  # capturing ran nothing
    g.launch(stream=s)
    g.launch(stream=s)
    np.testing.assert_array_equal(a.get(), 3)
    np.testing.assert_array_equal(b.get(), 6)  # same memory, rewritten by each replay


def test_kernel_arguments_are_checked_as_a_gpu_would_punish(standin):
    from tinynet.kernels import cupy_gpu

    k = cupy_gpu.module().get_function("relu_forward<float>")
    x, y = standin.asarray(np.ones(4, np.float32)), standin.asarray(np.zeros(4, np.float32))
    with pytest.raises(TypeError, match="pass numpy.int64, not int"):
        k((1,), (32,), (x, y, 4))  # a Python int is 8 bytes to CuPy: the kernel must get the exact C type
    with pytest.raises(TypeError, match="must be a float32 array, got float64"):
        k((1,), (32,), (x, standin.asarray(np.zeros(4)), np.int64(4)))
    with pytest.raises(ValueError, match="not C-contiguous"):
        k((1,), (32,), (standin.asarray(np.ones((4, 2), np.float32))[:, 0], y, np.int64(4)))
    with pytest.raises(TypeError, match="must be a device array"):
        k((1,), (32,), (np.ones(4, np.float32), y, np.int64(4)))
    k((1,), (32,), (x, y, np.int64(4)))
    np.testing.assert_array_equal(y.get(), 1)


# -- the user path ----------------------------------------------------------------------------------------------------
def _fit(model, opt, x, y, **kw):
    return fit(model, SoftmaxCrossEntropy(), opt, x, y, batch_size=16, seed=0, verbose=False, **kw)


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_epoch_end(self, epoch, logs, run):
        self.events.append((epoch, sorted(logs)))


def test_fit_with_every_callback_evaluate_and_report_on_device_data(cp, tmp_path):
    from tinynet.report import build_report, format_text

    model = tiny_model(0).to("cupy")
    opt = Adam(model.parameters(), lr=0.01)
    x, y = tiny_data()
    xv, yv = tiny_data(48, 1)
    rec = Recorder()
    callbacks = [EarlyStopping(patience=5, restore_best_weights=True), ModelCheckpoint(tmp_path / "best.safetensors"),
                 LearningRateScheduler(exponential_decay(0.01, 10)), rec]
    xd, yd = tinynet.get_backend("cupy").asarray(x), tinynet.get_backend("cupy").asarray(y)  # data already on the GPU
    h = _fit(model, opt, xd, yd, epochs=4, validation_data=(cp.asarray(xv), cp.asarray(yv)),
             callbacks=callbacks)
    assert len(h) == 4 and h.history["accuracy"][-1] > 0.8 and len(rec.events) == 4
    assert h.history["lr"][1] == pytest.approx(0.01 * 0.1**0.1)
    r = evaluate(model, SoftmaxCrossEntropy(), cp.asarray(xv), cp.asarray(yv))
    assert r["accuracy"] > 0.8 and isinstance(r["logits"], np.ndarray)
    report = build_report(model, SoftmaxCrossEntropy(), cp.asarray(xv), cp.asarray(yv),
                          cp.asarray(x), cp.asarray(y))
    assert report["test"]["accuracy"] == r["accuracy"] and "confusion matrix" in format_text(report)
    assert (tmp_path / "best.safetensors").exists()


def test_checkpoint_round_trip_and_resume_equal_the_uninterrupted_run(cp, tmp_path):
    x, y = tiny_data()
    whole = tiny_model(0).to("cupy")
    h_whole = _fit(whole, Adam(whole.parameters(), lr=0.01), x, y, epochs=3)

    first = tiny_model(0).to("cupy")
    opt = Adam(first.parameters(), lr=0.01)
    _fit(first, opt, x, y, epochs=2, callbacks=[ModelCheckpoint(tmp_path / "c.safetensors", monitor="loss")])
    resumed = tiny_model(0).to("cupy")
    h_resumed = _fit(resumed, Adam(resumed.parameters(), lr=0.01), x, y, epochs=3,
                     resume_from=tmp_path / "c.safetensors")
    assert h_resumed.history["loss"] == h_whole.history["loss"]  # dropout's generator state came back too
    for k, p in whole.named_arrays().items():
        np.testing.assert_array_equal(host(resumed.named_arrays()[k].data), host(p.data))

    save_checkpoint(tmp_path / "w.safetensors", whole)
    on_cpu = tiny_model(5)
    load_checkpoint(tmp_path / "w.safetensors", on_cpu)
    np.testing.assert_allclose(on_cpu.predict(x), whole.predict(x), rtol=1e-5, atol=1e-6)


def test_graph_replay_equals_eager_steps_and_needs_no_host_sync(cp):
    """A replayed step computes what the same step run plainly computes: bit for bit with the same GEMM kernel
    (a graph run multiplies with tinynet's kernel throughout), within float32 rounding of a cuBLAS run."""
    from tinynet.kernels import cupy_gpu

    x, y = tiny_data()
    results = {}
    for run in ("graph", "eager, same kernel", "eager, cuBLAS"):
        model = tiny_model(0).to("cupy")
        opt = Adam(model.parameters(), lr=0.01)
        with cupy_gpu.own_gemm() if run == "eager, same kernel" else __import__("contextlib").nullcontext():
            h = _fit(model, opt, x, y, epochs=3, cuda_graph=run == "graph")  # capture would raise on any host read
        results[run] = (h.history["loss"], {k: host(p.data) for k, p in model.named_arrays().items()}, opt.t)
    exact = getattr(cp, "IS_STANDIN", False)  # on a GPU the loss totals are added by atomics, in any order
    graph, same, cublas = results.values()
    assert graph[2] == same[2] == cublas[2] == 18
    np.testing.assert_allclose(graph[0], same[0], rtol=0 if exact else 1e-6)
    np.testing.assert_allclose(graph[0], cublas[0], rtol=1e-5)
    for k, w in same[1].items():
        np.testing.assert_allclose(graph[1][k], w, rtol=0 if exact else 1e-6, atol=0 if exact else 1e-7)
        np.testing.assert_allclose(graph[1][k], cublas[1][k], rtol=1e-4, atol=1e-5)


def test_the_step_reads_nothing_back_between_sync_points(standin):
    model = tiny_model(0).to("cupy")
    x, y = tiny_data(320)
    standin.reset_stats()
    _fit(model, Adam(model.parameters()), x, y, epochs=1, sync_every=10, cuda_graph=False)
    # 20 steps, synced at steps 10 and 20 (loss + totals each), and the epoch's totals once
    assert standin.stats["to_host"] == 5


def test_sgd_trains_without_a_graph(cp):
    model = tiny_model(0).to("cupy")
    h = _fit(model, SGD(model.parameters(), lr=0.1, momentum=0.9), *tiny_data(), epochs=3)
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_predict_gradcheck_and_moving_back(cp):
    model = tiny_model(0).to("cupy")
    opt = Adam(model.parameters(), lr=0.01)
    x, y = tiny_data()
    _fit(model, opt, x, y, epochs=1)
    p_host, p_dev = model.predict(x), model.predict(cp.asarray(x))
    assert isinstance(p_host, np.ndarray)
    np.testing.assert_array_equal(p_host, p_dev)
    report = tinynet.gradcheck(model, x[:2].astype(np.float64), y[:2], SoftmaxCrossEntropy(), max_entries=5)
    assert report.ok, str(report)
    model.to("numpy", optimizer=opt)
    np.testing.assert_allclose(model.predict(x), p_host, rtol=1e-5, atol=1e-6)
    _fit(model, opt, x, y, epochs=1)  # and it trains on there


def test_dropout_with_a_host_fixed_mask_names_both_backends(cp):
    tinynet.use_backend("cupy")
    layer = Dropout(0.5)
    layer.fixed_mask = np.ones((2, 3), bool)
    with pytest.raises(TypeError, match="fixed_mask is a numpy array but the layer runs on the 'cupy' backend"):
        layer.forward(cp.asarray(np.ones((2, 3), np.float32)), training=True)


def test_out_of_device_memory_halves_the_evaluation_batch(standin):
    model = models.build("cnn_dropout02", seed=0)
    x = np.random.default_rng(0).random((300, 1, 28, 28), dtype=np.float32)
    ref = predict_logits(model, x, batch_size=300)
    model.to("cupy")
    standin.memory_limit = 100 * 32 * 26 * 26 * 4  # one conv output of 100 images fits, of 300 does not
    np.testing.assert_allclose(predict_logits(model, x, batch_size=300), ref, rtol=1e-5, atol=1e-6)
    assert standin.get_default_memory_pool().freed >= 1
    standin.memory_limit = 16
    with pytest.raises(MemoryError, match="out of memory evaluating even one sample on cupy"):
        predict_logits(model, x, batch_size=300)


def test_the_cli_trains_evaluates_predicts_and_checks_on_cupy(cp, fashion, tmp_path, capsys):
    from tinynet.cli import main

    out = tmp_path / "run"
    assert main(["train", "--backend", "cupy", "--epochs", "1", "--limit-train", "512", "--lr", "3e-3", "--limit-test", "100",
                 "--validation", "100", "--out", str(out), "--quiet", "--no-plots"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["backend"] == "cupy" and metrics["test_accuracy"] > 0.4  # chance is 0.1
    ckpt = str(out / "best.safetensors")
    assert main(["evaluate", ckpt, "--backend", "cupy"]) == 0
    assert main(["predict", ckpt, "--backend", "cupy", "--index", "3"]) == 0
    assert main(["gradcheck", "--backend", "cupy", "--entries", "3"]) == 0
    assert main(["inspect", "--backend", "cupy", "--batch", "4"]) == 0
    text = capsys.readouterr().out
    assert "predicted:" in text and "PASS" in text and "loss" in text


def test_the_benchmark_runs_on_cupy(cp, fashion):
    from bench.train_epoch import run_tinynet

    for backend in ("cupy", "cupy-eager"):
        r = run_tinynet(backend, batch=32, n_images=320, seed=0, warmup=3, n_eval=200)
        assert r["device"] and r["train_s"] > 0 and 0 < r["accuracy"] <= 1 and r["device_peak_mb"] >= 0
    if getattr(cp, "IS_STANDIN", False):  # counting runs the CUDA source on the host (g++), so here only
        from bench.launches import count

        c = count("cnn_dropout02", 32)
        assert c["graph"] == 3 and 30 < c["eager"] < 80, c


def test_the_loss_without_totals_passes_no_null_pointer(cp):
    """CuPy turns a None kernel argument into a NULL argument slot, which the launch dereferences: never pass one."""
    tinynet.use_backend("cupy")
    loss = SoftmaxCrossEntropy()
    value = float(loss.forward(cp.asarray(np.zeros((3, 4), np.float32)), cp.asarray(np.array([0, 1, 2]))))
    assert value == pytest.approx(np.log(4))


def test_graphs_need_an_optimizer_that_counts_on_the_device(standin):
    model = tiny_model(0).to("cupy")
    with pytest.raises(ValueError, match="SGD counts steps on the host"):
        _fit(model, SGD(model.parameters(), lr=0.1), *tiny_data(), epochs=1, cuda_graph=True)
