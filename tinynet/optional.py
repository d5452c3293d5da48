"""The one place that imports the optional accelerators (Numba, CuPy).

Each import is tried once; if it fails we remember *why*, so that asking for
that backend later gives the real reason instead of a bare ImportError.
"""

from __future__ import annotations

import os

# How to install each optional library. The project is not on PyPI: the "tinynet" package there is another
# project, so installing "tinynet" with pip would fetch the wrong thing. From a checkout the extras work.
INSTALL = {
    "numba": 'pip install numba (or, in a tinynet checkout: pip install -e ".[numba]")',
    "cupy": 'in a tinynet checkout, pip install -e ".[cuda]" (that is: pip install "cupy-cuda13x[ctk]", for a CUDA 13 '
            "driver); with a CUDA 12 driver: pip install cupy-cuda12x",
    "pillow": 'pip install pillow (or, in a tinynet checkout: pip install -e ".[plot]")',
    "matplotlib": 'pip install matplotlib (or, in a tinynet checkout: pip install -e ".[plot]")',
    "torch": 'pip install torch (or, in a tinynet checkout: pip install -e ".[torch]")',
    "onnx": 'pip install onnx (or, in a tinynet checkout: pip install -e ".[onnx]", which adds ONNX Runtime)',
}

_modules: dict[str, object] = {}
_reasons: dict[str, str] = {}
_installed: set[str] = set()  # imported, but not usable here (CuPy without a CUDA device)


class NoDevice(RuntimeError):
    """CuPy imports, but finds no CUDA device (or no driver fit for it): the machine lacks, not the installation."""


def _try_numba():
    import numba

    # Which threads run Numba's parallel loops matters as much as the loops.
    # Measured on 2 cores, course CNN, batch 32, a 9,600-image training loop
    # (with OpenBLAS's own spinning already stopped, see cpu_threads.py):
    # - OpenMP as configured by default spins after each loop and starves the
    #   GEMM threads that come next: 2,807 img/s;
    # - the workqueue layer sleeps, but waking it costs ~30 us per loop, and a
    #   step runs ~25 loops: 3,389-4,082 img/s;
    # - OpenMP with OMP_WAIT_POLICY=passive sleeps on a futex and wakes in a
    #   few us: 4,886-4,990 img/s.
    # libgomp reads OMP_WAIT_POLICY once, on the first parallel loop. Without
    # libgomp Numba falls back to workqueue. A user's own choices win.
    if "NUMBA_THREADING_LAYER" not in os.environ:
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")
        numba.config.THREADING_LAYER_PRIORITY = ["omp", "workqueue", "tbb"]
        numba.config.THREADING_LAYER = "default"
    return numba


def _try_cupy():
    import cupy

    # Importing CuPy succeeds without a GPU; touching the device does not.
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError "cudaErrorInsufficientDriver: CUDA driver version is ...": its name
        raise NoDevice(f"no CUDA device: CuPy {cupy.__version__} is installed but cudaGetDeviceCount failed "
                       f"({str(exc).split(':')[0] or type(exc).__name__})") from None
    if n < 1:
        raise NoDevice(f"no CUDA device: CuPy {cupy.__version__} is installed but finds none")
    return cupy


_loaders = {"numba": _try_numba, "cupy": _try_cupy}


def load(name: str):
    """Return the module for ``name`` or None; the failure reason is kept."""
    if name in _modules:
        return _modules[name]
    if name in _reasons:
        return None
    try:
        _modules[name] = _loaders[name]()
        return _modules[name]
    except NoDevice as exc:  # its message is the whole reason
        _reasons[name] = str(exc)
        _installed.add(name)
        return None
    except Exception as exc:  # any failure means "not usable here"
        _reasons[name] = f"{type(exc).__name__}: {exc}"
        return None


def why_unavailable(name: str) -> str | None:
    """Why ``name`` could not be loaded, or None if it loaded (or was never tried)."""
    load(name)
    return _reasons.get(name)


def available(name: str) -> bool:
    return load(name) is not None


def installed(name: str) -> bool:
    """Whether ``name`` imports, usable here or not (CuPy without a CUDA device is installed, not available)."""
    return available(name) or name in _installed
