"""The one place that imports the optional accelerators (Numba, CuPy).

Each import is tried once; if it fails we remember *why*, so that asking for
that backend later gives the real reason instead of a bare ImportError.
"""

from __future__ import annotations

import os

_modules: dict[str, object] = {}
_reasons: dict[str, str] = {}


def _try_numba():
    import numba

    # Numba's OpenMP layer spin-waits after each parallel loop, starving
    # OpenBLAS's threads in the GEMM that follows (measured: 432 -> 964 img/s on
    # 2 cores). The workqueue layer sleeps instead. A user's own choice wins.
    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"
    return numba


def _try_cupy():
    import cupy

    # Importing CuPy succeeds without a GPU; touching the device does not.
    n = cupy.cuda.runtime.getDeviceCount()
    if n < 1:
        raise RuntimeError("CuPy is installed but no CUDA device is visible")
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
    except Exception as exc:  # any failure means "not usable here"
        _reasons[name] = f"{type(exc).__name__}: {exc}"
        return None


def why_unavailable(name: str) -> str | None:
    """Why ``name`` could not be loaded, or None if it loaded (or was never tried)."""
    load(name)
    return _reasons.get(name)


def available(name: str) -> bool:
    return load(name) is not None
