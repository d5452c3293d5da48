"""Optimizers: they read each trainable Parameter's ``.grad`` and update ``.data`` in place."""

from __future__ import annotations

import math

from . import kernels
from .backend import get_backend


class Optimizer:
    def __init__(self, params, lr):
        self.params = [p for p in params if p.trainable]
        if not self.params:
            raise ValueError("the optimizer got no trainable parameters (is the model built?)")
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"learning rate must be a positive finite number, got {lr!r}")
        self.lr = float(lr)
        self.t = 0  # steps taken

    def step(self):
        raise NotImplementedError

    def state_arrays(self) -> dict:
        """Named arrays of the optimizer state (for checkpoints)."""
        return {}

    def load_state_arrays(self, arrays: dict, t: int):
        self.t = int(t)

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
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = momentum
        self.velocity = [p.data * 0 for p in self.params] if momentum else []

    def step(self):
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
    """

    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-7):
        super().__init__(params, lr)
        for name, b in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= b < 1:
                raise ValueError(f"{name} must be in [0, 1), got {b!r}")
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = [p.data * 0 for p in self.params]
        self.v = [p.data * 0 for p in self.params]

    def step(self):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        lr_t = self.lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            # the update itself is a kernel (tinynet/kernels/numpy_ref.py: adam_update) so Numba can fuse it
            kernels.adam_update(p.data, p.grad, m, v, lr_t, b1, b2, self.eps)

    def state_arrays(self):
        out = {f"m.{i}": m for i, m in enumerate(self.m)}
        out.update({f"v.{i}": v for i, v in enumerate(self.v)})
        return out

    def load_state_arrays(self, arrays, t):
        super().load_state_arrays(arrays, t)
        n = len(self.params)
        self.m = [arrays[f"m.{i}"] for i in range(n)]
        self.v = [arrays[f"v.{i}"] for i in range(n)]
