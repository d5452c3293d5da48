"""Benchmarks (speed lives here, never in tests)."""

import tinynet.cpu_threads  # noqa: F401  (before any NumPy import: OpenBLAS's threads must not spin)
