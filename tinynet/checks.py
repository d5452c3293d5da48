"""Argument checks shared by the whole library, so that each error message is written once.

Numbers: any real integer or real number is accepted (Python's or NumPy's: ``np.int64(16)``,
``np.float32(0.5)``), bools and non-finite values are refused, and the value comes back as a
plain Python ``int`` or ``float`` (a NumPy scalar would otherwise turn float32 arithmetic into
float64, see NumPy's promotion rules).
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from .arrays import Array
from .exceptions import InvalidType, InvalidValue

if TYPE_CHECKING:
    from .backend import Backend


def integer(v: Any, what: str, low: int | None = None, high: int | None = None, high_text: str | None = None) -> int:
    """An integer >= ``low`` and <= ``high`` (each if given), as a Python int."""
    ok = not isinstance(v, bool) and isinstance(v, numbers.Integral)
    if not ok or (low is not None and v < low) or (high is not None and v > high):
        if high is not None:
            bound = f" in [{low}, {high_text or high}]"
        else:
            bound = "" if low is None else f" >= {low}"
        raise InvalidValue(f"{what} must be an integer{bound}, got {v!r}")
    return int(v)


def positive_int(v: Any, what: str) -> int:
    """An integer >= 1, as a Python int."""
    return integer(v, what, 1)


def real(v: Any, what: str, low: float | None = None, high: float | None = None, *, low_open: bool = False,
         high_open: bool = False) -> float:
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
        raise InvalidValue(f"{what} must be a finite number{where}, got {v!r}")
    return float(v)


def finite_values(x: Array, what: str) -> Array:
    """Refuse data holding NaN or inf, naming how many and the first sample (one pass; one sync on a GPU)."""
    from .arrays import to_numpy, xp_of  # noqa: I001

    xp = xp_of(x)
    if bool(xp.isfinite(x).all()):
        return x
    bad = to_numpy(~xp.isfinite(x.reshape(len(x), -1)).all(axis=1))
    count = int(to_numpy((~xp.isfinite(x)).sum()))
    raise InvalidValue(f"{what} holds {count:,} NaN or infinite value{'s' if count > 1 else ''} in {int(bad.sum()):,} "
                     f"sample{'s' if bad.sum() > 1 else ''}, the first in sample {int(bad.argmax())}; "
                     "clean or drop those samples first")


# -- arrays of samples ---------------------------------------------------------------------------------------------
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
SCALE_HINT = "; scale images first: tinynet.data.to_float(x)"


def float_dtype(dtype: Any, what: str = "dtype") -> np.dtype:
    """float32 or float64, as a NumPy dtype."""
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise InvalidType(f"{what} must be float32 or float64, got {dtype}")
    return dtype


def float_batch(x: Array, what: str, backend: Backend | None = None, sample_ndim: int | None = None,
                who: str | None = None) -> Array:
    """``x`` is a non-empty batch of float samples on ``backend`` (the current one if None).

    ``what`` names the array in the messages ("Conv2D input", "x"), ``who`` its receiver ("Conv2D");
    ``sample_ndim`` is the number of dimensions of one sample (3 for images), if the receiver needs one.
    """
    from .backend import check_array

    check_array(x, what, backend)
    if x.dtype not in FLOAT_DTYPES:
        raise InvalidType(f"{what} must be float32 or float64, got {x.dtype}" + (SCALE_HINT if x.dtype.kind in "ui" else ""))
    if sample_ndim is not None and x.ndim != sample_ndim + 1:
        layout = "(N, C, H, W)" if sample_ndim == 3 else "(N, features)" if sample_ndim == 1 else ""
        raise InvalidValue(f"{who or what} expects {sample_ndim + 1}-D input {layout}, got shape {tuple(x.shape)}")
    if x.ndim == 0 or x.shape[0] == 0:
        raise InvalidValue(f"{what} is an empty batch, shape {tuple(x.shape)}")
    return x


def fits(x: Array, who: str, sample_shape: tuple, dtype: Any) -> Array:
    """``x``'s samples have the shape and dtype ``who`` was built for."""
    if tuple(x.shape[1:]) != tuple(sample_shape):
        hint = ""
        if len(sample_shape) == 3 and tuple(x.shape[1:]) == (sample_shape[1], sample_shape[2], sample_shape[0]):
            hint = " — this looks like NHWC (channels last); tinynet is NCHW: x.transpose(0, 3, 1, 2)"
        raise InvalidValue(f"{who} expects input of shape (N, {', '.join(map(str, sample_shape))}), "
                         f"got {tuple(x.shape)}{hint}")
    if x.dtype != dtype:
        raise InvalidType(f"{who} is {dtype} but its input is {x.dtype}; cast one of them: x.astype(np.{dtype}) or "
                        f"model.astype(np.{x.dtype})" + (SCALE_HINT if x.dtype.kind in "ui" else ""))
    return x


# -- labels --------------------------------------------------------------------------------------------------------
def class_labels(y: Array, num_classes: int, n: int | None = None, what: str = "labels", values: bool = True) -> Array:
    """Integer class indices of shape (n,) in [0, num_classes - 1]; returns them on the host.

    ``values=False`` checks dtype and shape only (no look at the values, so no device-to-host copy).
    """
    from .arrays import to_numpy

    if getattr(y, "dtype", np.dtype(object)).kind not in "iu":
        raise InvalidValue(f"{what} must be integer class indices (0..{num_classes - 1}), got dtype "
                         f"{getattr(y, 'dtype', type(y).__name__)} (pass one-hot targets as (N, K) floats to the loss)")
    if y.ndim != 1 or (n is not None and len(y) != n):
        raise InvalidValue(f"{what} must have shape ({n if n is not None else 'N'},), got {tuple(y.shape)}")
    if not values:
        return y
    y = to_numpy(y)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise InvalidValue(f"{what} must be in [0, {num_classes - 1}], got values from {y.min()} to {y.max()}")
    return y


UNSCALED_ABOVE = 1.5  # float images whose largest value exceeds this were not scaled to [0, 1]


def warn_if_unscaled(x: Array, what: str = "x", stacklevel: int = 2) -> bool:
    """Warn (a UserWarning) when float images hold values above 1, as 0-255 data not scaled by to_float does.

    Such input trains, silently and badly (82% and a loss of 70 where 91% is usual). The check is
    one max over the data, computed where the data lives (one device-to-host read of the result on a
    GPU). Returns whether it warned. Shared by fit, evaluate and predict (Sequential.predict).
    """
    if getattr(x, "dtype", None) is None or x.dtype.kind != "f" or x.ndim < 3 or x.size == 0:
        return False  # not float images (N, H, W) or (N, C, H, W): features may be any size
    largest = float(x.max())  # NaN compares False: a NaN is TerminateOnNaN's business, not this one's
    if not largest > UNSCALED_ABOVE:
        return False
    warnings.warn(
        f"{what} holds values up to {largest:g}, but tinynet's models expect images scaled to [0, 1]: convert "
        "uint8 images with tinynet.data.to_float(images) (0-255 floats train badly)",
        UserWarning, stacklevel=stacklevel + 1,
    )
    return True
