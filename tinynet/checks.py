"""Argument checks shared by the whole library, so that each error message is written once.

Numbers: any real integer or real number is accepted (Python's or NumPy's: ``np.int64(16)``,
``np.float32(0.5)``), bools and non-finite values are refused, and the value comes back as a
plain Python ``int`` or ``float`` (a NumPy scalar would otherwise turn float32 arithmetic into
float64, see NumPy's promotion rules).
"""

from __future__ import annotations

import math
import numbers


def integer(v, what: str, low: int | None = None, high: int | None = None, high_text: str | None = None) -> int:
    """An integer >= ``low`` and <= ``high`` (each if given), as a Python int."""
    ok = not isinstance(v, bool) and isinstance(v, numbers.Integral)
    if not ok or (low is not None and v < low) or (high is not None and v > high):
        if high is not None:
            bound = f" in [{low}, {high_text or high}]"
        else:
            bound = "" if low is None else f" >= {low}"
        raise ValueError(f"{what} must be an integer{bound}, got {v!r}")
    return int(v)


def positive_int(v, what: str) -> int:
    return integer(v, what, 1)


def real(v, what: str, low: float | None = None, high: float | None = None, *, low_open=False, high_open=False) -> float:
    """A finite real number in [low, high] (or with open ends), as a Python float."""
    ok = not isinstance(v, bool) and isinstance(v, numbers.Real) and math.isfinite(v)
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v < high if high_open else v <= high
    if not ok:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
        where = f" in {lo}, {hi}" if low is not None and high is not None else (
            f" {'>' if low_open else '>='} {low:g}" if low is not None else "")
        raise ValueError(f"{what} must be a finite number{where}, got {v!r}")
    return float(v)


def finite_values(x, what: str):
    """Refuse data holding NaN or inf, naming how many and the first sample (one pass; one sync on a GPU)."""
    from .backend import to_numpy, xp_of

    xp = xp_of(x)
    if bool(xp.isfinite(x).all()):
        return x
    bad = to_numpy(~xp.isfinite(x.reshape(len(x), -1)).all(axis=1))
    count = int(to_numpy((~xp.isfinite(x)).sum()))
    raise ValueError(f"{what} holds {count:,} NaN or infinite value{'s' if count > 1 else ''} in {int(bad.sum()):,} "
                     f"sample{'s' if bad.sum() > 1 else ''}, the first in sample {int(bad.argmax())}; "
                     "clean or drop those samples first")
