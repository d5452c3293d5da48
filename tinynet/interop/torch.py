"""The same network in PyTorch, with the same weights: a second gradient oracle beside finite differences.

``to_torch(model)`` builds an equivalent ``torch.nn.Sequential`` (Conv2D and Dense layouts converted, "same"
padding including its asymmetric case, max-pool padding with -inf, BatchNorm with Keras's momentum and
epsilon, Dropout replaced by the mask tinynet's last training forward drew); ``from_torch`` copies weights
back; ``compare_gradients`` runs one batch through both and compares the loss, every parameter's gradient
and the input's gradient, tensor by tensor. PyTorch is optional: this module imports it when called.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from ..arrays import to_numpy
from ..backend import get_backend, using_backend
from ..exceptions import InvalidType, InvalidValue, MissingDependency
from ..layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sigmoid, Softmax
from ..optional import INSTALL

# Relative error per tensor below which the two engines agree: float64 leaves only summation order;
# float32's own rounding, amplified through a deep network, stays under 1e-4 (measured on the zoo: 5e-5).
TOLERANCE = {"float64": 1e-9, "float32": 1e-4}
# A gradient that is zero in exact arithmetic (a bias just before a BatchNorm) is rounding noise in both
# engines: relative error is measured against at least this norm, so noise against noise is not a failure.
NOISE_FLOOR = {"float64": 1e-6, "float32": 1e-2}


def _torch():
    try:
        import torch
    except ImportError as exc:
        raise MissingDependency(f"comparing with PyTorch needs PyTorch, which tinynet itself does not: {INSTALL['torch']}") \
            from exc
    return torch


def _fixed_mask_module(torch, mask, rate):
    """What tinynet's Dropout did in its latest training forward: multiply by mask / (1 - rate); nothing otherwise."""

    class FixedDropout(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("keep", torch.as_tensor(mask) / (1.0 - rate) if mask is not None else None)

        def forward(self, x):
            return x * self.keep.to(x.dtype) if self.training and self.keep is not None else x

    return FixedDropout()


def _tensor(torch, a, dtype):
    return torch.as_tensor(np.ascontiguousarray(to_numpy(a)), dtype=dtype)


def _module(torch, layer, dtype, dropout):
    nn = torch.nn
    if isinstance(layer, Conv2D):
        conv = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel, stride=layer.stride)
        conv.weight.data = _tensor(torch, layer.params["W"].data, dtype)
        conv.bias.data = _tensor(torch, layer.params["b"].data, dtype)
        top, bottom, left, right = layer.pads
        return nn.Sequential(nn.ZeroPad2d((left, right, top, bottom)), conv) if any(layer.pads) else conv
    if isinstance(layer, MaxPool2D):
        pool = nn.MaxPool2d(layer.kernel, layer.stride)
        top, bottom, left, right = layer.pads
        return nn.Sequential(nn.ConstantPad2d((left, right, top, bottom), float("-inf")), pool) if any(layer.pads) else pool
    if isinstance(layer, Dense):
        linear = nn.Linear(layer.in_features, layer.out_features)
        linear.weight.data = _tensor(torch, to_numpy(layer.params["W"].data).T, dtype)  # tinynet: x @ W
        linear.bias.data = _tensor(torch, layer.params["b"].data, dtype)
        return linear
    if isinstance(layer, BatchNorm):
        kind = nn.BatchNorm2d if len(layer.input_shape) == 3 else nn.BatchNorm1d
        bn = kind(layer.input_shape[0], eps=layer.eps, momentum=1 - layer.momentum)  # Keras's m is PyTorch's 1 - m
        bn.weight.data = _tensor(torch, layer.params["gamma"].data, dtype)
        bn.bias.data = _tensor(torch, layer.params["beta"].data, dtype)
        bn.running_mean.data = _tensor(torch, layer.state["moving_mean"].data, dtype)
        bn.running_var.data = _tensor(torch, layer.state["moving_variance"].data, dtype)
        return bn
    if isinstance(layer, Dropout):
        if dropout == "random":
            return nn.Dropout(layer.rate)
        mask = layer.last_mask()
        return _fixed_mask_module(torch, None if mask is None else to_numpy(mask).astype(np.float64), layer.rate)
    simple = {ReLU: nn.ReLU, Sigmoid: nn.Sigmoid, Flatten: nn.Flatten}
    if type(layer) in simple:
        return simple[type(layer)]()
    if isinstance(layer, Softmax):
        return nn.Softmax(dim=1)
    raise InvalidType(f"no PyTorch equivalent for {type(layer).__name__}")


def to_torch(model, dropout="random"):
    """An equivalent ``torch.nn.Sequential`` in the model's dtype, holding copies of its weights.

    ``dropout="random"``: PyTorch's own Dropout (a twin to train); ``"last"``: each Dropout replays the mask
    tinynet's layer drew in its latest training forward (a twin to compare one step with).
    """
    if dropout not in ("random", "last"):
        raise InvalidValue(f"dropout must be 'random' or 'last', got {dropout!r}")
    torch = _torch()
    dtype = getattr(torch, str(model.dtype))
    return torch.nn.Sequential(*[_module(torch, layer, dtype, dropout) for layer in model.layers])


def _leaf(module):
    """The module holding a layer's weights (the conv inside a ZeroPad2d + Conv2d pair)."""
    return module[-1] if isinstance(module, _torch().nn.Sequential) else module


