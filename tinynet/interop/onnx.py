"""Export a model's inference graph to ONNX, for ONNX Runtime and everything else that reads it.

``export(model, path)`` writes the network as it predicts: Conv (its pads in ONNX's order, so the asymmetric
"same" case needs no extra node), MaxPool (ONNX pads max-pooling with -inf, as tinynet does), Gemm for Dense,
BatchNormalization with the running statistics, Relu, Sigmoid, Softmax, Flatten; Dropout is left out (it is
the identity at inference). The graph is checked with ``onnx.checker`` before it is written. ``onnx`` is
optional: this module imports it when called.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..arrays import to_numpy
from ..exceptions import InvalidType, MissingDependency
from ..layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sigmoid, Softmax
from ..optional import INSTALL

OPSET = 17


def _onnx():
    try:
        import onnx
    except ImportError as exc:
        raise MissingDependency(f"exporting to ONNX needs the onnx package, which tinynet itself does not: {INSTALL['onnx']}") \
            from exc
    return onnx


def _onnx_pads(pads):
    """tinynet's (top, bottom, left, right) -> ONNX's (top, left, bottom, right)."""
    top, bottom, left, right = pads
    return [top, left, bottom, right]


def build(model):
    """The model's inference graph as an ``onnx.ModelProto`` (input "images" (N, C, H, W), output "logits")."""
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    elem = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}[np.dtype(model.dtype)]
    nodes, weights = [], []

    def weight(name, array):
        weights.append(numpy_helper.from_array(np.ascontiguousarray(to_numpy(array)).astype(model.dtype), name))
        return name

    current = "images"
    for i, layer in enumerate(model.layers):
        out = "logits" if i == len(model.layers) - 1 else f"{layer.name}_out"
        n = layer.name
        if isinstance(layer, Conv2D):
            nodes.append(helper.make_node(
                "Conv", [current, weight(f"{n}.W", layer.params["W"].data), weight(f"{n}.b", layer.params["b"].data)],
                [out], kernel_shape=list(layer.kernel), strides=list(layer.stride), pads=_onnx_pads(layer.pads), name=n))
        elif isinstance(layer, MaxPool2D):
            nodes.append(helper.make_node("MaxPool", [current], [out], kernel_shape=list(layer.kernel),
                                          strides=list(layer.stride), pads=_onnx_pads(layer.pads), name=n))
        elif isinstance(layer, Dense):
            nodes.append(helper.make_node(
                "Gemm", [current, weight(f"{n}.W", layer.params["W"].data), weight(f"{n}.b", layer.params["b"].data)],
                [out], name=n))  # x @ W + b: tinynet's W is (in, out), as Gemm's B without transB
        elif isinstance(layer, BatchNorm):
            names = [weight(f"{n}.{k}", p.data) for k, p in (("gamma", layer.params["gamma"]), ("beta", layer.params["beta"]),
                     ("moving_mean", layer.state["moving_mean"]), ("moving_variance", layer.state["moving_variance"]))]
            nodes.append(helper.make_node("BatchNormalization", [current, *names], [out], epsilon=layer.eps, name=n))
        elif isinstance(layer, Flatten):
            nodes.append(helper.make_node("Flatten", [current], [out], axis=1, name=n))
        elif isinstance(layer, Softmax):
            nodes.append(helper.make_node("Softmax", [current], [out], axis=1, name=n))
        elif isinstance(layer, (ReLU, Sigmoid)):
            nodes.append(helper.make_node({ReLU: "Relu", Sigmoid: "Sigmoid"}[type(layer)], [current], [out], name=n))
        elif isinstance(layer, Dropout):
            if i == len(model.layers) - 1:
                nodes.append(helper.make_node("Identity", [current], [out], name=n))
            else:
                continue  # the identity at inference: the next node reads this one's input
        else:
            raise InvalidType(f"no ONNX operator for {type(layer).__name__}")
        current = out

    graph = helper.make_graph(
        nodes, model.name,
        [helper.make_tensor_value_info("images", elem, ["N", *model.input_shape])],
        [helper.make_tensor_value_info("logits", elem, ["N", *model.output_shape])],
        initializer=weights,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tinynet")
    proto.ir_version = min(proto.ir_version, 10)  # readable by ONNX Runtime releases of the last two years
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export(model, path):
    """Write ``model``'s inference graph to ``path`` (checked by onnx.checker first); returns the path."""
    onnx = _onnx()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(build(model), str(path))
    return path
