"""Max pooling: keep the largest value of each window; route gradients back to it."""

from __future__ import annotations

from .. import kernels
from ..exceptions import InvalidValue
from ..padding import check_padding, pair, window_geometry
from .base import Layer


class MaxPool2D(Layer):
    """x (N, C, H, W) -> y (N, C, OH, OW).  ``stride`` defaults to ``pool_size``.

    Forward remembers which element of each window won (argmax); backward sends
    each dy to that element only (ties: the first one in the window wins).
    """

    sample_ndim = 3

    def __init__(self, pool_size=2, stride=None, padding="valid"):
        super().__init__()
        self.kernel = pair(pool_size, "pool_size")
        if self.kernel[0] * self.kernel[1] > 127:
            raise InvalidValue(f"pool_size {self.kernel} is too large (at most 127 elements per window)")
        self.stride = pair(stride if stride is not None else self.kernel, "stride")
        self.padding = check_padding(padding)
        if isinstance(self.padding, int) and self.padding >= min(self.kernel):
            raise InvalidValue(f"MaxPool2D padding must be smaller than the pool {self.kernel} (a window of padding "
                             f"alone has no maximum), got {padding!r}")
        self.name = "max_pooling2d"

    def _geometry(self, input_shape):
        return window_geometry(self.padding, input_shape[1:], self.kernel, self.stride, "MaxPool2D pool")

    def output_shape(self, input_shape):
        _, oh, ow = self._geometry(input_shape)
        return (input_shape[0], oh, ow)

    def get_config(self):
        return {"pool_size": list(self.kernel), "stride": list(self.stride), "padding": self.padding}

    def _create_params(self, rng):
        self.pads, _, _ = self._geometry(self.input_shape)

    def forward(self, x, training=False):
        self._check_input(x)
        kh, kw = self.kernel
        y, self.argmax = kernels.maxpool_forward(x, kh, kw, self.stride, self.pads)
        self.x_shape = x.shape
        return y

    def backward(self, dy):
        kh, kw = self.kernel
        return kernels.maxpool_backward(dy, self.argmax, self.x_shape, kh, kw, self.stride, self.pads)

    def kink_state(self):
        """Which input won each window in the latest forward: gradcheck's finite differences are only valid
        while this does not change."""
        return self.argmax

    def __repr__(self):
        return f"MaxPool2D(pool_size={self.kernel}, stride={self.stride}, padding={self.padding!r})"