def from_torch(twin, model):
    """Copy the weights (and BatchNorm's running statistics) of ``to_torch(model)``'s result back into ``model``."""
    b = get_backend(model.backend)
    for layer, module in zip(model.layers, twin, strict=True):
        m = _leaf(module)
        if isinstance(layer, (Conv2D, Dense)):
            w = m.weight.detach().cpu().numpy()
            layer.params["W"].data = b.asarray(w.T.copy() if isinstance(layer, Dense) else w, dtype=model.dtype)
            layer.params["b"].data = b.asarray(m.bias.detach().cpu().numpy(), dtype=model.dtype)
        elif isinstance(layer, BatchNorm):
            for key, t in (("gamma", m.weight), ("beta", m.bias)):
                layer.params[key].data = b.asarray(t.detach().cpu().numpy(), dtype=model.dtype)
            for key, t in (("moving_mean", m.running_mean), ("moving_variance", m.running_var)):
                layer.state[key].data = b.asarray(t.detach().cpu().numpy(), dtype=model.dtype)
    return model


def _torch_grads(torch, twin, model):
    """Each parameter's gradient in the twin, under tinynet's names."""
    out = {}
    for layer, module in zip(model.layers, twin, strict=True):
        m = _leaf(module)
        if isinstance(layer, (Conv2D, Dense)):
            w = m.weight.grad.numpy()
            out[f"{layer.name}.W"] = w.T if isinstance(layer, Dense) else w
            out[f"{layer.name}.b"] = m.bias.grad.numpy()
        elif isinstance(layer, BatchNorm):
            out[f"{layer.name}.gamma"], out[f"{layer.name}.beta"] = m.weight.grad.numpy(), m.bias.grad.numpy()
    return out


@dataclass
class Comparison:
    """Loss and gradients of one batch, tinynet against PyTorch's autograd."""

    dtype: str
    loss: tuple  # (tinynet, torch)
    rows: list = field(default_factory=list)  # (tensor, shape, max |difference|, relative error)

    @property
    def tolerance(self):
        return TOLERANCE[self.dtype]

    @property
    def max_error(self):
        loss_error = abs(self.loss[0] - self.loss[1]) / max(abs(self.loss[1]), 1e-30)
        return max([loss_error] + [r[3] for r in self.rows])

    @property
    def ok(self):
        return self.max_error < self.tolerance

    def __str__(self):
        w = max(len(r[0]) for r in self.rows) + 2
        lines = [f"{'tensor':<{w}}{'shape':<20}{'max |a - b|':>13}  {'rel. error':>11}  verdict",
                 f"{'loss':<{w}}{'()':<20}{abs(self.loss[0] - self.loss[1]):>13.2e}  "
                 f"{abs(self.loss[0] - self.loss[1]) / max(abs(self.loss[1]), 1e-30):>11.2e}  "
                 f"(tinynet {self.loss[0]:.10g}, PyTorch {self.loss[1]:.10g})"]
        for name, shape, diff, rel in self.rows:
            lines.append(f"{name:<{w}}{str(shape):<20}{diff:>13.2e}  {rel:>11.2e}  {'ok' if rel < self.tolerance else 'FAIL'}")
        lines.append(f"max relative error {self.max_error:.2e} ({self.dtype}, tolerance {self.tolerance:.0e}): "
                     f"{'PASS' if self.ok else 'FAIL'}")
        return "\n".join(lines)


def compare_gradients(model, x, y, dtype="float64"):
    """One batch (x, integer labels y) through tinynet and its PyTorch twin in training mode, with
    softmax cross-entropy (mean over the batch): the loss, every parameter's gradient and the input's.

    The model is copied and cast to ``dtype``; the original is untouched. Dropout uses, in PyTorch, the
    mask tinynet drew. Relative error per tensor: |a - b| / max(|a| + |b|, NOISE_FLOOR), Euclidean norms.
    """
    from ..losses import SoftmaxCrossEntropy

    torch = _torch()
    dtype = str(np.dtype(dtype))
    m = copy.deepcopy(model)
    m.astype(dtype)
    b = get_backend(m.backend)
    with using_backend(b.name):
        xd = b.asarray(np.asarray(to_numpy(x), dtype=dtype))
        yd = b.asarray(np.asarray(to_numpy(y), dtype=np.int64))
        loss = SoftmaxCrossEntropy()
        value = float(loss.forward(m.forward(xd, training=True), yd))
        dx = to_numpy(m.backward(loss.backward(), input_grad=True))
    ours = {f"{layer.name}.{k}": to_numpy(p.grad) for layer in m.layers for k, p in layer.params.items()}

    twin = to_torch(m, dropout="last")  # after the forward: Dropout's masks exist now
    twin.train()
    xt = torch.as_tensor(to_numpy(xd)).requires_grad_(True)
    tloss = torch.nn.functional.cross_entropy(twin(xt), torch.as_tensor(to_numpy(yd)))
    tloss.backward()
    theirs = _torch_grads(torch, twin, m)
    theirs["input"], ours["input"] = xt.grad.numpy(), dx

    result = Comparison(dtype, (value, float(tloss.detach())))
    for name, a in ours.items():
        t = theirs[name].astype(np.float64)
        a = a.astype(np.float64)
        scale = max(np.linalg.norm(a) + np.linalg.norm(t), NOISE_FLOOR[dtype])
        result.rows.append((name, tuple(a.shape), float(np.max(np.abs(a - t))), float(np.linalg.norm(a - t) / scale)))
    return result
