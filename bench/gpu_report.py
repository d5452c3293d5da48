"""Write the GPU section of bench/RESULTS.md, and bench/speed_gpu.png, from one GPU check's files alone.

    python -m bench.gpu_report OUTDIR      # the folder bench/gpu_check.sh filled (make gpu-check: bench/out-gpu)

Everything in the section comes from the run's files: results.json (bench.train_epoch), probe.json
(bench.gpu_probe: the machine, the GEMM kernel, the capture), stages.txt (each stage's time) and pytest.txt
(the last lines of the GPU tests). It replaces the text between the GPU markers in RESULTS.md, copies the chart
and keeps results.json and probe.json as bench/runs/gpu_*_DATE.json. A rehearsal on the CuPy stand-in is
refused: its timings are of the host, not of a GPU.
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
    """The GPU targets (issue #23), each with the figure measured (or why it is missing)."""
    out = []
    for model, factor in (("cnn_dropout02", 1.5), ("deep_bn_cnn", 1.0)):
        cupy = _row(rows, model, "cupy", 128)
        torch = [r for r in rows if (r["model"], r["backend"], r["batch"]) == (model, "torch-cuda", 128)]
        if cupy and torch:  # PyTorch ran before and after: the mean of its rows, as the table's ratio
            got = cupy["train_img_s"] / (sum(r["train_img_s"] for r in torch) / len(torch))
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
        out.append(f"cnn_dropout02: device memory at most {peak:.0f} MB (CuPy's pool and the graph's, target < 2048 "
                   f"MB): {'met' if peak < 2048 else 'NOT met'}")
    return out


def probe_lines(probe) -> list[str]:
    """What bench.gpu_probe found: the GEMM kernel against cuBLAS, and the captured step against plain steps."""
    compile_s = probe.get("compile_s")
    lines = [f"NVRTC compile of tinynet's kernels: {compile_s:.1f} s." if isinstance(compile_s, float)
             else f"NVRTC compile failed: {compile_s['error']}" if isinstance(compile_s, dict) else ""]
    gemm = probe.get("gemm", {})
    if "error" in gemm:
        lines.append(f"GEMM probe failed: {gemm['error']}")
    elif gemm:
        lines += ["", "| GEMM (cnn_dropout02's convolution) | M × K × N | splits | kernel ms | cuBLAS ms | error vs cuBLAS |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {name} | {g['m']} × {g['k']} × {g['n']} | {g['splits']} | {g['kernel_ms']:.3f} | "
                  f"{g['cublas_ms']:.3f} | {g['max_error_vs_cublas']:.1e} |" for name, g in gemm.items()]
    cap = probe.get("capture", {})
    if "error" in cap:
        lines += ["", f"Capture probe failed: {cap['error']}"]
    elif cap:
        how = "captured" if cap["captured"] else f"NOT captured ({'; '.join(cap['fallback'])})"
        lines += ["", f"One cnn_dropout02 step at batch {cap['batch']}: {how}; a replay leaves "
                  f"{'the same' if cap['replay_equals_plain_steps'] else 'DIFFERENT'} weights as plain steps; "
                  f"{cap['graph_step_ms']:.3f} ms replayed, {cap['plain_step_ms']:.3f} ms plain."]
    return lines


def _tail(path, n):
    return [ln for ln in path.read_text().splitlines() if ln.strip()][-n:] if path.exists() else []


def section(run_dir: Path) -> str:
    data = json.loads((run_dir / "results.json").read_text())
    meta, rows = data["meta"], data["rows"]
    probe = json.loads((run_dir / "probe.json").read_text()) if (run_dir / "probe.json").exists() else {}
    env = probe.get("env", {})
    lines = [
        BEGIN,
        f"## GPU — {meta['date']}, {meta.get('device', 'unknown device')}",
        "",
        f"Driver {meta.get('driver')}, CUDA runtime {meta.get('cuda_runtime')}, CuPy {meta.get('cupy')}, "
        f"PyTorch {meta.get('torch')} (CUDA {meta.get('torch_cuda')}), Python {meta.get('python')}, "
        f"NumPy {meta.get('numpy')}; host: {meta.get('cores')} cores; commit {env.get('commit', 'unknown')}; "
        f"nvidia-smi: {env.get('nvidia_smi', 'not recorded')}.",
        "",
        "```bash",
        "bash bench/gpu_check.sh OUTDIR   # ran: " + meta["command"],
        "```",
        "",
        "One 60,000-image epoch each, after a warm-up, same weights and batch order for tinynet and PyTorch, the data",
        "on the device before the timer starts. `cupy` replays each step as a CUDA graph whose matrix products are",
        "tinynet's own GEMM kernel (CuPy refuses cuBLAS while capturing); `cupy-eager` launches every kernel from",
        "Python and multiplies with cuBLAS. float32 arithmetic on both sides, no TF32: "
        f"{json.dumps(meta.get('tf32', {}))}. Device memory: CuPy's pool plus the graph's private pool, PyTorch's",
        "reserved memory (neither counts the CUDA context).",
        "",
        markdown(rows, meta["gemm_peak_gflops"]),
        "",
        "Targets (issue #23):",
        "",
        *[f"- {t}" for t in targets(rows)],
        *[f"- NOTE: {r['model']} at batch {r['batch']} fell back to plain steps: {r['graph_fallback'][0]}"
          for r in rows if r.get("graph_fallback")],
        "",
        *probe_lines(probe),
    ]
    stages = _tail(run_dir / "stages.txt", 10)
    if stages:
        lines += ["", "Stages of the check (seconds, exit status):", "", "```", *stages, "```"]
    tail = _tail(run_dir / "pytest.txt", 3)
    if tail:
        lines += ["", "`pytest -m gpu` on this device:", "", "```", *tail, "```"]
    lines += ["", "![GPU training speed](speed_gpu.png)", END]
    return "\n".join(lines)


def write(run_dir: Path, results: Path = RESULTS):
    data = json.loads((run_dir / "results.json").read_text())
    if any(r.get("standin") for r in data["rows"]):
        raise SystemExit(f"{run_dir} is a rehearsal on the CuPy stand-in: its timings are the host's, not a GPU's")
    text = results.read_text()
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise SystemExit(f"{results} needs exactly one pair of GPU markers ({BEGIN} ... {END})")
    head, rest = text.split(BEGIN, 1)
    old, tail = rest.split(END, 1)
    headings = [ln for ln in old.splitlines() if ln.startswith("#")]
    if any(not h.startswith("## GPU") for h in headings):  # never overwrite another section put between the markers
        raise SystemExit(f"{results}: the GPU markers enclose other sections ({headings}); move the markers first")
    results.write_text(head + section(run_dir) + tail)
    if (run_dir / "speed.png").exists():
        shutil.copy(run_dir / "speed.png", results.with_name("speed_gpu.png"))
    runs = results.with_name("runs")
    runs.mkdir(exist_ok=True)
    for name in ("results", "probe"):  # the recorded run behind the section
        if (run_dir / f"{name}.json").exists():
            shutil.copy(run_dir / f"{name}.json", runs / f"gpu_{'benchmark' if name == 'results' else name}_"
                                                         f"{data['meta']['date']}.json")
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    args = p.parse_args(argv)
    print(f"wrote the GPU section of {write(args.run_dir)}")


if __name__ == "__main__":
    main()
