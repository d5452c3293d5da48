"""Train a model of the zoo for one epoch of real Fashion-MNIST on each backend, and PyTorch.

    python -m bench.train_epoch --backends numpy,numba,torch --batch-size 32,128
    python -m bench.train_epoch --models cnn_dropout02,deep_bn_cnn --backends cupy,torch-cuda --batch-size 32,128,512

Each (model, backend, batch size) runs in a fresh subprocess (so peak memory is
its own), after a warm-up of a few steps (JIT compiled, caches warm), on the
same initial weights and the same batch order. Reports images/s and seconds per
epoch for training, evaluation images/s, peak memory, FLOPs per image, achieved
GFLOP/s and its share of this machine's float32 GEMM peak (measured in the same
run), and the ratio to PyTorch (on the GPU: to PyTorch on CUDA). Backends:
numpy, numba, numba-numpy-first (NumPy imported before tinynet, as most users
write it), cupy (the step replayed as a CUDA graph), cupy-eager (no graph),
torch (CPU) and torch-cuda. CuPy rows also give the kernel launches of one
training step (bench/launches.py). ``--out`` writes JSON, Markdown and a bar chart. List torch first and
last (``--backends torch,numba,torch``) to bracket the others: the ratios use the mean of its rows.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import cupy_for_bench, flops_per_image, gemm_peak_gflops, torch_twin
from tinynet import models

DEFAULT_MODEL = "cnn_dropout02"


def _peak_host_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _data(n_images, n_eval=10_000):
    from tinynet.data import load_fashion_mnist, to_float

    (x, y), (xt, yt) = load_fashion_mnist()
    return to_float(x[:n_images]), y[:n_images], to_float(xt[:n_eval]), yt[:n_eval]


def run_tinynet(backend, batch, n_images, seed, warmup, model_name=DEFAULT_MODEL, n_eval=10_000):
    import warnings

    import tinynet
    from tinynet.cuda_graph import GraphCaptureWarning, largest_graph_pool_bytes
    from tinynet.losses import SoftmaxCrossEntropy
    from tinynet.optim import Adam
    from tinynet.train import fit, predict_logits

    graph = None if backend == "cupy" else False  # "cupy-eager": the same backend, without the CUDA graph
    backend = "cupy" if backend.startswith("cupy") else "numba" if backend.startswith("numba") else backend
    b = tinynet.use_backend(backend)
    x, y, xt, _ = _data(n_images, n_eval)
    x, y = b.asarray(x), b.asarray(y.astype(np.int64))  # on the device before any timer, as PyTorch's tensors are
    model = models.build(model_name, seed=seed)
    loss, opt = SoftmaxCrossEntropy(), Adam(model.parameters())
    fit(model, loss, opt, x[: warmup * batch], y[: warmup * batch], epochs=1, batch_size=batch, verbose=False,
        cuda_graph=graph)
    model = models.build(model_name, seed=seed)  # fresh weights: identical start to PyTorch's
    opt = Adam(model.parameters())
    b.synchronize()
    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:  # a row that fell back to plain steps must say so
        warnings.simplefilter("always", GraphCaptureWarning)
        h = fit(model, loss, opt, x, y, epochs=1, batch_size=batch, seed=seed, verbose=False, cuda_graph=graph)
    b.synchronize()
    train_s = time.perf_counter() - t
    xt = b.asarray(xt)
    b.synchronize()
    t = time.perf_counter()
    predict_logits(model, xt, batch_size=1000)
    eval_s = time.perf_counter() - t
    out = {"train_s": train_s, "eval_s": eval_s * 10_000 / len(xt), "loss": h.history["loss"][0],
           "accuracy": h.history["accuracy"][0]}
    if backend == "cupy":
        import cupy

        # CuPy's default pool and the captured graph's private pool, each at its largest (a pool keeps its blocks)
        out["device_peak_mb"] = (cupy.get_default_memory_pool().total_bytes() + largest_graph_pool_bytes()) / 2**20
        out.update(_cuda_device(cupy.cuda.runtime), cupy=cupy.__version__, standin=bool(getattr(cupy, "IS_STANDIN", 0)))
        # cupy-eager multiplies with cuBLAS (no TF32 unless CUPY_TF32=1); a graph-replayed run with tinynet's kernel
        gemm = "tinynet's gemm kernel, float32 FMA" if graph is None else "cuBLAS"
        out["tf32"] = {"CUPY_TF32": os.environ.get("CUPY_TF32", "0"), "gemm": gemm}
        out["graph_fallback"] = [str(w.message) for w in caught if issubclass(w.category, GraphCaptureWarning)]
    return out


def _cuda_device(runtime):
    props = runtime.getDeviceProperties(0)
    return {"device": props["name"].decode(), "driver": runtime.driverGetVersion(),
            "cuda_runtime": runtime.runtimeGetVersion()}


def run_torch(batch, n_images, seed, warmup, device="cpu", model_name=DEFAULT_MODEL, n_eval=10_000):
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    # float32 arithmetic on both sides: tinynet's GPU kernels have no TF32, and CuPy's cuBLAS uses none unless
    # CUPY_TF32=1; PyTorch lets cuDNN's convolutions use TF32 by default
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    x, y, xt, _ = _data(n_images, n_eval)
    model = torch_twin(models.build(model_name, seed=seed)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    X, Y, XT = (torch.tensor(a).to(device) for a in (x, y, xt))
    order = torch.tensor(np.random.default_rng(seed).permutation(len(x))).to(device)  # fit's batch order

    def step(idx):
        opt.zero_grad(set_to_none=True)
        out = model(X[idx])
        loss = torch.nn.functional.cross_entropy(out, Y[idx])
        loss.backward()
        opt.step()
        return loss, out

    model.train()
    for i in range(warmup):
        step(order[i * batch : (i + 1) * batch])
    model = torch_twin(models.build(model_name, seed=seed)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    model.train()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    total = correct = 0.0
    for i in range(0, len(x), batch):
        idx = order[i : i + batch]
        loss, out = step(idx)
        total += loss.detach() * len(idx)
        correct += (out.argmax(1) == Y[idx]).sum()
    sync()
    train_s = time.perf_counter() - t
    model.eval()
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(XT), 1000):
            model(XT[i : i + 1000])
    sync()
    out = {"train_s": train_s, "eval_s": (time.perf_counter() - t) * 10_000 / len(xt), "loss": float(total) / len(x),
           "accuracy": float(correct) / len(x)}
    out["torch"] = torch.__version__
    if device == "cuda":
        out["device_peak_mb"] = torch.cuda.max_memory_reserved() / 2**20  # what its caching allocator held, as CuPy's
        out["tf32"] = {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32}
        out["device"] = torch.cuda.get_device_name()
        out["torch_cuda"] = torch.version.cuda
    return out


def child(args):
    if args.backend.startswith("cupy"):
        cupy_for_bench()  # real CuPy, or the stand-in for a rehearsal (TINYNET_CUPY_STANDIN=1)
    if args.backend.startswith("torch"):
        r = run_torch(args.batch, args.images, args.seed, args.warmup, "cuda" if args.backend == "torch-cuda" else "cpu",
                      model_name=args.model, n_eval=args.eval_images)
    else:
        r = run_tinynet(args.backend, args.batch, args.images, args.seed, args.warmup, model_name=args.model,
                        n_eval=args.eval_images)
    r["host_peak_mb"] = _peak_host_mb()
    print("RESULT " + json.dumps(r))


def _launches(model_name, batch):
    """Kernel launches per training step on the CuPy backend, counted on the stand-in (bench/launches.py)."""
    try:
        from bench.launches import count

        return count(model_name, batch)
    except Exception as exc:  # the count needs g++ (it runs the CUDA source on the host); the timing does not
        print(f"  (could not count kernel launches: {type(exc).__name__}: {exc})")
        return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=DEFAULT_MODEL, help="comma list of models of the zoo (tinynet models)")
    p.add_argument("--backends", default="numpy,numba,torch",
                   help="comma list of numpy, numba, numba-numpy-first, cupy, cupy-eager, torch (CPU), torch-cuda")
    p.add_argument("--batch-size", default="32,128")
    p.add_argument("--images", type=int, default=60_000, help="training images per epoch")
    p.add_argument("--warmup", type=int, default=20, help="warm-up steps before timing")
    p.add_argument("--eval-images", type=int, default=10_000, help="test images for the evaluation timing")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="folder for results.json, results.md and speed.png")
    p.add_argument("--skip", default="", help="comma list of MODEL:BATCH rows to leave out (e.g. deep_bn_cnn:512)")
    p.add_argument("--count-launches", action="store_true",
                   help="also count the kernel launches of a CuPy step on the stand-in (minutes per row)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--backend", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    p.add_argument("--model", default=DEFAULT_MODEL, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)

    peak = gemm_peak_gflops()
    from tinynet.provenance import openblas_kernels

    print(f"float32 GEMM peak here {peak:.0f} GFLOP/s ({os.cpu_count()} cores; OpenBLAS kernels: "
          f"{openblas_kernels()})")
    rows, flops_by_model = [], {}
    for model_name in args.models.split(","):
        flops_by_model[model_name] = flops = flops_per_image(models.build(model_name))
        print(f"{model_name}: {flops['train'] / 1e6:.1f} MFLOP per training image, {flops['forward'] / 1e6:.1f} per "
              "inference")
        for row in _run_model(args, model_name, flops, peak):
            rows.append(row)
            if args.out:  # after every row: a run stopped at a time limit keeps the rows it finished
                _write(Path(args.out), rows, peak, flops_by_model, args, argv)
    print("\n" + markdown(_with_ratios(rows), peak))
    return 0


def _with_ratios(rows):
    """Each row's time as a multiple of PyTorch's on the same model and batch (on the GPU: PyTorch on CUDA)."""
    for r in rows:
        ref = [t for t in rows if t["model"] == r["model"] and t["batch"] == r["batch"] and t["backend"] == (
               "torch-cuda" if r["backend"].startswith("cupy") or r["backend"] == "torch-cuda" else "torch")]
        # PyTorch listed twice (before and after the others, as the timing rules ask) counts as their mean
        r["vs_torch"] = r["train_s"] / (sum(t["train_s"] for t in ref) / len(ref)) if ref else None
    return rows


def _write(out, rows, peak, flops_by_model, args, argv):
    from tinynet.provenance import record

    out.mkdir(parents=True, exist_ok=True)
    rows = _with_ratios(rows)
    versions = {k: v for r in rows for k, v in r.items()
                if k in ("device", "driver", "cuda_runtime", "cupy", "torch", "torch_cuda")}
    versions["tf32"] = {r["backend"]: r["tf32"] for r in rows if "tf32" in r}  # the same policy on both sides
    meta = {"date": datetime.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "gemm_peak_gflops": peak, "flops_per_image": flops_by_model,
            "python": platform.python_version(), "numpy": np.__version__, **versions,
            "command": "python -m bench.train_epoch " + " ".join(a for a in (argv or sys.argv[1:])),
            "run": record(vars(args))}  # the commit, the versions, the threads
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    (out / "results.md").write_text(markdown(rows, peak) + "\n")
    bar_chart(rows, out / "speed.png")


def _run_model(args, model_name, flops, peak):
    """Each row of one model as it finishes (a generator: the caller keeps the rows done so far)."""
    for batch in [int(b) for b in args.batch_size.split(",")]:
        if f"{model_name}:{batch}" in args.skip.split(","):
            continue
        for backend in args.backends.split(","):
            child_args = ["--child", "1", "--backend", backend, "--batch", str(batch), "--images", str(args.images),
                          "--seed", str(args.seed), "--warmup", str(args.warmup), "--model", model_name,
                          "--eval-images", str(args.eval_images)]
            cmd = [sys.executable, "-m", "bench.train_epoch", *child_args]
            if backend == "numba-numpy-first":  # as a user who writes `import numpy` before `import tinynet`
                cmd = [sys.executable, "-c", "import numpy, runpy, sys; sys.argv[1:] = " + repr(child_args)
                       + "; runpy.run_module('bench.train_epoch', run_name='__main__')"]
            # Neither this process nor PyTorch's child loads Numba, so OMP_WAIT_POLICY (set when Numba loads) never
            # reaches PyTorch's OpenMP; OPENBLAS_THREAD_TIMEOUT does, but PyTorch's GEMMs are MKL, not OpenBLAS.
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not line:
                reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                print(f"  {backend:<10} batch {batch:<4} skipped: {reason}")
                continue
            r = json.loads(line[0][7:])
            r.update(model=model_name, backend=backend, batch=batch, images=args.images)
            r["train_img_s"] = args.images / r["train_s"]
            r["eval_img_s"] = 10_000 / r["eval_s"]
            r["gflops"] = r["train_img_s"] * flops["train"] / 1e9
            r["peak_share"] = r["gflops"] / peak
            if backend.startswith("cupy") and args.count_launches:
                r["launches_per_step"] = _launches(model_name, batch)
            launches = r.get("launches_per_step")
            print(f"  {backend:<10} batch {batch:<4} {r['train_img_s']:8.0f} img/s  {r['train_s']:6.1f} s/epoch  "
                  f"eval {r['eval_img_s']:8.0f} img/s  {r['gflops']:6.1f} GFLOP/s ({r['peak_share']:.0%} of peak)  "
                  f"host peak {r['host_peak_mb']:.0f} MB  loss {r['loss']:.4f}"
                  + (f"  launches/step {launches['eager']} eager, {launches['graph']} graphed" if launches else "")
                  + (f"  FELL BACK TO PLAIN STEPS: {r['graph_fallback'][0]}" if r.get("graph_fallback") else ""))
            yield r


def markdown(rows, peak):
    """The results table. The GEMM-peak share is of the host CPU's measured peak (meaningless for GPU rows)."""
    lines = ["| model | backend | batch | train img/s | s/epoch | × PyTorch time | eval img/s | GFLOP/s | "
             "share of CPU GEMM peak | host peak MB | device peak MB | launches/step (eager, graphed) |",
             "|" + "---|" * 12]
    for r in rows:
        ratio = f"{r['vs_torch']:.2f}" if r.get("vs_torch") else "—"
        dev = f"{r['device_peak_mb']:.0f}" if "device_peak_mb" in r else "—"
        gpu = r["backend"] in ("torch-cuda",) or r["backend"].startswith("cupy")
        share = "—" if gpu else f"{r['peak_share']:.0%}"
        launches = r.get("launches_per_step")
        lc = f"{launches['eager']}, {launches['graph']}" if launches else "—"
        lines.append(f"| {r['model']} | {r['backend']} | {r['batch']} | {r['train_img_s']:.0f} | {r['train_s']:.1f} | "
                     f"{ratio} | {r['eval_img_s']:.0f} | {r['gflops']:.1f} | {share} | {r['host_peak_mb']:.0f} | {dev} | "
                     f"{lc} |")
    return "\n".join(lines)


