"""Where the time goes: forward and backward time of every layer of a model, per backend.

    python -m bench.layers --backends numpy,numba --batch-size 32 --model cnn_dropout02
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import tinynet
from tinynet import models


def profile(model_name, backend, batch, steps=30, warmup=3, seed=0):
    b = tinynet.use_backend(backend)
    model = models.build(model_name, seed=seed)
    x = b.asarray(np.random.default_rng(seed).random((batch, *model.input_shape), dtype=np.float32))
    fwd = {layer.name: 0.0 for layer in model.layers}
    bwd = dict(fwd)

    def timer(totals):
        """A trace that charges the time since the previous layer finished to this layer."""
        def trace(layer, _in, _out):
            b.synchronize()
            now = time.perf_counter()
            totals[layer.name] += now - clock[0]
            clock[0] = now
        return trace

    clock = [0.0]
    for it in range(warmup + steps):
        clock[0] = time.perf_counter()
        out = model.forward(x, training=True, trace=timer(fwd if it >= warmup else dict(fwd)))
        d = out * 0 + 1
        clock[0] = time.perf_counter()
        model.backward(d, input_grad=False, trace=timer(bwd if it >= warmup else dict(bwd)))  # as in training
    return {k: (fwd[k] / steps * 1e3, bwd[k] / steps * 1e3) for k in fwd}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="cnn_dropout02")
    p.add_argument("--backends", default="numpy,numba")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=30)
    args = p.parse_args(argv)
    results = {}
    for be in args.backends.split(","):
        try:
            results[be] = profile(args.model, be, args.batch_size, args.steps)
        except tinynet.backend.BackendUnavailable as exc:
            print(f"{be}: skipped ({exc})")
    names = list(next(iter(results.values())))
    head = f"{'layer (ms per batch of ' + str(args.batch_size) + ')':<34}" + "".join(
        f"{be + ' fwd':>12}{be + ' bwd':>12}" for be in results)
    print(head)
    print("-" * len(head))
    for n in names:
        print(f"{n:<34}" + "".join(f"{results[be][n][0]:>12.2f}{results[be][n][1]:>12.2f}" for be in results))
    print(f"{'total':<34}" + "".join(
        f"{sum(v[0] for v in results[be].values()):>12.2f}{sum(v[1] for v in results[be].values()):>12.2f}"
        for be in results))
    for be in results:
        total = sum(sum(v) for v in results[be].values())
        print(f"{be}: {args.batch_size / total * 1e3:.0f} images/s through the layers (no optimizer, no data)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
