"""Inverted dropout: zero a fraction ``rate`` of activations while training and
scale the survivors by 1/(1 - rate), so inference needs no change at all."""

from __future__ import annotations

import zlib

import numpy as np

from .. import kernels
from ..arrays import array_library, to_numpy, xp_of
from ..backend import get_backend, using_backend
from ..checks import integer, real
from ..counter_rng import GOLDEN, splitmix64
from ..exceptions import InvalidType, InvalidValue
from .base import Layer


class Dropout(Layer):
    """y = x * mask / (1 - rate) in training, y = x at inference.

    The mask comes from a counter-based generator (see ``tinynet.kernels.dropout``):
    training forward number ``calls`` of this layer draws from (seed, calls), so
    every backend draws the same masks, the backward pass re-draws the forward's
    mask instead of storing it, and a checkpoint only needs ``seed`` and ``calls``.
    Layers with the same seed still draw different masks: the layer's name (unique
    in a Sequential: dropout, dropout_1, ...) is mixed into its stream.

    For gradient checks (or teaching) a fixed mask can be injected: set
    ``layer.fixed_mask`` to a boolean array of the input's shape (True = keep) on
    the layer's backend, and every training forward uses it until it is set back
    to None. ``last_mask()`` gives the mask of the latest training forward.
    """

    def __init__(self, rate, seed=None):
        super().__init__()
        self.rate = real(rate, "Dropout rate", 0, 1, high_open=True)
        # no seed: a random one, drawn once, so the run can still be resumed from a checkpoint
        self.seed = integer(seed, "Dropout seed", 0) if seed is not None else int(
            np.random.SeedSequence().generate_state(1, np.uint64)[0])
        self.calls = None  # (1,) uint64 on the layer's backend: training forwards so far
        self.fixed_mask = None
        self.keep = None

    def get_config(self):
        return {"rate": self.rate, "seed": self.seed}

    def stream_seed(self) -> int:
        """The generator's seed for this layer: the user's seed mixed with the layer's name."""
        key = (self.seed, self.name)
        if getattr(self, "_stream", (None,))[0] != key:
            mixed = (self.seed + zlib.crc32(self.name.encode()) * GOLDEN) % 2**64
            self._stream = key, int(splitmix64(np.array([mixed], dtype=np.uint64))[0])
        return self._stream[1]

    def _counter(self):
        if self.calls is None:
            self.calls = get_backend().xp.zeros(1, dtype=np.uint64)
        return self.calls

    def forward(self, x, training=False):
        self._check_input(x)
        self.keep = self.drawn = None
        if not training or self.rate == 0:
            return x
        if self.fixed_mask is not None:
            if tuple(self.fixed_mask.shape) != tuple(x.shape):
                raise InvalidValue(f"fixed_mask has shape {tuple(self.fixed_mask.shape)}, input has {tuple(x.shape)}")
            if not get_backend().owns(self.fixed_mask):
                raise InvalidType(
                    f"fixed_mask is a {type(self.fixed_mask).__module__.split('.')[0]} array but the layer runs on the "
                    f"{get_backend().name!r} backend; move it first, e.g. tinynet.get_backend({get_backend().name!r})"
                    ".asarray(mask)"
                )
            self.keep = self.fixed_mask.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.rate))
            return x * self.keep
        calls = self._counter()
        calls += 1  # on the device: a captured CUDA graph advances it on every replay
        self.drawn = tuple(x.shape)
        return kernels.dropout(x, self.stream_seed(), calls, self.rate)

    def backward(self, dy):
        if self.keep is not None:
            return dy * self.keep
        if self.drawn:  # the same mask again, from the same counter
            return kernels.dropout(dy, self.stream_seed(), self.calls, self.rate)
        return dy

    def last_mask(self):
        """The boolean keep-mask of the latest training forward (None before any)."""
        if self.fixed_mask is not None:
            return self.fixed_mask
        if not self.drawn:
            return None
        ones = xp_of(self.calls).ones(self.drawn, dtype=self.dtype)
        with using_backend(array_library(self.calls)):
            return kernels.dropout(ones, self.stream_seed(), self.calls, self.rate) != 0

    def persistent_arrays(self):
        return [*super().persistent_arrays(), self.calls]  # the counter, advanced in place by every training step

    def rng_state(self) -> dict:
        """What a checkpoint needs to continue the same masks: the seed and the number of calls."""
        return {"seed": self.seed, "calls": int(to_numpy(self._counter())[0])}

    def set_rng_state(self, state: dict, backend=None):
        self.seed = state["seed"]
        self.calls = get_backend(backend).asarray(np.array([state["calls"]], dtype=np.uint64))

    def to(self, backend):
        super().to(backend)
        b = get_backend(backend)
        for name in ("calls", "fixed_mask"):
            if getattr(self, name) is not None:
                setattr(self, name, b.asarray(getattr(self, name)))
        return self

    def __repr__(self):
        return f"Dropout({self.rate})"
