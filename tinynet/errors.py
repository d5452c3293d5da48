"""The errors tinynet raises on purpose, in one place.

Each message says what is wrong (and, where it can, what to do). The command line
prints any of them as one line, ``tinynet: error: ...``, with exit status 2; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from .backend import BackendUnavailable  # a backend's library or device is missing (a RuntimeError)
from .callbacks import DivergenceError  # training diverged: NaN or exploding loss (a FloatingPointError)
from .checkpoint import CheckpointError  # a checkpoint file is unusable for this model (a ValueError)
from .data import DataError  # a Fashion-MNIST file is missing or corrupt (a ValueError)
from .images import ImageError  # an image for predict is unreadable, not 28x28, or dark on light (a ValueError)


class UsageError(ValueError):
    """Command-line arguments that cannot work, found before any work starts."""


#: Everything the command line reports as one line: tinynet's own error types, the
#: built-in ones its argument checks raise (ValueError, TypeError), files that cannot
#: be read or written (OSError) and running out of memory (MemoryError; CuPy's
#: OutOfMemoryError is one).
EXPECTED = (
    BackendUnavailable, CheckpointError, DataError, DivergenceError, ImageError, UsageError,
    ValueError, TypeError, OSError, MemoryError,
)

__all__ = ["EXPECTED", "BackendUnavailable", "CheckpointError", "DataError", "DivergenceError", "ImageError",
           "UsageError"]
