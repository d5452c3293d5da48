"""Probe the GPU training route before the benchmark: the GEMM kernel, the capture, the replay.

    python -m bench.gpu_probe OUTDIR/probe.json        # on a GPU (bench/gpu_check.sh runs it)
    TINYNET_CUPY_STANDIN=1 python -m bench.gpu_probe p.json --batch 16   # the rehearsal, on the CuPy stand-in

0. The machine: nvidia-smi's view of the GPU, the CUDA driver and runtime, the versions of Python, NumPy, CuPy,
   PyTorch and Numba, the commit, CUPY_TF32 and where the data comes from.
1. Compiles tinynet's CUDA module (NVRTC) and times it.
2. The ``gemm`` kernel that captured steps multiply with, on the three GEMM shapes of cnn_dropout02's
   convolution at the batch size (forward, weight gradient, input gradient): its largest error against
   cuBLAS and the time of each (CUDA events).
3. One training step of cnn_dropout02 captured as a CUDA graph (tinynet/cuda_graph.py): whether it captured
   or fell back (and why), whether a replay leaves the weights a plain step leaves, and the time of a
   replayed step against a plain one.

Everything goes into one JSON file, read by bench.gpu_report.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np

from bench.common import cupy_for_bench


def _run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception as exc:  # no nvidia-smi, no git: say so
        return f"unavailable ({type(exc).__name__})"


def env_facts(cp):
    facts = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
             "commit": _run(["git", "rev-parse", "--short", "HEAD"]),
             "nvidia_smi": _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                                 "--format=csv,noheader"]),
             "python": platform.python_version(), "numpy": np.__version__, "cupy": cp.__version__,
             "standin": bool(getattr(cp, "IS_STANDIN", False)), "CUPY_TF32": os.environ.get("CUPY_TF32", "0"),
             "TINYNET_DATA": os.environ.get("TINYNET_DATA")}
    for name in ("torch", "numba"):
        try:
            facts[name] = __import__(name).__version__
        except Exception as exc:
            facts[name] = f"not importable ({type(exc).__name__})"
    try:
        rt = cp.cuda.runtime
        facts.update(driver=rt.driverGetVersion(), cuda_runtime=rt.runtimeGetVersion(),
                     device=rt.getDeviceProperties(0)["name"].decode())
    except Exception as exc:
        facts["device"] = f"none ({type(exc).__name__}: {exc})"
    return facts


def _timed(cp, fn, repeats):
    """Milliseconds per call (CUDA events around ``repeats`` calls after one warm call)."""
    fn()
    start, end = cp.cuda.Event(), cp.cuda.Event()
    stream = cp.cuda.get_current_stream()
    stream.record(start)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    stream.record(end)
    end.synchronize()
    host_ms = (time.perf_counter() - t0) * 1e3 / repeats
    try:
        return cp.cuda.get_elapsed_time(start, end) / repeats
    except Exception:  # the stand-in has no device clock: host time
        return host_ms


def gemm_shapes(batch):
    """The convolution GEMMs (M, K, N, which operand is a transposed view): cnn_dropout02's W2 @ cols and its weight
    gradient dy2 @ cols.T (its only convolution is the first layer, which needs no input gradient), and the input
    gradient W2.T @ dy2 of deep_bn_cnn's second convolution (32 -> 32 channels at 28x28)."""
    return {"forward W2 @ cols": (32, 9, batch * 26 * 26, None),
            "weight gradient dy2 @ cols.T": (32, batch * 26 * 26, 9, "b"),
            "input gradient W2.T @ dy2 (deep_bn_cnn)": (288, 32, batch * 28 * 28, "a")}


