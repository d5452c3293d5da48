"""Count the kernel launches of one training step on the CuPy backend, without a GPU.

    python -m bench.launches --model cnn_dropout02 --batch-size 128

The step runs on the strict CuPy stand-in (tests/fake_cupy.py), which counts every kernel launch:
tinynet's own CUDA kernels, and every CuPy array operation (each one kernel on a GPU; a cuBLAS GEMM
is counted as one, though cuBLAS may split it). Views (reshape, slices) launch nothing. The step is
counted warm, run plainly and replayed as the CUDA graph that ``fit`` uses on a GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parents[1] / "tests"


def count(model_name, batch_size, seed=0) -> dict:
    """{'eager': launches of one plain step, 'graph': launches of one replayed step} (batch gathers included)."""
    sys.path.insert(0, str(TESTS))
    try:
        import fake_cupy
    finally:
        sys.path.remove(str(TESTS))
    import tinynet
    from tinynet import models
    from tinynet.cuda_graph import CapturedStep
    from tinynet.losses import SoftmaxCrossEntropy
    from tinynet.optim import Adam
    from tinynet.train import train_step

    with fake_cupy.installed() as cp:
        model = models.build(model_name, seed=seed).to("cupy")
        rng = np.random.default_rng(seed)
        xd = cp.asarray(rng.random((batch_size, *model.input_shape), dtype=np.float32))
        yd = cp.asarray(rng.integers(0, model.output_shape[0], batch_size))
        idx, totals = cp.arange(batch_size), cp.zeros(2)
        loss, opt = SoftmaxCrossEntropy(check_labels=False), Adam(model.parameters())

        def plain(xd, yd, idx):
            return train_step(model, loss, opt, xd[idx], yd[idx], totals)

        graphed = CapturedStep(lambda xb, yb: train_step(model, loss, opt, xb, yb, totals), tinynet.get_backend("cupy"),
                               batch_size, model.input_shape, model.dtype)
        out = {}
        for name, step in (("eager", plain), ("graph", graphed)):
            # a plain step multiplies with cuBLAS; the graphed run with tinynet's kernel, inside its stream
            with graphed if step is graphed else contextlib.nullcontext():
                step(xd, yd, idx)  # warm: kernels compiled (and, for the graph, the next call captures)
                step(xd, yd, idx)
                before = cp.stats["launches"]
                cp.launches_by_name.clear()
                step(xd, yd, idx)
                out[name] = cp.stats["launches"] - before
                out[f"{name}_by_kernel"] = dict(sorted(cp.launches_by_name.items(), key=lambda kv: -kv[1]))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="cnn_dropout02")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--by-kernel", action="store_true", help="also list what the plain step launches")
    args = p.parse_args(argv)
    c = count(args.model, args.batch_size)
    if args.by_kernel:
        print(", ".join(f"{k} {n}" for k, n in c["eager_by_kernel"].items()))
    print(f"{args.model}, batch {args.batch_size}: {c['eager']} kernel launches per training step; "
          f"{c['graph']} when the step is replayed as a CUDA graph (1 graph launch + 2 batch copies)")


if __name__ == "__main__":
    main()
