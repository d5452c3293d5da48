"""Keep a training run's record in bench/runs/, where bench/tables.py reads the README's figures from.

    python -m bench.keep_run runs/m2 cnn_dropout02_cosine            # one run: bench/runs/cnn_dropout02_cosine.json
    python -m bench.keep_run runs/seeds deep_bn_cnn --into accuracy  # several seeds: bench/runs/accuracy/deep_bn_cnn/
    python -m bench.keep_run runs/s0 runs/s12 m5 --into accuracy     # seeds trained in separate runs, one summary

A run directory written by ``tinynet train`` holds metrics.json (one seed) or summary.json and seedN/metrics.json
(``--seeds``); several directories of one recipe's seeds are summarised together, as ``--seeds`` would. Only the
JSON records are kept (their recipe, commit and machine included), never the weights; a summary's paths to its
seeds' metrics are rewritten to the kept copies, relative to bench/runs/.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

RUNS = Path(__file__).resolve().parent / "runs"


def _seed_runs(source):
    """(summary or None, [{seed, test_accuracy, test_loss, metrics, train_seconds}]) of one run directory."""
    source = Path(source)
    if (source / "summary.json").is_file():
        summary = json.loads((source / "summary.json").read_text())
        for r in summary["runs"]:
            if not Path(r["metrics"]).is_file():
                r["metrics"] = str(source / f"seed{r['seed']}" / "metrics.json")
        return summary, summary["runs"]
    if not (source / "metrics.json").is_file():
        raise SystemExit(f"keep_run: {source} holds neither summary.json nor metrics.json")
    m = json.loads((source / "metrics.json").read_text())
    return None, [{"seed": m["seed"], "test_accuracy": m["test_accuracy"], "test_loss": m["test_loss"],
                   "metrics": str(source / "metrics.json"), "train_seconds": m["train_seconds"]}]


def keep(sources, name, into="", runs=RUNS):
    """Copy the run(s) at ``sources`` to ``runs/into/name.json`` (one run) or ``runs/into/name/`` (a summary and its
    seeds: one ``--seeds`` run, or the seeds of one recipe trained in several sittings); returns the main file."""
    sources = [sources] if isinstance(sources, (str, Path)) else list(sources)
    summaries, seeds = [], []
    for source in sources:
        summary, found = _seed_runs(source)
        summaries.append(summary)
        seeds += found
    dest = Path(runs) / into
    if len(seeds) == 1:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(seeds[0]["metrics"], dest / f"{name}.json")
        return dest / f"{name}.json"
    if len({r["seed"] for r in seeds}) != len(seeds):
        raise SystemExit(f"keep_run: seeds {[r['seed'] for r in seeds]} repeat")
    folder = dest / name
    folder.mkdir(parents=True, exist_ok=True)
    seeds.sort(key=lambda r: r["seed"])
    for r in seeds:
        kept = folder / f"seed{r['seed']}.json"
        shutil.copyfile(r["metrics"], kept)
        r["metrics"] = kept.relative_to(runs).as_posix()
    summary = next((s for s in summaries if s), None) or {"model": json.loads(kept.read_text())["model"]}
    acc = np.array([r["test_accuracy"] for r in seeds])
    loss = np.array([r["test_loss"] for r in seeds])
    summary.update(seeds=[r["seed"] for r in seeds], runs=seeds,  # the statistics tinynet train's summary has
                   test_accuracy={"mean": float(acc.mean()), "std": float(acc.std(ddof=1)), "min": float(acc.min()),
                                  "max": float(acc.max())},
                   test_loss={"mean": float(loss.mean()), "std": float(loss.std(ddof=1))})
    if len(sources) > 1:
        summary["sittings"] = [str(s) for s in sources]
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return folder / "summary.json"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", nargs="+", help="the run's --out directory (several: one recipe's seeds, trained apart)")
    p.add_argument("name", help="the name to keep it under")
    p.add_argument("--into", default="", help="a folder of bench/runs (e.g. accuracy, search)")
    args = p.parse_args(argv)
    print(f"kept {keep(args.source, args.name, args.into)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
