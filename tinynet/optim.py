"""Optimizers: they read each trainable Parameter's ``.grad`` and update ``.data`` in place."""

from __future__ import annotations

import numpy as np

from . import kernels
from .arrays import to_numpy, xp_of
from .backend import get_backend
from .checks import integer, real
from .exceptions import InvalidType, InvalidValue


def check_learning_rate(lr, what="learning rate"):
    """A positive, finite real number (Python or NumPy); returned as a Python float."""
    return real(lr, what, 0, low_open=True)


MAX_STEPS = 2**53  # Adam counts steps in a float64, exact up to 2**53 (and 10**400 would not fit at all)


def check_step_count(t):
    """An integer in [0, 2**53] (Python or NumPy)."""
    return integer(t, "the optimizer step count", 0, MAX_STEPS, high_text="2**53")


class Optimizer:
    #: device-side copies of t and lr ((1,) float64 arrays beside the parameters), for optimizers whose
    #: update reads them there (Adam); None when the update uses the host numbers
    _scalars = None

    def __init__(self, params, lr):
        self.params = [p for p in params if p.trainable]
        if not self.params:
            raise InvalidValue("the optimizer got no trainable parameters (is the model built?)")
        self.lr = lr
        self.t = 0  # steps taken

    @property
    def lr(self) -> float:
        return self._lr_value

    @lr.setter
    def lr(self, value):
        self._lr_value = check_learning_rate(value)
        if self._scalars is not None:
            self._scalars["lr"].fill(self._lr_value)

    @property
    def t(self) -> int:
        """Steps taken (where it lives on a GPU, reading it waits for the device)."""
        return self._t_value if self._scalars is None else int(to_numpy(self._scalars["t"])[0])

    @t.setter
    def t(self, value):
        self._t_value = check_step_count(value)
        if self._scalars is not None:
            self._scalars["t"].fill(self._t_value)

    def step(self):
        raise NotImplementedError

    def check_gradients(self):
        """Every parameter has a gradient of its own shape, dtype and backend: checked before anything changes."""
        for i, p in enumerate(self.params):
            name = p.name or f"parameter {i}"
            if p.grad is None:
                raise InvalidValue(f"{name} has no gradient (grad is None): run backward before step()")
            if type(p.grad) is not type(p.data):
                raise InvalidType(f"{name}: its gradient is a {type(p.grad).__name__}, the parameter a {type(p.data).__name__}")
            if tuple(p.grad.shape) != tuple(p.data.shape) or p.grad.dtype != p.data.dtype:
                raise InvalidValue(f"{name}: gradient {p.grad.dtype}{list(p.grad.shape)} does not match the parameter "
                                 f"{p.data.dtype}{list(p.data.shape)}")

    def state_arrays(self) -> dict:
        """Named arrays of the optimizer state (for checkpoints)."""
        return {}

    def load_state_arrays(self, arrays: dict, t: int):
        self.t = t

    def persistent_arrays(self) -> list:
        """The state arrays a step updates in place (a CUDA graph replays on these very arrays)."""
        return [*self.state_arrays().values(), *(self._scalars or {}).values()]

    def to(self, backend):
        """Move the optimizer state onto another backend, in place."""
        b = get_backend(backend)
        arrays = {k: b.asarray(v) for k, v in self.state_arrays().items()}
        self.load_state_arrays(arrays, self.t)
        return self


class SGD(Optimizer):
    """v = momentum * v - lr * g;  p += v   (plain SGD when momentum = 0: p -= lr * g)."""

    def __init__(self, params, lr, momentum=0.0):
        super().__init__(params, lr)
        self.momentum = real(momentum, "momentum", 0, 1, high_open=True)
        self.velocity = [p.data * 0 for p in self.params] if momentum else []

    def step(self):
        self.check_gradients()
        self.t += 1
        for i, p in enumerate(self.params):
            if self.momentum:
                v = self.velocity[i]
                v *= self.momentum
                v -= self.lr * p.grad
                p.data += v
            else:
                p.data -= self.lr * p.grad

    def state_arrays(self):
        return {f"velocity.{i}": v for i, v in enumerate(self.velocity)}

    def load_state_arrays(self, arrays, t):
        super().load_state_arrays(arrays, t)
        if self.momentum:
            self.velocity = [arrays[f"velocity.{i}"] for i in range(len(self.params))]


class Adam(Optimizer):
    """Adam (Kingma & Ba), in the form Keras uses, with Keras's defaults:

        m = b1 m + (1 - b1) g          v = b2 v + (1 - b2) g^2
        lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)
        p -= lr_t * m / (sqrt(v) + eps)

    ``weight_decay=wd > 0`` makes it AdamW (Loshchilov & Hutter, "Decoupled weight
    decay", PyTorch's ``AdamW``): before the step above, every weight matrix and
    convolution kernel shrinks by ``p *= 1 - lr * wd``. The decay is decoupled from
    the gradient, so m and v never see it. Biases and BatchNorm's gamma/beta (the
    1-D parameters) are not decayed: shrinking them towards 0 is no regulariser.

    t and lr are kept in (1,)-shaped float64 arrays beside the parameters, and lr_t
    is computed where the update runs. On a GPU this matters: a training step
    captured in a CUDA graph then computes each replay's own lr_t, where a host
    number would be frozen into the graph at capture time.
    """

    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-7, weight_decay=0.0):
        self.beta1 = real(beta1, "beta1", 0, 1, high_open=True)
        self.beta2 = real(beta2, "beta2", 0, 1, high_open=True)
        self.eps = real(eps, "eps", 0, low_open=True)
        self.weight_decay = real(weight_decay, "weight_decay", 0)
        super().__init__(params, lr)
        self.m = [p.data * 0 for p in self.params]
        self.v = [p.data * 0 for p in self.params]
        self._make_scalars(xp_of(self.params[0].data), 0)

    def _make_scalars(self, xp, t):
        """t and lr as (1,) float64 arrays of library ``xp``."""
        self._scalars = {"t": xp.full(1, t, dtype=np.float64), "lr": xp.full(1, self.lr, dtype=np.float64)}

    def step(self):
        self.check_gradients()
        t, lr = self._scalars["t"], self._scalars["lr"]
        t += 1
        if self.weight_decay:
            # (1,)-shaped, computed from the device-side lr (a CUDA graph replays it with each step's lr)
            shrink = (1 - lr * self.weight_decay).astype(self.params[0].data.dtype)  # float32 stays float32
            for p in self.params:
                if p.data.ndim >= 2:
                    p.data *= shrink
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            # the update itself is a kernel (tinynet/kernels/numpy_ref.py: adam_update) so Numba and CUDA can fuse it
            kernels.adam_update(p.data, p.grad, m, v, t, lr, self.beta1, self.beta2, self.eps)

    def state_arrays(self):
        out = {f"m.{i}": m for i, m in enumerate(self.m)}
        out.update({f"v.{i}": v for i, v in enumerate(self.v)})
        return out

    def load_state_arrays(self, arrays, t):
        t = check_step_count(t)
        n = len(self.params)
        self.m = [arrays[f"m.{i}"] for i in range(n)]
        self.v = [arrays[f"v.{i}"] for i in range(n)]
        self._make_scalars(xp_of(self.m[0]), t)
