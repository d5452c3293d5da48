"""The benchmark's own code: the GPU report is written from a run's files, targets judged from its rows."""

import json

import numpy as np
import pytest

from bench.gpu_report import BEGIN, END, write


def _row(model, backend, batch, img_s, **extra):
    return dict(model=model, backend=backend, batch=batch, images=60_000, train_img_s=img_s, train_s=60_000 / img_s,
                eval_img_s=1e5, gflops=1.0, peak_share=0.1, host_peak_mb=900, vs_torch=None, **extra)


def _gpu_run(tmp_path, **row_extra):
    run = tmp_path / "run"
    run.mkdir(parents=True)
    rows = [_row("cnn_dropout02", "cupy", 128, 90_000, device_peak_mb=700.0,
                 launches_per_step={"eager": 50, "graph": 3}, **row_extra),
            _row("cnn_dropout02", "torch-cuda", 128, 50_000, device_peak_mb=300.0),
            _row("deep_bn_cnn", "cupy", 128, 5_000, device_peak_mb=1500.0),
            _row("deep_bn_cnn", "torch-cuda", 128, 6_000)]
    meta = dict(date="2026-11-25", device="NVIDIA H100", driver=13000, cuda_runtime=13000, cupy="14.2.0", torch="2.11",
                torch_cuda="13.0", python="3.12", numpy="2.5", cores=16, gemm_peak_gflops=100.0,
                command="python -m bench.train_epoch --models x", tf32={"cupy": {"CUPY_TF32": "0"}})
    (run / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}))
    (run / "pytest.txt").write_text("....\n150 passed in 30s\n")
    (run / "stages.txt").write_text("probe      12.0 s  rc=0\npytest     80.1 s  rc=0\nbench     150.2 s  rc=0\n")
    gemm = {"m": 32, "k": 9, "n": 86528, "splits": 1, "kernel_ms": 0.05, "cublas_ms": 0.02, "max_error_vs_cublas": 1e-7}
    (run / "probe.json").write_text(json.dumps({
        "env": {"commit": "abc1234", "nvidia_smi": "NVIDIA H100 80GB HBM3, 580.1, 81559 MiB, 1980 MHz"},
        "compile_s": 9.5, "gemm": {"forward W2 @ cols": gemm},
        "capture": {"batch": 128, "captured": True, "fallback": [], "replays": 22, "replay_equals_plain_steps": True,
                    "graph_step_ms": 0.4, "plain_step_ms": 2.5}}))
    return run


def test_gpu_report_writes_the_section_between_the_markers(tmp_path):
    run = _gpu_run(tmp_path)
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# Results\n\nCPU text\n\n{BEGIN}\n## GPU\nold GPU text\n{END}\n\nafter\n")
    write(run, results)
    text = results.read_text()
    assert text.startswith("# Results\n\nCPU text") and text.endswith("after\n") and "old GPU text" not in text
    assert "## GPU — 2026-11-25, NVIDIA H100" in text and "150 passed in 30s" in text and "| 50, 3 |" in text
    assert "cnn_dropout02, batch 128: CuPy 1.80× PyTorch eager's throughput (target ≥ 1.5×): met" in text
    assert "deep_bn_cnn, batch 128: CuPy 0.83× PyTorch eager's throughput (target ≥ 1.0×): NOT met" in text
    assert "fastest 60,000-image epoch 0.67 s at batch 128 (target < 1 s): met" in text
    assert "device memory at most 700 MB" in text and "commit abc1234" in text and "NVIDIA H100 80GB HBM3" in text
    assert "| forward W2 @ cols | 32 × 9 × 86528 | 1 | 0.050 | 0.020 | 1.0e-07 |" in text
    assert "captured; a replay leaves the same weights as plain steps; 0.400 ms replayed, 2.500 ms plain" in text
    assert "bench     150.2 s  rc=0" in text and '"CUPY_TF32": "0"' in text
    assert (tmp_path / "runs" / "gpu_benchmark_2026-11-25.json").exists()
    assert (tmp_path / "runs" / "gpu_probe_2026-11-25.json").exists()


