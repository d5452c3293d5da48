"""Cold start: from process start to the first training step done, with Numba's on-disk cache empty and warm.

    python -m bench.cold_start                       # cnn_dropout02 and deep_bn_cnn, 3 warm runs each
    python -m bench.cold_start --models deep_bn_cnn --out bench/runs/cold_start

Each run is a fresh ``python -c`` process that imports tinynet, chooses the backend, loads Fashion-MNIST, builds
the model and takes one training step (batch 32), printing the time of each stage. Numba's kernels are compiled
on their first call (``@njit(cache=True)``) and written to NUMBA_CACHE_DIR; the first run here gets a new empty
cache folder, the next ones find it warm, as a user's second ``tinynet train`` does. The total is measured by
this process, from just before the child starts to the moment it reports its first step done, so it includes
the interpreter's own start.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import time
t0 = time.perf_counter()
import tinynet
from tinynet import models
from tinynet.data import load_fashion_mnist, to_float
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import Adam
from tinynet.train import train_step
t1 = time.perf_counter()
backend = tinynet.use_backend({backend!r})
t2 = time.perf_counter()
(x, y), _ = load_fashion_mnist()
xb, yb = backend.asarray(to_float(x[:32])), backend.asarray(y[:32])
t3 = time.perf_counter()
model = models.build({model!r}, seed=0)
train_step(model, SoftmaxCrossEntropy(), Adam(model.parameters()), xb, yb)
backend.synchronize()
t4 = time.perf_counter()
print("STAGES", t1 - t0, t2 - t1, t3 - t2, t4 - t3, flush=True)
"""

STAGES = ("import_s", "backend_s", "data_s", "first_step_s")


def one_run(model, backend, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(model=model, backend=backend)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("STAGES"):
            total = time.perf_counter() - start
            break
    else:
        raise RuntimeError(f"the child failed: {proc.stderr.read().strip().splitlines()[-1:]}")
    proc.wait()
    return {"total_s": total, **dict(zip(STAGES, map(float, line.split()[1:]), strict=True))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="cnn_dropout02,deep_bn_cnn")
    p.add_argument("--backend", default="numba")
    p.add_argument("--warm-runs", type=int, default=3, help="runs after the first, with the cache it filled")
    p.add_argument("--out", help="folder for results.json")
    args = p.parse_args(argv)
    rows = []
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
            for i in range(1 + args.warm_runs):
                r = one_run(model, args.backend, Path(cache))
                r.update(model=model, backend=args.backend, cache="empty" if i == 0 else "warm")
                rows.append(r)
                print(f"{model:<15} {r['cache']:<5} cache: {r['total_s']:5.2f} s to the first step done "
                      f"(imports {r['import_s']:.2f}, backend {r['backend_s']:.2f}, data {r['data_s']:.2f}, "
                      f"first step {r['first_step_s']:.2f})", flush=True)
    if args.out:
        from tinynet.provenance import record, strict_json

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        run = record(vars(args))
        run["command"] = "python -m bench.cold_start " + " ".join(sys.argv[1:] if argv is None else argv)
        (out / "results.json").write_text(strict_json({"run": run, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
