"""What every layer shares: parameters, lazy building, and input checks."""

from __future__ import annotations

import numpy as np

from ..backend import check_array, get_backend
from ..parameter import Parameter

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_float_dtype(dtype, what="dtype"):
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{what} must be float32 or float64, got {dtype}")
    return dtype


def shape_hint(expected: tuple, actual: tuple) -> str:
    """A hint when an image batch looks channels-last (NHWC) instead of NCHW."""
    if len(expected) == 3 and len(actual) == 3 and actual == (expected[1], expected[2], expected[0]):
        return " — this looks like NHWC (channels last); tinynet is NCHW: x.transpose(0, 3, 1, 2)"
    return ""


class Layer:
    """Base class. Subclasses implement ``build``, ``output_shape``, ``forward``, ``backward``.

    ``params`` holds the trainable :class:`Parameter` objects, ``state`` the
    non-trainable ones (BatchNorm's running statistics). Shapes exclude the batch axis.
    """

    #: number of dimensions of one sample (3 for images C,H,W; 1 for vectors), or None for any
    sample_ndim: int | None = None

    def __init__(self):
        self.params: dict[str, Parameter] = {}
        self.state: dict[str, Parameter] = {}
        self.input_shape: tuple | None = None
        self.dtype = None
        self.name = type(self).__name__.lower()
        self.seed = None
        self.input_grad = True  # False: backward may skip dx (nobody upstream needs it)

    # -- building -----------------------------------------------------------
    @property
    def built(self) -> bool:
        return self.input_shape is not None

    def build(self, input_shape, dtype=np.float32, rng=None):
        """Fix the input shape (without batch axis) and dtype; create parameters."""
        input_shape = tuple(int(s) for s in input_shape)
        if self.sample_ndim is not None and len(input_shape) != self.sample_ndim:
            raise ValueError(
                f"{type(self).__name__} expects samples with {self.sample_ndim} dims, "
                f"got input_shape {input_shape}"
            )
        self.input_shape = input_shape
        self.dtype = check_float_dtype(dtype)
        self._create_params(rng if rng is not None else np.random.default_rng(self.seed))

    def _create_params(self, rng):
        """Override to create parameters (host init, then moved to the backend)."""

    def _new_param(self, key, host_array, trainable=True):
        data = get_backend().asarray(host_array, dtype=self.dtype)
        p = Parameter(data, trainable=trainable, name=f"{self.name}.{key}")
        (self.params if trainable else self.state)[key] = p
        return p

    def output_shape(self, input_shape):
        return tuple(input_shape)

    # -- checks ---------------------------------------------------------------
    def _check_input(self, x):
        """Validate backend, dtype and shape of ``x``; build lazily on first use."""
        check_array(x, f"{type(self).__name__} input")
        if x.dtype not in FLOAT_DTYPES:
            raise TypeError(
                f"{type(self).__name__} expects float32 or float64 input, got {x.dtype}"
                + ("; scale images first, e.g. tinynet.data.to_float(x)" if x.dtype.kind in "ui" else "")
            )
        if self.sample_ndim is not None and x.ndim != self.sample_ndim + 1:
            raise ValueError(
                f"{type(self).__name__} expects {self.sample_ndim + 1}-D input "
                f"{'(N, C, H, W)' if self.sample_ndim == 3 else '(N, features)'}, "
                f"got shape {tuple(x.shape)}"
            )
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"{type(self).__name__} got an empty batch, shape {tuple(x.shape)}")
        if not self.built:
            self.build(x.shape[1:], x.dtype)
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"{type(self).__name__} expects input of shape (N, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(x.shape)}" + shape_hint(self.input_shape, tuple(x.shape[1:]))
            )
        if x.dtype != self.dtype:
            raise TypeError(
                f"{type(self).__name__} was built for {self.dtype} but got {x.dtype} input; "
                f"cast the input (x.astype(np.{self.dtype})) or the model (model.astype(...))"
            )

    # -- interface ----------------------------------------------------------------
    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def __call__(self, x, training=False):
        return self.forward(x, training=training)

    def astype(self, dtype):
        """Cast parameters and state in place (e.g. to float64 for gradient checks)."""
        dtype = check_float_dtype(dtype)
        for p in list(self.params.values()) + list(self.state.values()):
            p.data = p.data.astype(dtype)
            p.grad = p.grad.astype(dtype)
        if self.built:
            self.dtype = dtype
        return self

    def to(self, backend):
        """Move parameters and state onto another backend, in place."""
        b = get_backend(backend)
        for p in list(self.params.values()) + list(self.state.values()):
            p.data = b.asarray(p.data)
            p.grad = b.asarray(p.grad)
        return self

    def n_params(self) -> tuple[int, int]:
        """(trainable, non-trainable) parameter counts."""
        return (
            sum(p.size for p in self.params.values()),
            sum(p.size for p in self.state.values()),
        )

    def __repr__(self):
        return f"{type(self).__name__}()"
