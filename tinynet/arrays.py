"""Which library an array belongs to, and how to bring it to the host: the helpers every layer of tinynet shares.

A leaf module (it imports nothing from tinynet), so the reference kernels, the checks and the backend can all
use it without importing each other.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

#: A NumPy or CuPy array (CuPy is optional, so the type hints cannot name its class).
Array = Any


def array_library(a: Array) -> str:
    """'numpy' or 'cupy' — which library an array belongs to (or its type's top-level module)."""
    if isinstance(a, (np.ndarray, np.generic)):
        return "numpy"
    return type(a).__module__.split(".")[0]


def xp_of(a: Array) -> Any:
    """The array module (NumPy or CuPy) an array belongs to, for code that must follow its argument."""
    return np if array_library(a) == "numpy" else sys.modules[array_library(a)]


def to_numpy(a: Array) -> np.ndarray:
    """Bring any array back to the host as a NumPy array."""
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "get"):  # cupy.ndarray
        return a.get()
    return np.asarray(a)
