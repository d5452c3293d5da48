"""Make OpenBLAS's idle threads sleep instead of spin, whatever was imported first.

After each matrix product, OpenBLAS's worker threads keep spinning for about
2**28 cycles (~0.1 s) in case another one follows. On a small machine the
spinning thread holds the core that the second thread of the next Numba kernel
needs, and that thread waits for the OS scheduler instead: on 2 cores an
im2col right after a GEMM took 6.6 ms instead of 0.4 ms. With
OPENBLAS_THREAD_TIMEOUT=4 they go to sleep after 2**4 cycles.

OpenBLAS reads the variable when NumPy loads it. So ``import tinynet`` sets it
(a value the user set is kept), and if NumPy was imported first,
``limit_spin()`` makes the already loaded OpenBLAS read it again and restart
its threads through OpenBLAS's own exported functions (openblas_read_env,
blas_thread_shutdown_, blas_thread_init): the thread server takes its timeout
from the environment each time it starts.
"""

from __future__ import annotations

import ctypes
import os
import sys

OPENBLAS_VAR = "OPENBLAS_THREAD_TIMEOUT"

#: True when OpenBLAS sees a thread timeout (ours or the user's).
spin_limited = OPENBLAS_VAR in os.environ or "numpy" not in sys.modules
os.environ.setdefault(OPENBLAS_VAR, "4")


def _loaded_openblas_paths() -> list[str]:
    """Files of the OpenBLAS libraries this process has loaded (Linux: from /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split(maxsplit=5)[-1].strip() for line in maps if "openblas" in line.lower()}
    except OSError:
        return []
    return sorted(p for p in paths if p.startswith("/") and ".so" in os.path.basename(p))


def limit_spin() -> bool:
    """Make sure OpenBLAS's idle threads sleep; True when they do (or no OpenBLAS needs it).

    Needed only when NumPy was imported before tinynet: the loaded OpenBLAS re-reads the
    environment and restarts its (idle) thread server, which takes the timeout as it starts.
    Call it between matrix products, not during one (the backend calls it once, when chosen).
    """
    global spin_limited
    if spin_limited:
        return True
    restarted = False
    for path in _loaded_openblas_paths():
        try:
            lib = ctypes.CDLL(path)  # already loaded: this only hands back its handle
            read_env, shutdown, start = lib.openblas_read_env, lib.blas_thread_shutdown_, lib.blas_thread_init
        except (OSError, AttributeError):  # an OpenBLAS without these exports: leave it as it is
            continue
        read_env()
        shutdown()
        start()
        restarted = True
    spin_limited = restarted
    return restarted
