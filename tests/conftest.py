import tinynet  # noqa: I001  (before NumPy: see tinynet/cpu_threads.py)
import os

import numpy as np
import pytest

from fake_cupy import installed as cupy_standin
from tinynet import optional
from tinynet.backend import BackendUnavailable

# "cupy" is CuPy on a real GPU (skipped without one); "cupy-standin" is the same backend code and the same
# CUDA kernels, run on the host through the strict CuPy stand-in (tests/fake_cupy.py) on every machine.
BACKENDS = ["numpy", "numba", pytest.param("cupy", marks=pytest.mark.gpu), "cupy-standin"]


def skip_reason(name):
    """Why the backend ``name`` is not usable here, in one short line: pytest -ra groups the skips by it (the whole
    story is BackendUnavailable's message, which tests/test_cli.py checks)."""
    if name == "cupy":
        return "no CUDA device (CuPy finds none)" if optional.installed("cupy") else "CuPy is not installed"
    return f"{name} is not installed"


@pytest.fixture
def standin():
    """The CuPy stand-in, installed as the "cupy" backend for one test."""
    with cupy_standin() as fake:
        yield fake


@pytest.fixture(params=["standin", pytest.param("gpu", marks=pytest.mark.gpu)])
def cp(request):
    """The module the "cupy" backend runs on: the stand-in everywhere, and real CuPy where a GPU is."""
    if request.param == "standin":
        with cupy_standin() as fake:
            yield fake
        return
    try:
        tinynet.get_backend("cupy")
    except BackendUnavailable:
        pytest.skip(skip_reason("cupy"))
    yield tinynet.get_backend("cupy").xp


DTYPES = [np.float32, np.float64]
# Per-dtype tolerances for comparing two computations of the same thing.
TOL = {np.dtype(np.float32): dict(rtol=1e-4, atol=1e-5), np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12)}


def tol(dtype):
    return TOL[np.dtype(dtype)]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Every test using this runs on each backend; unavailable ones skip with the reason."""
    if request.param == "cupy-standin":
        with cupy_standin():
            yield tinynet.use_backend("cupy")
        return
    try:
        b = tinynet.use_backend(request.param)
    except BackendUnavailable:
        if request.param == "numba" and os.environ.get("CI"):
            raise  # CI installs Numba: its absence there is a failure, not a skip
        pytest.skip(skip_reason(request.param))
    yield b
    tinynet.use_backend("numpy")


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture(autouse=True)
def _reset_backend():
    yield
    tinynet.use_backend("numpy")


def host(a):
    return tinynet.backend.to_numpy(a)


@pytest.fixture(scope="session")
def fashion():
    """The real Fashion-MNIST. CI installs it (make data); elsewhere its absence skips."""
    from tinynet.data import DataError, load_fashion_mnist

    try:
        return load_fashion_mnist(download=False)
    except DataError as exc:
        if os.environ.get("CI"):
            raise  # in CI the data must be there: fail loudly
        pytest.skip(f"real Fashion-MNIST not installed: {exc}")


@pytest.fixture
def no_work(monkeypatch):
    """Loading the data or training fails the test: a command's refusal of its arguments must come first."""
    from tinynet import experiment
    from tinynet.cli import commands

    def forbidden(*a, **k):
        raise AssertionError("the command started working before refusing its arguments")

    monkeypatch.setattr(commands, "_load_data", forbidden)
    monkeypatch.setattr(experiment, "load_data", forbidden)
    monkeypatch.setattr("tinynet.train.fit", forbidden)
