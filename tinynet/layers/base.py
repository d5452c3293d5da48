"""What every layer shares: parameters, lazy building, and input checks."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import checks
from ..arrays import Array
from ..backend import Backend, get_backend
from ..exceptions import InvalidValue
from ..parameter import Parameter


class Layer:
    """Base class. Subclasses implement ``build``, ``output_shape``, ``forward``, ``backward``.

    ``params`` holds the trainable :class:`Parameter` objects, ``state`` the
    non-trainable ones (BatchNorm's running statistics). Shapes exclude the batch axis.
    """

    #: number of dimensions of one sample (3 for images C,H,W; 1 for vectors), or None for any
    sample_ndim: int | None = None

    def __init__(self) -> None:
        self.params: dict[str, Parameter] = {}
        self.state: dict[str, Parameter] = {}
        self.input_shape: tuple | None = None
        self.dtype: np.dtype | None = None
        self.name = type(self).__name__.lower()
        self.seed: int | None = None
        self.input_grad = True  # False: backward may skip dx (nobody upstream needs it)

    # -- building -----------------------------------------------------------
    @property
    def built(self) -> bool:
        return self.input_shape is not None

    def build(self, input_shape: tuple, dtype: Any = np.float32, rng: np.random.Generator | None = None) -> None:
        """Fix the input shape (without batch axis) and dtype; create parameters."""
        input_shape = tuple(int(s) for s in input_shape)
        if self.sample_ndim is not None and len(input_shape) != self.sample_ndim:
            raise InvalidValue(
                f"{type(self).__name__} expects samples with {self.sample_ndim} dims, "
                f"got input_shape {input_shape}"
            )
        self.input_shape = input_shape
        self.dtype = checks.float_dtype(dtype)
        self._create_params(rng if rng is not None else np.random.default_rng(self.seed))

    def _create_params(self, rng: np.random.Generator) -> None:
        """Override to create parameters (host init, then moved to the backend)."""

    def _new_param(self, key: str, host_array: np.ndarray, trainable: bool = True) -> Parameter:
        data = get_backend().asarray(host_array, dtype=self.dtype)
        p = Parameter(data, trainable=trainable, name=f"{self.name}.{key}")
        (self.params if trainable else self.state)[key] = p
        return p

    def output_shape(self, input_shape: tuple) -> tuple:
        """The shape of one output sample for one input sample of ``input_shape`` (batch axis excluded)."""
        return tuple(input_shape)

    def param_shapes(self, input_shape: tuple) -> dict:
        """{key: shape} of the parameters and state that ``build(input_shape)`` creates, found without creating
        them (load_model compares them with a checkpoint's tensors before allocating anything)."""
        return {}

    def get_config(self) -> dict:
        """The constructor's arguments, as JSON values: ``type(layer)(**layer.get_config())`` makes the same layer
        (Sequential.get_config, and the architecture a checkpoint holds)."""
        return {}

    # -- checks ---------------------------------------------------------------
    def _check_input(self, x: Array) -> None:
        """Validate backend, dtype and shape of ``x`` (tinynet/checks.py); build lazily on first use."""
        who = type(self).__name__
        checks.float_batch(x, f"{who} input", sample_ndim=self.sample_ndim, who=who)
        if not self.built:
            self.build(x.shape[1:], x.dtype)
        assert self.input_shape is not None  # built just above
        checks.fits(x, who, self.input_shape, self.dtype)

    # -- interface ----------------------------------------------------------------
    def forward(self, x: Array, training: bool = False) -> Array:
        """y for x (N, ...); cache only what backward needs (training=True: the statistics of this batch, dropout)."""
        raise NotImplementedError

    def backward(self, dy: Array) -> Array | None:
        """dx for dy (without changing dy); writes each parameter's ``.grad``. None when ``input_grad`` is False."""
        raise NotImplementedError

    def __call__(self, x: Array, training: bool = False) -> Array:
        return self.forward(x, training=training)

    def astype(self, dtype: Any) -> Layer:
        """Cast parameters and state in place (e.g. to float64 for gradient checks)."""
        dtype = checks.float_dtype(dtype)
        for p in list(self.params.values()) + list(self.state.values()):
            p.data = p.data.astype(dtype)
            p.grad = p.grad.astype(dtype)
        if self.built:
            self.dtype = dtype
        return self

    def to(self, backend: str | Backend) -> Layer:
        """Move parameters and state onto another backend, in place."""
        b = get_backend(backend)
        for p in list(self.params.values()) + list(self.state.values()):
            p.data = b.asarray(p.data)
            p.grad = b.asarray(p.grad)
        return self

    def persistent_arrays(self) -> list:
        """The arrays a training step reads or updates in place and that outlive it: parameters and state. A step
        replayed as a CUDA graph works on these very arrays, so it is captured again when one is replaced."""
        return [p.data for p in (*self.params.values(), *self.state.values())]

    def n_params(self) -> tuple[int, int]:
        """(trainable, non-trainable) parameter counts."""
        return (
            sum(p.size for p in self.params.values()),
            sum(p.size for p in self.state.values()),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
