"""What a recorded run needs to be reproduced and audited: the code, the software, the machine, the recipe.

``record(recipe)`` gives a JSON-ready dict; ``strict_json`` writes JSON that any parser reads (NaN and
infinity become null, as strict JSON has no such numbers).
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

from . import optional

THREAD_VARIABLES = ("OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY", "OMP_NUM_THREADS", "NUMBA_THREADING_LAYER",
                    "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def git_state(where=None) -> dict | None:
    """The commit of the checkout tinynet runs from, and whether tracked files differ from it (None: not a checkout)."""
    where = Path(where or Path(__file__).resolve().parent)

    def git(*args):
        return subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode:
            return None
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def openblas_kernels() -> str | None:
    """The kernel set NumPy's OpenBLAS chose for this CPU (e.g. "SkylakeX", "Haswell"), or None for another BLAS.

    It sets the speed of every matrix product and the rounding of float32 sums. OPENBLAS_CORETYPE in the
    environment overrides OpenBLAS's own choice: Haswell (AVX2) on an AVX-512 CPU halves the GEMM peak."""
    from .cpu_threads import _loaded_openblas_paths

    for path in _loaded_openblas_paths():
        try:
            corename = ctypes.CDLL(path).gotoblas_corename  # already loaded: CDLL only hands back its handle
        except (OSError, AttributeError):  # an OpenBLAS built for one CPU has no choice to report
            continue
        corename.restype = ctypes.c_char_p
        name = (corename() or b"?").decode(errors="replace")
        forced = os.environ.get("OPENBLAS_CORETYPE")
        return f"{name} (environment: OPENBLAS_CORETYPE={forced})" if forced else name
    return None


def _blas() -> dict | None:
    try:
        deps = np.show_config(mode="dicts").get("Build Dependencies", {})
        blas = deps.get("blas", {})
        return {"name": blas.get("name"), "version": blas.get("version"), "kernels": openblas_kernels()}
    except Exception:  # an older NumPy without mode="dicts"
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_vector_isa() -> str | None:
    """The widest vector instructions the CPU offers for float32 arithmetic ("AVX-512", "AVX2", "NEON"...), from
    /proc/cpuinfo's flags: with the CPU's model, what a speed figure needs beside it."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith(("flags", "Features"))), [])
    except OSError:
        return None
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sve", "SVE"), ("asimd", "NEON")):
        if flag in flags:
            return name
    return None


_NOW = object()


def record(recipe: dict, git=_NOW) -> dict:
    """The code (git commit, dirty or not), versions, machine, thread settings and the full recipe of a run.

    ``git``: the checkout's state as ``git_state()`` read it when the run *started* (its code was loaded then; a
    commit made while a long run trains must not be credited with it). By default it is read now.
    """
    from . import __version__

    numba = optional.load("numba") if "numba" in sys.modules else None
    cupy = sys.modules.get("cupy")
    threads = {k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ}
    if numba is not None:
        threads["numba_threads"] = int(numba.get_num_threads())
        threads["numba_threading_layer"] = str(numba.config.THREADING_LAYER)
    return {
        "tinynet": __version__,
        "git": git_state() if git is _NOW else git,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": _blas(),
        "numba": getattr(numba, "__version__", None),
        "cupy": getattr(cupy, "__version__", None),
        "cpu": _cpu_model(),
        "vector_isa": cpu_vector_isa(),
        "cores": os.cpu_count(),
        "threads": threads,
        "command": " ".join(["tinynet", *sys.argv[1:]]) if sys.argv and sys.argv[0] else None,
        "recipe": recipe,
    }


def strict(obj):
    """``obj`` with every NaN or infinity replaced by None (JSON's null), recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (np.floating, np.integer)):
        return strict(obj.item())
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    return obj


def strict_json(obj, **kw) -> str:
    return json.dumps(strict(obj), allow_nan=False, **kw)