def test_gpu_report_refuses_a_rehearsal_and_markers_around_other_sections(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text(f"{BEGIN}\n## CPU round 3\nkeep me\n## GPU\n{END}\n")
    with pytest.raises(SystemExit, match="enclose other sections"):
        write(_gpu_run(tmp_path), results)
    assert "keep me" in results.read_text()
    with pytest.raises(SystemExit, match="rehearsal on the CuPy stand-in"):
        write(_gpu_run(tmp_path / "rehearsal", standin=True), results)


def test_gpu_report_says_what_failed_in_the_probe_and_which_rows_fell_back(tmp_path):
    run = _gpu_run(tmp_path, graph_fallback=["the training step could not be captured as a CUDA graph (X)"])
    (run / "probe.json").write_text(json.dumps({"env": {}, "compile_s": {"error": "CompileException: bad"},
                                                "gemm": {"error": "RuntimeError: no"}, "capture": {"error": "E"}}))
    results = tmp_path / "RESULTS.md"
    results.write_text(f"{BEGIN}\n## GPU\n{END}\n")
    text = write(run, results).read_text()
    assert "NVRTC compile failed: CompileException: bad" in text and "GEMM probe failed: RuntimeError: no" in text
    assert "NOTE: cnn_dropout02 at batch 128 fell back to plain steps" in text


def test_the_results_file_has_one_gpu_section_between_its_markers():
    from bench.gpu_report import RESULTS

    text = RESULTS.read_text()
    inside = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert [ln for ln in inside.splitlines() if ln.startswith("#")][0].startswith("## GPU")
    assert all(ln.startswith("## GPU") for ln in inside.splitlines() if ln.startswith("#"))


def test_cold_start_times_each_stage_with_an_empty_then_a_warm_cache(fashion, tmp_path):
    from bench import cold_start

    assert cold_start.main(["--models", "cnn_dropout02", "--backend", "numpy", "--warm-runs", "1",
                            "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "results.json").read_text())
    assert [r["cache"] for r in result["rows"]] == ["empty", "warm"]
    for r in result["rows"]:
        stages = sum(r[k] for k in cold_start.STAGES)
        assert 0 < stages <= r["total_s"]  # the total also holds the interpreter's start
    assert result["run"]["command"].startswith("python -m bench.cold_start --models cnn_dropout02")


def test_train_epoch_measures_numba_with_numpy_imported_first(fashion, tmp_path):
    pytest.importorskip("numba")
    from bench import train_epoch

    assert train_epoch.main(["--backends", "numba-numpy-first", "--batch-size", "32", "--images", "64", "--warmup", "1",
                             "--out", str(tmp_path)]) == 0
    (row,) = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert row["backend"] == "numba-numpy-first" and row["images"] == 64 and np.isfinite(row["loss"])


def test_layers_profile_has_a_row_per_layer_and_the_optimizer_step_and_records_the_run(tmp_path):
    from bench import layers

    out = tmp_path / "layers.json"
    backends = "numpy,torch" if _has_torch() else "numpy"
    assert layers.main(["--model", "one_conv_cnn", "--backends", backends, "--batch-size", "4", "--steps", "2",
                        "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    names = [layer.name for layer in __import__("tinynet.models", fromlist=["build"]).build("one_conv_cnn").layers]
    for backend, rows in data["results"].items():
        assert list(rows) == [*names, layers.OPTIMIZER_ROW], backend
        assert all(f >= 0 and b >= 0 for f, b in rows.values()) and rows[layers.OPTIMIZER_ROW][1] > 0
    assert data["run"]["git"]["commit"] and data["run"]["command"].startswith("python -m bench.layers")
    text = layers.table(data["results"], 4)
    assert text.count("\n") == len(names) + 3 and "img/s" in text.splitlines()[-1]


def _has_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _fake_run(folder, seed, acc):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"model": "m", "seed": seed, "test_accuracy": acc,
                                                     "test_loss": 1 - acc, "train_seconds": 10.0}))


def test_keep_run_copies_one_run_and_summarises_seeds_trained_in_separate_sittings(tmp_path):
    from bench.keep_run import keep

    runs = tmp_path / "runs"
    _fake_run(tmp_path / "a", 0, 0.90)
    assert keep(tmp_path / "a", "one", runs=runs) == runs / "one.json"
    assert json.loads((runs / "one.json").read_text())["test_accuracy"] == 0.90
    _fake_run(tmp_path / "b" / "seed1", 1, 0.92)
    _fake_run(tmp_path / "b" / "seed2", 2, 0.94)
    (tmp_path / "b" / "summary.json").write_text(json.dumps({"model": "m", "seeds": [1, 2], "runs": [
        {"seed": s, "test_accuracy": a, "test_loss": 1 - a, "train_seconds": 10.0,
         "metrics": str(tmp_path / "b" / f"seed{s}" / "metrics.json")} for s, a in ((1, 0.92), (2, 0.94))]}))
    summary = json.loads(keep([tmp_path / "b", tmp_path / "a"], "three", into="accuracy", runs=runs).read_text())
    assert summary["seeds"] == [0, 1, 2] and [r["metrics"] for r in summary["runs"]] == [
        f"accuracy/three/seed{s}.json" for s in (0, 1, 2)]
    assert summary["test_accuracy"]["mean"] == pytest.approx(0.92)
    assert summary["test_accuracy"]["std"] == pytest.approx(0.02)  # the sample standard deviation, as --seeds
    assert json.loads((runs / "accuracy" / "three" / "seed2.json").read_text())["test_accuracy"] == 0.94
    with pytest.raises(SystemExit, match="repeat"):
        keep([tmp_path / "a", tmp_path / "a"], "twice", runs=runs)


def test_bar_chart_names_the_images_timed_and_labels_each_bar_with_its_speed(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    from bench.train_epoch import bar_chart

    rows = [dict(_row("cnn_dropout02", "numpy", 128, 1650.3), images=6_000),
            dict(_row("cnn_dropout02", "numba", 128, 4210.9), images=6_000),
            dict(_row("deep_bn_cnn", "numpy", 128, 310.2), images=6_000)]
    fig = bar_chart(rows, tmp_path / "speed.png")
    try:
        ax = fig.axes[0]
        assert "6,000" in ax.get_title() and "one epoch" not in ax.get_title()
        assert [t.get_text() for t in ax.texts] == ["1,650", "310", "4,211", ""]  # numba ran no deep_bn_cnn: no label
        assert ax.get_ylabel() == "training images / s" and (tmp_path / "speed.png").stat().st_size > 1000
    finally:
        plt.close(fig)