def bar_chart(rows, path):
    """The training speed of each (model, batch) on each backend as labelled bars, written to ``path``; the title
    names how many images the rows timed (their ``images``). Returns the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys((r["model"], r["batch"]) for r in rows))
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(groups)), 4))
    width = 0.8 / max(len(backends), 1)
    for k, be in enumerate(backends):
        vals = [next((r["train_img_s"] for r in rows if r["backend"] == be and (r["model"], r["batch"]) == g), 0)
                for g in groups]
        bars = ax.bar(np.arange(len(groups)) + k * width, vals, width, label=be)
        ax.bar_label(bars, [f"{v:,.0f}" if v else "" for v in vals], padding=2, fontsize=7)  # no bar: no run
    ax.set_xticks(np.arange(len(groups)) + width * (len(backends) - 1) / 2,
                  [f"{m}\nbatch {b}" for m, b in groups], fontsize=8)
    ax.margins(y=0.12)  # room above the tallest bar for its label
    ax.set_ylabel("training images / s")
    counts = sorted({int(r["images"]) for r in rows})
    ax.set_title(f"training speed on {' or '.join(f'{n:,}' for n in counts)} Fashion-MNIST images "
                 "(each bar: images/s)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


if __name__ == "__main__":
    raise SystemExit(main())