def probe_gemm(cp, kernels, batch, repeats):
    rng = np.random.default_rng(0)
    out = {}
    for name, (m, k, n, transposed) in gemm_shapes(batch).items():
        a = cp.asarray(rng.standard_normal((k, m), dtype=np.float32)).T if transposed == "a" else \
            cp.asarray(rng.standard_normal((m, k), dtype=np.float32))
        b = cp.asarray(rng.standard_normal((n, k), dtype=np.float32)).T if transposed == "b" else \
            cp.asarray(rng.standard_normal((k, n), dtype=np.float32))
        ref = a @ b
        got = kernels.gemm(a, b)
        scale = float(abs(ref).max())
        out[name] = {"m": m, "k": k, "n": n, "splits": kernels.gemm_splits(m, n, k),
                     "max_error_vs_cublas": float(abs(got - ref).max()) / scale,
                     "kernel_ms": _timed(cp, lambda a=a, b=b: kernels.gemm(a, b), repeats),
                     "cublas_ms": _timed(cp, lambda a=a, b=b: a @ b, repeats)}
    return out


def probe_capture(cp, batch, repeats):
    import tinynet
    from tinynet import models
    from tinynet.cuda_graph import CapturedStep, GraphCaptureWarning
    from tinynet.losses import SoftmaxCrossEntropy
    from tinynet.optim import Adam
    from tinynet.train import train_step

    backend = tinynet.use_backend("cupy")
    rng = np.random.default_rng(0)
    x = cp.asarray(rng.random((batch, 1, 28, 28), dtype=np.float32))
    y = cp.asarray(rng.integers(0, 10, batch))
    idx = cp.arange(batch)
    runs = {}
    for graphed in (True, False):
        model = models.build("cnn_dropout02", seed=0).to("cupy")
        loss, opt, totals = SoftmaxCrossEntropy(check_labels=False), Adam(model.parameters()), cp.zeros(2)
        step = CapturedStep(lambda xb, yb, m=model, o=opt, f=loss, t=totals: train_step(m, f, o, xb, yb, t), backend, batch,
                            model.input_shape, model.dtype)  # no callbacks here: no array is replaced
        if not graphed:  # a CapturedStep that never captures: plain steps, on the same stream, with the same kernels
            step.failure = "plain steps asked for"
        with warnings.catch_warnings(record=True) as caught, step:
            warnings.simplefilter("always")
            for _ in range(3):  # warm, capture + replay, replay
                step(x, y, idx)
            weights = {k: p.data.get() for k, p in model.named_arrays().items()}
            ms = _timed(cp, lambda s=step: s(x, y, idx), repeats)
        runs[graphed] = {"weights": weights, "ms": ms, "replays": step.replays,
                         "fallback": [str(w.message) for w in caught if issubclass(w.category, GraphCaptureWarning)]}
    same = all(np.allclose(runs[True]["weights"][k], w, rtol=1e-5, atol=1e-6) for k, w in runs[False]["weights"].items())
    return {"batch": batch, "captured": not runs[True]["fallback"], "fallback": runs[True]["fallback"],
            "replays": runs[True]["replays"], "replay_equals_plain_steps": bool(same),
            "graph_step_ms": runs[True]["ms"], "plain_step_ms": runs[False]["ms"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="the JSON file to write")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args(argv)
    cp = cupy_for_bench()
    result = {"env": env_facts(cp)}
    args.out.write_text(json.dumps(result, indent=2))  # the facts at least, whatever fails below
    from tinynet.kernels import cupy_gpu

    for part, fn in (("compile_s", lambda: _compile_seconds(cupy_gpu)),
                     ("gemm", lambda: probe_gemm(cp, cupy_gpu, args.batch, args.repeats)),
                     ("capture", lambda: probe_capture(cp, args.batch, args.repeats))):
        try:
            result[part] = fn()
        except Exception as exc:  # a probe that fails says why and lets the rest of the check run
            result[part] = {"error": f"{type(exc).__name__}: {exc}"}
    args.out.write_text(json.dumps(result, indent=2))
    for part, value in result.items():  # one line each; the file has everything
        print(f"{part}: {json.dumps(value)[:300]}")
    return 0 if not any(isinstance(v, dict) and "error" in v for v in result.values()) else 1


def _compile_seconds(cupy_gpu):
    t = time.perf_counter()
    cupy_gpu.module().get_function("gemm<float>")  # NVRTC, or CuPy's kernel cache on disk if it ran here before
    return time.perf_counter() - t


if __name__ == "__main__":
    raise SystemExit(main())
