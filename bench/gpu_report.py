"""Write the GPU section of bench/RESULTS.md, and bench/speed_gpu.png, from a GPU benchmark run.

    python -m bench.gpu_report bench/out-gpu      # the folder `make gpu-check` fills

Everything in the section comes from the run's files: results.json (bench.train_epoch), pytest.txt (the
last lines of ``pytest -m gpu``) when present. It replaces the text between the GPU markers in RESULTS.md
and keeps results.json as bench/runs/gpu_benchmark_DATE.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from bench.train_epoch import markdown

RESULTS = Path(__file__).with_name("RESULTS.md")
BEGIN, END = "<!-- gpu-results:begin (written by python -m bench.gpu_report) -->", "<!-- gpu-results:end -->"


def _row(rows, model, backend, batch):
    return next((r for r in rows if (r["model"], r["backend"], r["batch"]) == (model, backend, batch)), None)


def targets(rows) -> list[str]:
    """Issue #10's GPU targets, each with the figure measured (or why it is missing)."""
    out = []
    for model, factor in (("cnn_dropout02", 1.5), ("deep_bn_cnn", 1.0)):
        cupy, torch = _row(rows, model, "cupy", 128), _row(rows, model, "torch-cuda", 128)
        if cupy and torch:
            got = cupy["train_img_s"] / torch["train_img_s"]
            out.append(f"{model}, batch 128: CuPy {got:.2f}× PyTorch eager's throughput (target ≥ {factor}×): "
                       f"{'met' if got >= factor else 'NOT met'}")
        else:
            out.append(f"{model}, batch 128: not measured (no cupy and torch-cuda rows)")
    for model, limit in (("cnn_dropout02", 1.0), ("deep_bn_cnn", 10.0)):
        runs = [r for r in rows if r["model"] == model and r["backend"] == "cupy"]
        if runs:
            best = min(runs, key=lambda r: r["train_s"])
            out.append(f"{model}: fastest 60,000-image epoch {best['train_s']:.2f} s at batch {best['batch']} "
                       f"(target < {limit:g} s): {'met' if best['train_s'] < limit else 'NOT met'}")
    runs = [r for r in rows if r["model"] == "cnn_dropout02" and r["backend"] == "cupy" and "device_peak_mb" in r]
    if runs:
        peak = max(r["device_peak_mb"] for r in runs)
        out.append(f"cnn_dropout02: device memory at most {peak:.0f} MB (CuPy's pool, target < 2048 MB): "
                   f"{'met' if peak < 2048 else 'NOT met'}")
    return out


def section(run_dir: Path) -> str:
    data = json.loads((run_dir / "results.json").read_text())
    meta, rows = data["meta"], data["rows"]
    lines = [
        BEGIN,
        f"## GPU — {meta['date']}, {meta.get('device', 'unknown device')}",
        "",
        f"Driver {meta.get('driver')}, CUDA runtime {meta.get('cuda_runtime')}, CuPy {meta.get('cupy')}, "
        f"PyTorch {meta.get('torch')} (CUDA {meta.get('torch_cuda')}), Python {meta.get('python')}, "
        f"NumPy {meta.get('numpy')}; host: {meta.get('cores')} cores.",
        "",
        "```bash",
        meta["command"],
        "```",
        "",
        "One 60,000-image epoch each, after a warm-up, same weights and batch order for tinynet and PyTorch. `cupy`",
        "replays each step as a CUDA graph, `cupy-eager` launches every kernel from Python. Launches per step are",
        "counted on the CuPy stand-in (`python -m bench.launches`).",
        "",
        markdown(rows, meta["gemm_peak_gflops"]),
        "",
        "Targets (issue #10):",
        "",
        *[f"- {t}" for t in targets(rows)],
    ]
    pytest_log = run_dir / "pytest.txt"
    if pytest_log.exists():
        tail = [ln for ln in pytest_log.read_text().splitlines() if ln.strip()][-3:]
        lines += ["", "`pytest -m gpu` on this device:", "", "```", *tail, "```"]
    lines += ["", "![GPU training speed](speed_gpu.png)", END]
    return "\n".join(lines)


def write(run_dir: Path, results: Path = RESULTS):
    text = results.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{results} has no GPU markers ({BEGIN} ... {END})")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    results.write_text(head + section(run_dir) + tail)
    if (run_dir / "speed.png").exists():
        shutil.copy(run_dir / "speed.png", results.with_name("speed_gpu.png"))
    date = json.loads((run_dir / "results.json").read_text())["meta"]["date"]
    runs = results.with_name("runs")
    runs.mkdir(exist_ok=True)
    shutil.copy(run_dir / "results.json", runs / f"gpu_benchmark_{date}.json")  # the recorded run behind the section
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    args = p.parse_args(argv)
    print(f"wrote the GPU section of {write(args.run_dir)}")


if __name__ == "__main__":
    main()
