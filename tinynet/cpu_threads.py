"""Make OpenBLAS's idle threads sleep instead of spin; must run before NumPy is imported.

After each matrix product, OpenBLAS's worker threads keep spinning for about
2**28 cycles (~0.1 s) in case another one follows. On a small machine the
spinning thread holds the core that the second thread of the next Numba kernel
needs, and that thread waits for the OS scheduler instead: on 2 cores an
im2col right after a GEMM took 6.6 ms instead of 0.4 ms. With
OPENBLAS_THREAD_TIMEOUT=4 they go to sleep after 2**4 cycles.

OpenBLAS reads the variable once, when NumPy loads it, so this only works if
``import tinynet`` comes before ``import numpy`` (or the variable is set in the
shell). A value the user set is kept.
"""

from __future__ import annotations

import os
import sys

OPENBLAS_VAR = "OPENBLAS_THREAD_TIMEOUT"

#: True when OpenBLAS will see a thread timeout (ours or the user's).
spin_limited = OPENBLAS_VAR in os.environ or "numpy" not in sys.modules
os.environ.setdefault(OPENBLAS_VAR, "4")
