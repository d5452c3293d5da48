"""Every backend computes what the NumPy reference computes; switching and moving work."""

import os
import sys

import numpy as np
import pytest
from conftest import host, tol
from helpers import tiny_data, tiny_model

import tinynet
from tinynet import optional
from tinynet.backend import BackendUnavailable
from tinynet.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sigmoid, Softmax
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import SGD, Adam
from tinynet.train import fit

LAYERS = {
    "conv_valid": (lambda: Conv2D(5, 3, seed=1), (3, 2, 9, 8)),
    "conv_same_s2": (lambda: Conv2D(4, (3, 2), stride=2, padding="same", seed=1), (2, 3, 7, 9)),
    "conv_pad1": (lambda: Conv2D(3, 5, padding=1, seed=1), (2, 2, 8, 8)),
    "pool": (lambda: MaxPool2D(2), (2, 3, 9, 8)),
    "pool_same_3s2": (lambda: MaxPool2D(3, 2, padding="same"), (2, 3, 7, 7)),
    "dense": (lambda: Dense(6, seed=1), (4, 7)),
    "relu": (ReLU, (3, 4, 5)),
    "sigmoid": (Sigmoid, (3, 4)),
    "softmax": (Softmax, (3, 6)),
    "flatten": (Flatten, (2, 3, 4, 5)),
    "dropout": (lambda: Dropout(0.4, seed=3), (4, 5, 6)),
    "batchnorm4d": (BatchNorm, (4, 3, 5, 5)),
    "batchnorm2d": (BatchNorm, (6, 4)),
}


def run_layer(make, x, dy, backend_name):
    with tinynet.using_backend(backend_name) as b:
        layer = make()
        y = layer.forward(b.asarray(x), training=True)
        dx = layer.backward(b.asarray(dy))
        grads = {k: host(p.grad) for k, p in layer.params.items()}
        return host(y), host(dx), grads


@pytest.mark.parametrize("name", LAYERS)
def test_layer_matches_numpy_reference(backend, dtype, name):
    make, shape = LAYERS[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    with tinynet.using_backend("numpy"):
        out_shape = make().forward(x, training=True).shape
    dy = rng.standard_normal(out_shape).astype(dtype)
    ref = run_layer(make, x, dy, "numpy")
    got = run_layer(make, x, dy, backend.name)
    for r, g in zip(ref[:2], got[:2], strict=True):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, r, **tol(dtype))
    for k in ref[2]:
        np.testing.assert_allclose(got[2][k], ref[2][k], **tol(dtype))


def test_loss_and_optimizers_match_numpy_reference(backend, dtype):
    rng = np.random.default_rng(1)
    logits, labels = rng.standard_normal((5, 4)).astype(dtype), rng.integers(0, 4, 5)
    results = {}
    for name in ("numpy", backend.name):
        with tinynet.using_backend(name) as b:
            loss = SoftmaxCrossEntropy()
            value = float(loss.forward(b.asarray(logits), b.asarray(labels)))
            d = host(loss.backward())
            p = tinynet.Parameter(b.asarray(logits.copy()))
            q = tinynet.Parameter(b.asarray(logits.copy()))
            p.grad, q.grad = b.asarray(d), b.asarray(d)
            Adam([p]).step()
            SGD([q], lr=0.1, momentum=0.9).step()
            results[name] = (value, d, host(p.data), host(q.data))
    ref, got = results["numpy"], results[backend.name]
    assert got[0] == pytest.approx(ref[0], rel=tol(dtype)["rtol"])
    for r, g in zip(ref[1:], got[1:], strict=True):
        np.testing.assert_allclose(g, r, **tol(dtype))


def test_short_training_run_gives_the_same_losses_as_numpy(backend):
    histories = {}
    for name in ("numpy", backend.name):
        model = tiny_model(seed=0).to(name)
        x, y = tiny_data()
        h = fit(model, SoftmaxCrossEntropy(), Adam(model.parameters(), lr=0.01), x, y, epochs=3, batch_size=16,
                seed=0, verbose=False)
        histories[name] = h.history["loss"]
    np.testing.assert_allclose(histories[backend.name], histories["numpy"], rtol=1e-4)


