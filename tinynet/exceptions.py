"""The exception classes of the errors tinynet raises on purpose. A leaf module: every other one can use them.

Each is also the built-in class a caller would expect (an InvalidValue is a ValueError, an InvalidType a
TypeError), so ``except ValueError`` still catches it. What the base class adds: the command line prints a
TinynetError as one line (``tinynet: error: ...``), and any other exception, a bug, keeps its traceback.
"""

from __future__ import annotations


class TinynetError(Exception):
    """An error tinynet raises on purpose; its message says what is wrong and, where it can, what to do."""


class InvalidValue(TinynetError, ValueError):
    """An argument or input with a wrong value: a shape, a range, a size, a name."""


class InvalidType(TinynetError, TypeError):
    """An argument or input of a wrong type or dtype, or an array of the wrong backend."""


class MissingDependency(TinynetError, ImportError):
    """An optional library a feature needs is not installed; the message gives the command that installs it."""
