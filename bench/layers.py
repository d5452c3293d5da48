"""Where the time goes: forward and backward time of every layer of a model, per backend, and PyTorch's twin.

    python -m bench.layers --backends numpy,numba,torch --batch-size 32 --model cnn_dropout02
    python -m bench.layers --model deep_bn_cnn --backends numba,torch --batch-size 32 --out bench/runs/layers_deep_b32.json

A training step as fit runs it (no input gradient), timed layer by layer: each layer is charged the time since the
previous one finished (a trace hook; on a GPU it synchronises, so the step runs slower than in training). The last
row is the optimizer's step (Adam). PyTorch's rows come from the same network with the same weights
(tinynet.interop.torch.to_torch) timed with module hooks, forward and backward, on the same batch; its backward of
a layer holds the work autograd does for it, charged the same way.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import tinynet
from tinynet import models

OPTIMIZER_ROW = "adam step"


def profile(model_name, backend, batch, steps=30, warmup=3, seed=0):
    """{layer name: (forward ms, backward ms)} per batch, and the optimizer's step under OPTIMIZER_ROW."""
    from tinynet.optim import Adam

    b = tinynet.use_backend(backend)
    model = models.build(model_name, seed=seed)
    opt = Adam(model.parameters())
    x = b.asarray(np.random.default_rng(seed).random((batch, *model.input_shape), dtype=np.float32))
    fwd = {layer.name: 0.0 for layer in model.layers}
    bwd = dict(fwd)
    step = [0.0]

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
        timed = it >= warmup
        clock[0] = time.perf_counter()
        out = model.forward(x, training=True, trace=timer(fwd if timed else dict(fwd)))
        d = out * 0 + 1
        clock[0] = time.perf_counter()
        model.backward(d, input_grad=False, trace=timer(bwd if timed else dict(bwd)))  # as in training
        t = time.perf_counter()
        opt.step()
        b.synchronize()
        step[0] += (time.perf_counter() - t) if timed else 0.0
    rows = {k: (fwd[k] / steps * 1e3, bwd[k] / steps * 1e3) for k in fwd}
    rows[OPTIMIZER_ROW] = (0.0, step[0] / steps * 1e3)
    return rows


def profile_torch(model_name, batch, steps=30, warmup=3, seed=0):
    """The same rows for PyTorch (CPU) running the twin of the model."""
    import torch

    from bench.common import torch_twin

    torch.set_num_threads(os.cpu_count() or 1)
    model = models.build(model_name, seed=seed)
    twin = torch_twin(model).train()
    opt = torch.optim.Adam(twin.parameters(), lr=1e-3, eps=1e-7)
    names = [layer.name for layer in model.layers]
    fwd, bwd = dict.fromkeys(names, 0.0), dict.fromkeys(names, 0.0)
    clock, timed = [0.0], [False]

    def charge(totals, name):
        now = time.perf_counter()
        if timed[0]:
            totals[name] += now - clock[0]
        clock[0] = now

    for name, module in zip(names, twin, strict=True):
        module.register_forward_hook(lambda m, i, o, n=name: charge(fwd, n))
        module.register_full_backward_hook(lambda m, gi, go, n=name: charge(bwd, n))
    x = torch.tensor(np.random.default_rng(seed).random((batch, *model.input_shape), dtype=np.float32))
    x.requires_grad_(True)  # full backward hooks fire only where an input needs a gradient; the first layer's dx
    step = 0.0  # (which tinynet skips) is charged to it, so PyTorch's first row holds some work tinynet's does not
    for it in range(warmup + steps):
        timed[0] = it >= warmup
        opt.zero_grad(set_to_none=True)
        clock[0] = time.perf_counter()
        out = twin(x)
        clock[0] = time.perf_counter()
        out.backward(torch.ones_like(out))
        t = time.perf_counter()
        opt.step()
        step += (time.perf_counter() - t) if timed[0] else 0.0
    rows = {k: (fwd[k] / steps * 1e3, bwd[k] / steps * 1e3) for k in names}
    rows[OPTIMIZER_ROW] = (0.0, step / steps * 1e3)
    return rows


def table(results, batch):
    """A Markdown table: one row per layer, forward and backward ms per batch for each backend, and the totals."""
    names = list(next(iter(results.values())))
    head = f"| layer (ms per batch of {batch}) | " + " | ".join(f"{be} fwd | {be} bwd" for be in results) + " |"
    lines = [head, "|---|" + "---:|---:|" * len(results)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(f"{results[be][n][0]:.2f} | {results[be][n][1]:.2f}" for be in results)
                     + " |")
    totals = {be: sum(sum(v) for v in rows.values()) for be, rows in results.items()}
    lines.append("| **total (images/s)** | " + " | ".join(
        f"{sum(v[0] for v in results[be].values()):.2f} | {sum(v[1] for v in results[be].values()):.2f} "
        f"({batch / totals[be] * 1e3:,.0f} img/s)" for be in results) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="cnn_dropout02")
    p.add_argument("--backends", default="numpy,numba", help="comma list of tinynet backends and torch")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--out", help="a JSON file for the rows, the recipe and the machine")
    args = p.parse_args(argv)
    results = {}
    for be in args.backends.split(","):
        try:
            results[be] = (profile_torch(args.model, args.batch_size, args.steps) if be == "torch"
                           else profile(args.model, be, args.batch_size, args.steps))
        except (tinynet.backend.BackendUnavailable, ImportError) as exc:
            print(f"{be}: skipped ({exc})")
    print(table(results, args.batch_size))
    if args.out:
        from tinynet.provenance import record, strict_json

        run = record(vars(args))
        run["command"] = "python -m bench.layers " + " ".join(argv if argv is not None else sys.argv[1:])
        data = {"model": args.model, "batch": args.batch_size, "results": results, "run": run}
        with open(args.out, "w") as f:
            f.write(strict_json(data, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
