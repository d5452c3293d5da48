"""The ``tinynet`` command line (also ``python -m tinynet``)."""

from __future__ import annotations

import argparse
import sys

import numpy as np


def cmd_models(args):
    import models

    print(f"{'model':<26}{'params':>12}   Keras reference")
    for name, info in models.MODELS.items():
        mark = " (default)" if name == models.DEFAULT else ""
        print(f"{name:<26}{info.params:>12,}   {info.keras_reference}{mark}")
    return 0


def cmd_gradcheck(args):
    import models
    import tinynet
    from tinynet.losses import SoftmaxCrossEntropy

    tinynet.use_backend(args.backend)
    model = models.build(args.model, seed=args.seed, dtype="float64")
    rng = np.random.default_rng(args.seed)
    for _attempt in range(10):  # redraw inputs that sit on a ReLU / max-pool kink
        x = rng.random((args.batch, *model.input_shape))
        y = rng.integers(0, 10, args.batch)
        report = tinynet.gradcheck(model, x, y, SoftmaxCrossEntropy(), max_entries=args.entries, seed=args.seed)
        if not report.near_kink:
            break
    print(f"gradient check of {args.model} (float64, batch {args.batch}, loss included, backend {args.backend})")
    print(report)
    return 0 if report.ok else 1


def build_parser():
    p = argparse.ArgumentParser(prog="tinynet", description="tinynet: hand-written backprop on NumPy / Numba / CuPy")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("models", help="list the models with parameter counts")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("gradcheck", help="finite-difference check of a whole model, per tensor")
    s.add_argument("model", nargs="?", default="cnn_dropout02")
    s.add_argument("--batch", type=int, default=2)
    s.add_argument("--entries", type=int, default=10, help="entries checked per tensor")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--backend", default="numpy", choices=["numpy", "numba", "cupy"])
    s.set_defaults(func=cmd_gradcheck)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, RuntimeError, OSError) as exc:
        print(f"tinynet: error: {exc}", file=sys.stderr)
        return 2
