"""The errors tinynet raises on purpose, in one place.

Each message says what is wrong (and, where it can, what to do). Each is a TinynetError
(tinynet/exceptions.py); the command line prints any of them as one line,
``tinynet: error: ...``, with exit status 2; any other exception is a bug and
keeps its traceback.
"""

from __future__ import annotations

from .backend import BackendUnavailable  # a backend's library or device is missing (a RuntimeError)
from .callbacks import DivergenceError  # training diverged: NaN or exploding loss (a FloatingPointError)
from .checkpoint import CheckpointError  # a checkpoint file is unusable for this model (a ValueError)
from .data import DataError  # a Fashion-MNIST file is missing or corrupt (a ValueError)
from .exceptions import InvalidType, InvalidValue, TinynetError
from .images import ImageError  # an image for predict is unreadable, not 28x28, or dark on light (a ValueError)


class UsageError(InvalidValue):
    """Command-line arguments that cannot work, found before any work starts."""


#: Everything the command line reports as one line: every error tinynet raises on purpose (a TinynetError: its
#: own classes above, and InvalidValue / InvalidType for bad arguments), a file that cannot be read or written
#: (OSError) and running out of memory (MemoryError; CuPy's OutOfMemoryError is one): the machine's conditions,
#: not tinynet's code. Anything else, a plain ValueError from deep inside NumPy say, is a bug: it keeps its traceback.
EXPECTED = (TinynetError, OSError, MemoryError)

__all__ = ["EXPECTED", "TinynetError", "InvalidValue", "InvalidType", "BackendUnavailable", "CheckpointError",
           "DataError", "DivergenceError", "ImageError", "UsageError"]
