"""A stack of layers run in order; backward runs them in reverse."""

from __future__ import annotations

import numpy as np

from . import checks
from .backend import get_backend, using_backend
from .exceptions import InvalidType, InvalidValue
from .inference import batched_outputs
from .layers.base import Layer


class Sequential:
    """``Sequential(layers, input_shape=None, dtype=np.float32, seed=None)``.

    ``input_shape`` is one sample's shape, e.g. ``(1, 28, 28)``; with it every
    layer is built at once (in_channels / in_features inferred). Without it the
    model is built on the first ``forward``, taking that input's dtype. All
    weight initialisation draws from ``numpy.random.default_rng(seed)``.

    The model lives on the backend that was current when it was created
    (``model.backend``); ``model.to("cupy")`` moves it, and its forward/backward
    always run on it.
    """

    def __init__(self, layers, input_shape=None, dtype=np.float32, seed=None, name="sequential"):
        self.layers = list(layers)
        if not self.layers:  # its forward would be the identity and its backward would have nothing to run
            raise InvalidValue("Sequential needs at least one layer, got none")
        first_seen = {}
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise InvalidType(f"layer {i} is a {type(layer).__name__}, not a tinynet Layer")
            if id(layer) in first_seen:
                j = first_seen[id(layer)]
                raise InvalidValue(
                    f"layers {j} and {i} are the same {type(layer).__name__} object. A layer keeps what its forward "
                    "pass saw for its backward pass, so one instance used twice gives wrong gradients: create one "
                    f"per position, e.g. {type(layer).__name__}(...) twice"
                )
            first_seen[id(layer)] = i
        self.dtype = checks.float_dtype(dtype)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.name = name
        self.backend = get_backend().name
        self._name_layers()
        self.input_shape = None
        if input_shape is not None:
            self.build(input_shape)

    def _name_layers(self):
        """Keras-style unique names: conv2d, conv2d_1, dense, dense_1, ..."""
        seen: dict[str, int] = {}
        for layer in self.layers:
            base = layer.name.rsplit("_", 1)[0] if layer.name.rsplit("_", 1)[-1].isdigit() else layer.name
            k = seen.get(base, 0)
            layer.name = base if k == 0 else f"{base}_{k}"
            seen[base] = k + 1

    # -- building ------------------------------------------------------------
    def build(self, input_shape, dtype=None):
        input_shape = tuple(int(s) for s in input_shape)
        if dtype is not None:
            self.dtype = checks.float_dtype(dtype)
        with using_backend(self.backend):
            shape = input_shape
            for layer in self.layers:
                if layer.built:
                    if layer.input_shape != shape:
                        raise InvalidValue(f"{layer.name} was built for {layer.input_shape}, model feeds it {shape}")
                else:
                    layer.build(shape, self.dtype, self.rng)
                shape = layer.output_shape(shape)
        self.input_shape = input_shape
        self.output_shape = shape
        return self

    @property
    def built(self) -> bool:
        return self.input_shape is not None

    # -- running -----------------------------------------------------------------
    def _check_input(self, x):
        checks.float_batch(x, "model input", get_backend(self.backend))
        if not self.built:
            self.build(x.shape[1:], x.dtype)
        checks.fits(x, "model", self.input_shape, self.dtype)

    def forward(self, x, training=False, trace=None):
        """Run the layers in order. ``trace(layer, x, y)``, if given, sees each layer's input and output
        as it goes (``tinynet inspect``, ``bench.layers`` and ``gradcheck`` watch the model this way)."""
        with using_backend(self.backend):
            self._check_input(x)
            for layer in self.layers:
                y = layer.forward(x, training=training)
                if trace is not None:
                    trace(layer, x, y)
                x = y
            return x

    __call__ = forward

    def backward(self, dy, input_grad=True, trace=None):
        """Backprop ``dy`` (the loss gradient w.r.t. the output); returns dx, or None
        when ``input_grad=False`` (training needs no gradient w.r.t. the images).
        ``trace(layer, dy, dx)``, if given, sees each layer's gradients, last layer first."""
        with using_backend(self.backend):
            self.layers[0].input_grad = input_grad
            for layer in reversed(self.layers):
                dx = layer.backward(dy)
                if trace is not None:
                    trace(layer, dy, dx)
                if dx is None:
                    break
                dy = dx
            return dx

    def predict(self, x, batch_size=256):
        """Outputs (logits) for host or device ``x``, in batches, returned on the host
        (on running out of device memory the batch is halved: see tinynet/inference.py; float images above 1
        give a warning: see checks.warn_if_unscaled)."""
        if len(x) == 0:
            raise InvalidValue("predict got no samples")
        checks.warn_if_unscaled(x, stacklevel=2)  # float images above 1: not scaled by to_float
        return batched_outputs(self, x, batch_size)

    def predict_proba(self, x, batch_size=256):
        """Class probabilities for ``x`` (float64 on the host, each row summing to 1): the softmax of ``predict``'s
        logits, or the outputs themselves when the model already ends with a Softmax layer.
        ``tinynet.data.decode_predictions(p)`` names the most likely classes."""
        from .layers import Softmax
        from .layers.softmax import softmax

        out = self.predict(x, batch_size).astype(np.float64)
        return out if isinstance(self.layers[-1], Softmax) else softmax(out)

    # -- saving --------------------------------------------------------------------
    def get_config(self) -> dict:
        """The architecture as JSON values, without weights: the name, input shape, dtype and each layer's class,
        name and constructor arguments. ``Sequential.from_config(config)`` builds the same model (fresh weights)."""
        from .layers import layer_config

        if not self.built:
            raise InvalidValue("get_config() needs a built model: pass input_shape or run one forward first")
        return {"name": self.name, "input_shape": list(self.input_shape), "dtype": str(self.dtype),
                "layers": [layer_config(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config, seed=None):
        """The model ``get_config`` describes, built, its weights freshly initialised from ``seed``."""
        from .layers import from_config

        layers = [from_config(spec) for spec in config["layers"]]
        names = [layer.name for layer in layers]
        model = cls(layers, dtype=config["dtype"], seed=seed, name=config["name"])
        if len(set(names)) != len(names):
            raise InvalidValue(f"the layers' names are not unique: {names}")
        for layer, name in zip(model.layers, names, strict=True):  # the saved names, even if not Keras-style
            layer.name = name
        return model.build(config["input_shape"])

    def save(self, path, optimizer=None, **kwargs):
        """Save weights and architecture to a safetensors checkpoint (see tinynet.checkpoint.save_checkpoint);
        ``tinynet.load_model(path)`` gives the model back."""
        from .checkpoint import save_checkpoint

        return save_checkpoint(path, self, optimizer, **kwargs)

    # -- parameters ------------------------------------------------------------
    def parameters(self):
        """Trainable parameters, in layer order."""
        return [p for layer in self.layers for p in layer.params.values()]

    def persistent_arrays(self) -> list:
        """Every layer's parameters and state, and the arrays its steps update in place (Layer.persistent_arrays)."""
        return [a for layer in self.layers for a in layer.persistent_arrays()]

    def named_arrays(self):
        """Every parameter and state tensor by a stable name, e.g. 'conv2d.W'."""
        out = {}
        for layer in self.layers:
            for key, p in list(layer.params.items()) + list(layer.state.items()):
                out[f"{layer.name}.{key}"] = p
        return out

    def largest_buffer_per_sample(self) -> int:
        """Bytes of the largest temporary a forward pass makes per sample: a convolution's im2col columns
        (C*KH*KW by OH*OW), or a layer's output. Evaluation sizes its batches with it."""
        if not self.built:
            return 0
        largest, shape = 0, self.input_shape
        for layer in self.layers:
            out = layer.output_shape(shape)
            size = int(np.prod(out))
            if hasattr(layer, "kernel") and hasattr(layer, "out_channels"):  # a convolution's columns
                size = max(size, shape[0] * layer.kernel[0] * layer.kernel[1] * out[1] * out[2])
            largest, shape = max(largest, size), out
        return largest * self.dtype.itemsize

    def n_params(self):
        t = sum(layer.n_params()[0] for layer in self.layers)
        nt = sum(layer.n_params()[1] for layer in self.layers)
        return t, nt

    def astype(self, dtype):
        self.dtype = checks.float_dtype(dtype)
        for layer in self.layers:
            layer.astype(dtype)
        return self

    def to(self, backend, optimizer=None):
        """Move the model (and optionally its optimizer state) onto another backend."""
        b = get_backend(backend)  # raises BackendUnavailable with the reason
        for layer in self.layers:
            layer.to(b)
        if optimizer is not None:
            optimizer.to(b)
        self.backend = b.name
        return self

    def summary(self, print_fn=print) -> str:
        """A Keras-like table: layer, output shape, parameter count; then the totals."""
        if not self.built:
            raise InvalidValue("summary() needs a built model: pass input_shape or run one forward first")
        rows = [("Layer (type)", "Output Shape", "Param #")]
        shape = self.input_shape
        for layer in self.layers:
            shape = layer.output_shape(shape)
            rows.append((f"{layer.name} ({type(layer).__name__})", str((None, *shape)), f"{sum(layer.n_params()):,}"))
        w0 = max(len(r[0]) for r in rows) + 2
        w1 = max(len(r[1]) for r in rows) + 2
        line = "=" * (w0 + w1 + 10)
        out = [f'Model: "{self.name}"', line]
        out += [f"{a:<{w0}}{b:<{w1}}{c:>10}" for a, b, c in rows[:1]] + [line]
        out += [f"{a:<{w0}}{b:<{w1}}{c:>10}" for a, b, c in rows[1:]]
        t, nt = self.n_params()
        nbytes = self.dtype.itemsize
        out += [
            line,
            f"Total params: {t + nt:,} ({(t + nt) * nbytes / 1024:.2f} KB)",
            f"Trainable params: {t:,} ({t * nbytes / 1024:.2f} KB)",
            f"Non-trainable params: {nt:,} ({nt * nbytes / 1024:.2f} KB)",
            line,
        ]
        text = "\n".join(out)
        if print_fn is not None:
            print_fn(text)
        return text

    def __repr__(self):
        return f"Sequential({self.layers!r})"