def test_gradcheck_runs_on_every_backend(backend):
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 6))
    report = tinynet.gradcheck(Conv2D(3, 3, padding="same", seed=0), x)
    assert report.ok, str(report)


def test_switch_context_manager_and_get_backend():
    assert tinynet.get_backend().name == "numpy"
    with tinynet.using_backend("numpy") as b:
        assert b.xp is np
    for name in tinynet.available_backends():
        with tinynet.using_backend(name):
            assert tinynet.get_backend().name == name
        assert tinynet.get_backend().name == "numpy"
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        tinynet.use_backend("tpu")


def test_model_to_moves_parameters_and_optimizer_state(backend):
    model = tiny_model()
    opt = Adam(model.parameters())
    x, y = tiny_data(32)
    fit(model, SoftmaxCrossEntropy(), opt, x, y, epochs=1, batch_size=16, verbose=False)
    before = model.predict(x)
    model.to(backend.name, optimizer=opt)
    assert model.backend == backend.name
    assert all(backend.owns(p.data) for p in model.parameters())
    assert all(backend.owns(a) for a in opt.state_arrays().values())
    np.testing.assert_allclose(model.predict(x), before, rtol=1e-5, atol=1e-6)
    fit(model, SoftmaxCrossEntropy(), opt, x, y, epochs=1, batch_size=16, verbose=False)  # keeps training there


def test_an_unavailable_backend_names_the_reason(monkeypatch):
    monkeypatch.setitem(optional._reasons, "numba", "ModuleNotFoundError: No module named 'numba' (simulated)")
    monkeypatch.delitem(optional._modules, "numba", raising=False)
    monkeypatch.delitem(tinynet.backend._cache, "numba", raising=False)
    with pytest.raises(BackendUnavailable, match=r"needs Numba.*No module named 'numba' \(simulated\)"):
        tinynet.use_backend("numba")
    if "cupy" not in tinynet.available_backends():
        with pytest.raises(BackendUnavailable, match="backend 'cupy' is not usable here"):
            tinynet.use_backend("cupy")


# A GEMM, then idle: CPU ticks burnt meanwhile by threads other than the main one (OpenBLAS's workers spinning).
_SPIN_PROBE = """
import os, time
import numpy as np
a = np.ones((400, 400), dtype=np.float32)
main = str(os.getpid())

def worker_ticks():
    total = 0
    for tid in os.listdir("/proc/self/task"):
        if tid != main:
            fields = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total

ticks = 0
for _ in range(4):
    a @ a
    before = worker_ticks()
    time.sleep(0.25)
    ticks += worker_ticks() - before
print(ticks)
"""


def _spin_ticks(prelude):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "OPENBLAS_NUM_THREADS",
                                                            "OMP_NUM_THREADS")}
    run = subprocess.run([sys.executable, "-c", prelude + _SPIN_PROBE], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    return int(run.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
                    reason="reads /proc; OpenBLAS has worker threads only with 2 or more cores")
@pytest.mark.parametrize("numpy_first", [False, True])
def test_openblas_threads_sleep_after_a_gemm_whatever_was_imported_first(numpy_first):
    """OpenBLAS reads its thread timeout when NumPy loads it: tinynet sets it if imported first, and otherwise makes
    the loaded OpenBLAS read it again when the Numba backend is chosen. Measured as CPU ticks its worker threads
    burn while the process sleeps after a matrix product."""
    if not optional.available("numba"):
        pytest.skip(f"needs Numba: {optional.why_unavailable('numba')}")
    unfixed = _spin_ticks("import numpy\n")
    if unfixed < 5:
        pytest.skip(f"OpenBLAS's threads did not spin here even without the timeout ({unfixed} ticks)")
    imports = "import numpy, tinynet" if numpy_first else "import tinynet, numpy"
    prelude = f"{imports}, warnings\nwarnings.simplefilter('error')\ntinynet.use_backend('numba')\n"
    assert _spin_ticks(prelude) <= 1, f"OpenBLAS's threads still spin (without tinynet: {unfixed} ticks)"
