"""Which array library and which kernels the layers run on.

A backend owns ``xp`` (NumPy or CuPy) and a set of kernels (im2col, col2im,
max-pool forward/backward). Layer code only ever calls ``get_backend().xp`` and
the entry points in :mod:`tinynet.kernels`, so it runs unchanged on all three:

- ``"numpy"``: plain NumPy; the kernels are the readable reference.
- ``"numba"``: NumPy arrays, with the memory-bound kernels compiled by Numba.
- ``"cupy"``:  CuPy arrays on an NVIDIA GPU, kernels written in CUDA C.
"""

from __future__ import annotations

import contextlib
import sys
import warnings

import numpy as np

from . import optional

NAMES = ("numpy", "numba", "cupy")


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here; the message says why."""


class Backend:
    def __init__(self, name: str, xp, kernels):
        self.name = name
        self.xp = xp
        self.kernels = kernels

    def asarray(self, a, dtype=None):
        """Copy a host (or same-backend) array onto this backend."""
        if self.name == "cupy":
            return self.xp.asarray(a, dtype=dtype)
        return np.asarray(to_numpy(a), dtype=dtype)

    def owns(self, a) -> bool:
        """True when ``a`` is an array this backend can compute on."""
        return isinstance(a, self.xp.ndarray)

    def free_memory(self):
        """Give cached device memory back (CuPy's pool); a no-op on the CPU."""
        if self.name == "cupy":
            self.xp.get_default_memory_pool().free_all_blocks()

    def synchronize(self):
        if self.name == "cupy":
            self.xp.cuda.get_current_stream().synchronize()

    def __repr__(self):
        return f"Backend({self.name!r})"


_cache: dict[str, Backend] = {}
_current = "numpy"


def keep_freed_memory():
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
    import sys

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
        from .kernels import numpy_ref

        return Backend("numpy", np, numpy_ref)
    if name == "numba":
        if not optional.available("numba"):
            raise BackendUnavailable(
                f"backend 'numba' needs Numba, which could not be imported "
                f"({optional.why_unavailable('numba')}); install it with: {optional.INSTALL['numba']}"
            )
        from . import cpu_threads
        from .kernels import numba_cpu

        if not cpu_threads.limit_spin():
            warnings.warn(
                "NumPy was imported before tinynet and its OpenBLAS could not be told at run time to stop its threads "
                "spinning after every matrix product; they stall the Numba kernels (measured on 2 cores: an im2col "
                "right after a GEMM 17x slower, a training step 1.3x). Import tinynet first, or run with "
                f"{cpu_threads.OPENBLAS_VAR}=4 set in the environment.",
                RuntimeWarning,
                stacklevel=3,
            )
        return Backend("numba", np, numba_cpu)
    if name == "cupy":
        cupy = optional.load("cupy")
        if cupy is None:
            raise BackendUnavailable(
                f"backend 'cupy' is not usable here ({optional.why_unavailable('cupy')}); "
                f"it needs an NVIDIA GPU and CuPy: {optional.INSTALL['cupy']}"
            )
        from .kernels import cupy_gpu

        return Backend("cupy", cupy, cupy_gpu)
    raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(NAMES)}")


def get_backend(name: str | None = None) -> Backend:
    """The current backend, or the named one (built once, then cached)."""
    name = _current if name is None else name
    if isinstance(name, Backend):
        return name
    if name not in _cache:
        _cache[name] = _make(name)
    return _cache[name]


def use_backend(name: str) -> Backend:
    """Switch the process-wide backend; raises ``BackendUnavailable`` with the reason."""
    global _current
    backend = get_backend(name)
    _current = backend.name
    return backend


@contextlib.contextmanager
def using_backend(name: str):
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


def array_library(a) -> str:
    """'numpy' or 'cupy' — which library an array belongs to (or its type's top-level module)."""
    if isinstance(a, (np.ndarray, np.generic)):
        return "numpy"
    return type(a).__module__.split(".")[0]


def xp_of(a):
    """The array module (NumPy or CuPy) an array belongs to, for code that must follow its argument."""
    return np if array_library(a) == "numpy" else sys.modules[array_library(a)]


def to_numpy(a):
    """Bring any array back to the host as a NumPy array."""
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "get"):  # cupy.ndarray
        return a.get()
    return np.asarray(a)


def check_array(a, what: str = "input", backend: Backend | None = None):
    """Raise a clear TypeError if ``a`` is not an array of the given (current) backend."""
    backend = backend or get_backend()
    if backend.owns(a):
        return
    lib = array_library(a)
    if lib not in ("numpy", "cupy"):
        raise TypeError(f"{what} is a {type(a).__name__}, not an array of the {backend.name!r} backend")
    raise TypeError(
        f"{what} is a {lib} {type(a).__name__} but the backend is {backend.name!r}, which computes on "
        f"{backend.xp.__name__} arrays; move it first, e.g. tinynet.get_backend({backend.name!r}).asarray(x) or "
        "model.to(...)"
    )
