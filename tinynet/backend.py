"""Which array library the layers run on, and so which kernels.

A backend is a name and ``xp`` (NumPy or CuPy); :mod:`tinynet.kernels` runs each
kernel (im2col, col2im, max-pool...) with the implementation of the current
backend's name. Layer code only ever calls ``get_backend().xp`` and the entry
points in :mod:`tinynet.kernels`, so it runs unchanged on all three:

- ``"numpy"``: plain NumPy; the kernels are the readable reference.
- ``"numba"``: NumPy arrays, with the memory-bound kernels compiled by Numba.
- ``"cupy"``:  CuPy arrays on an NVIDIA GPU, kernels written in CUDA C.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import optional
from .arrays import Array, array_library, to_numpy, xp_of  # noqa: F401  (re-exported: tinynet.backend.to_numpy)
from .exceptions import InvalidType, InvalidValue, TinynetError

NAMES = ("numpy", "numba", "cupy")


class BackendUnavailable(TinynetError, RuntimeError):
    """The requested backend cannot run here; the message says why."""


class Backend:
    def __init__(self, name: str, xp: Any):
        self.name = name
        self.xp = xp

    def asarray(self, a: Any, dtype: Any = None) -> Array:
        """Copy a host (or same-backend) array onto this backend."""
        if self.name == "cupy":
            return self.xp.asarray(a, dtype=dtype)
        return np.asarray(to_numpy(a), dtype=dtype)

    def owns(self, a: Any) -> bool:
        """True when ``a`` is an array this backend can compute on."""
        return isinstance(a, self.xp.ndarray)

    def free_memory(self) -> None:
        """Give cached device memory back (CuPy's pool); a no-op on the CPU."""
        if self.name == "cupy":
            self.xp.get_default_memory_pool().free_all_blocks()

    def synchronize(self) -> None:
        """Wait for the device (CuPy's current stream); a no-op on the CPU."""
        if self.name == "cupy":
            self.xp.cuda.get_current_stream().synchronize()

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"


_cache: dict[str, Backend] = {}
_current = "numpy"


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks of up to 32 MB in the heap instead of returning them.

    Why: a training step allocates and frees the same multi-megabyte buffers
    (im2col columns, activations) every time. By default glibc hands each one
    back to the OS and the next step pays a page fault per 4 KB to get it
    again (measured: ~700 faults per step for the course CNN). Keeping the
    memory costs at most a few hundred MB of resident memory.
    Set TINYNET_KEEP_FREED_MEMORY=0 to leave the allocator alone.
    """
    import ctypes
    import os

    if os.environ.get("TINYNET_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl): nothing to tune
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    return bool(libc.mallopt(m_mmap_threshold, 32 * 2**20)) and bool(libc.mallopt(m_trim_threshold, 512 * 2**20))


def _make(name: str) -> Backend:
    if name in ("numpy", "numba"):
        keep_freed_memory()
    if name == "numpy":
        return Backend("numpy", np)
    if name == "numba":
        if not optional.available("numba"):
            raise BackendUnavailable(
                f"backend 'numba' needs Numba, which could not be imported "
                f"({optional.why_unavailable('numba')}); install it with: {optional.INSTALL['numba']}"
            )
        from . import cpu_threads

        if not cpu_threads.limit_spin():
            warnings.warn(
                "NumPy was imported before tinynet and its OpenBLAS could not be told at run time to stop its threads "
                "spinning after every matrix product; they stall the Numba kernels (measured on 2 cores: an im2col "
                "right after a GEMM 17x slower, a training step 1.3x). Import tinynet first, or run with "
                f"{cpu_threads.OPENBLAS_VAR}=4 set in the environment.",
                RuntimeWarning,
                stacklevel=3,
            )
        return Backend("numba", np)
    if name == "cupy":
        cupy = optional.load("cupy")
        if cupy is None:
            why = optional.why_unavailable("cupy")
            if optional.installed("cupy"):  # the cause is the machine's (no device, an old driver): no install hint
                raise BackendUnavailable(f"{why}, so backend 'cupy' is not usable here")
            raise BackendUnavailable(
                f"CuPy could not be imported ({why}), so backend 'cupy' is not usable here; it needs an NVIDIA GPU "
                f"and CuPy: {optional.INSTALL['cupy']}"
            )
        return Backend("cupy", cupy)
    raise InvalidValue(f"unknown backend {name!r}; expected one of {', '.join(NAMES)}")


def get_backend(name: str | Backend | None = None) -> Backend:
    """The current backend, or the named one (built once, then cached)."""
    name = _current if name is None else name
    if isinstance(name, Backend):
        return name
    if name not in _cache:
        _cache[name] = _make(name)
    return _cache[name]


def use_backend(name: str | Backend) -> Backend:
    """Switch the process-wide backend; raises ``BackendUnavailable`` with the reason."""
    global _current
    backend = get_backend(name)
    _current = backend.name
    return backend


@contextlib.contextmanager
def using_backend(name: str | Backend) -> Iterator[Backend]:
    """``with using_backend("numba"): ...`` — switch for a block, then switch back."""
    global _current
    previous = _current
    backend = use_backend(name)
    try:
        yield backend
    finally:
        _current = previous


def available_backends() -> list[str]:
    out = []
    for name in NAMES:
        try:
            get_backend(name)
            out.append(name)
        except BackendUnavailable:
            pass
    return out


def check_array(a: Any, what: str = "input", backend: Backend | None = None) -> None:
    """Raise a clear TypeError if ``a`` is not an array of the given (current) backend."""
    backend = backend or get_backend()
    if backend.owns(a):
        return
    lib = array_library(a)
    if lib not in ("numpy", "cupy"):
        raise InvalidType(f"{what} is a {type(a).__name__}, not an array of the {backend.name!r} backend")
    raise InvalidType(
        f"{what} is a {lib} {type(a).__name__} but the backend is {backend.name!r}, which computes on "
        f"{backend.xp.__name__} arrays; move it first, e.g. tinynet.get_backend({backend.name!r}).asarray(x) or "
        "model.to(...)"
    )
