import tinynet  # noqa: I001  (before NumPy: see tinynet/cpu_threads.py)
import numpy as np
import pytest

from tinynet.backend import BackendUnavailable

BACKENDS = ["numpy", "numba", pytest.param("cupy", marks=pytest.mark.gpu)]
DTYPES = [np.float32, np.float64]
# Per-dtype tolerances for comparing two computations of the same thing.
TOL = {np.dtype(np.float32): dict(rtol=1e-4, atol=1e-5), np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12)}


def tol(dtype):
    return TOL[np.dtype(dtype)]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Every test using this runs on each backend; unavailable ones skip with the reason."""
    try:
        b = tinynet.use_backend(request.param)
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
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
    import os

    from tinynet.data import DataError, load_fashion_mnist

    try:
        return load_fashion_mnist(download=False)
    except DataError as exc:
        if os.environ.get("CI"):
            raise  # in CI the data must be there: fail loudly
        pytest.skip(f"real Fashion-MNIST not installed: {exc}")
