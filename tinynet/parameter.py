"""A trainable (or non-trainable) tensor: its value and its gradient."""

from __future__ import annotations


class Parameter:
    """``data`` and ``grad`` share shape, dtype and backend.

    ``backward`` passes *overwrite* ``grad`` (they never accumulate), so there is
    no ``zero_grad`` step to forget. Non-trainable parameters (BatchNorm running
    statistics) are updated by their layer in ``forward`` and skipped by optimizers.
    """

    def __init__(self, data, trainable: bool = True, name: str = ""):
        self.data = data
        self.grad = data * 0  # same shape, dtype and array library as data
        self.trainable = trainable
        self.name = name

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self) -> int:
        return int(self.data.size)

    def __repr__(self):
        kind = "" if self.trainable else ", trainable=False"
        return f"Parameter({self.name!r}, shape={tuple(self.shape)}, dtype={self.dtype}{kind})"
