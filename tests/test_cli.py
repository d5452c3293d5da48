"""The tinynet command line, end to end on a tiny slice of the real data."""

import json
import os
import platform
import subprocess
import sys

import pytest

from tinynet.cli import main


@pytest.fixture(scope="module")
def trained(fashion, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    rc = main(["train", "--epochs", "1", "--limit-train", "600", "--limit-test", "200", "--validation", "200",
               "--quiet", "--out", str(out), "--seed", "1"])
    assert rc == 0
    return out


def test_train_writes_report_checkpoint_and_plots(trained):
    names = {p.name for p in trained.iterdir()}
    assert {"metrics.json", "best.safetensors", "history.png", "confusion_test.png", "confusion_train.png",
            "prediction.png", "samples.png", "dataset.png", "misclassified.png"} <= names
    m = json.loads((trained / "metrics.json").read_text())
    assert 0 < m["test_accuracy"] <= 1 and m["test_loss"] > 0
    assert len(m["test"]["confusion_matrix"]) == 10 and sum(map(sum, m["test"]["confusion_matrix"])) == 200
    assert sum(map(sum, m["train"]["confusion_matrix"])) == 600
    assert set(m["test"]["per_class"]) >= {"classes", "macro avg", "weighted avg", "accuracy"}
    assert len(m["history"]["loss"]) == 1


def test_evaluate_and_predict_a_checkpoint(trained, capsys):
    assert main(["evaluate", str(trained / "best.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "== test: accuracy" in out and "confusion matrix" in out and "macro avg" in out
    # evaluate takes every test image: it says so, and that the run's own report used --limit-test's 200
    assert "on all 10,000 test images (the run's own report used the first 200: --limit-test)" in out
    assert main(["predict", str(trained / "best.safetensors"), "--index", "3", "--plot", str(trained / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "predicted:" in out and "true:" in out and (trained / "p.png").exists()


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["models"], "1,813,050"),
        (["gradcheck", "cnn_dropout02", "--entries", "3"], "PASS"),
        (["inspect", "cnn_dropout02", "--batch", "4"], "loss"),
        (["data"], "MD5 of the content verified"),
    ],
)
def test_subcommands(fashion, capsys, argv, expect):
    assert main(argv) == 0
    assert expect in capsys.readouterr().out


def test_errors_are_one_clear_line_and_exit_code_2(tmp_path, capsys):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a checkpoint")
    assert main(["evaluate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinynet: error:") and "not a valid safetensors checkpoint" in err


def test_unavailable_backend_says_why(capsys):
    import tinynet

    if "cupy" in tinynet.available_backends():
        pytest.skip("CuPy works here")
    assert main(["gradcheck", "--backend", "cupy"]) == 2
    assert "backend 'cupy' is not usable here" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "tinynet", "models"], capture_output=True, text=True)
    assert r.returncode == 0 and "cnn_dropout02" in r.stdout


@pytest.mark.parametrize("name,extra", [("numba", "numba"), ("cupy", "cuda")])
def test_install_hints_name_what_really_installs_it(monkeypatch, name, extra):
    """The "tinynet" on PyPI is another project: a hint must not send anyone there."""
    from tinynet import backend, optional

    monkeypatch.setattr(optional, "available", lambda n: False)
    monkeypatch.setattr(optional, "installed", lambda n: False)  # not importable: only then an install command
    monkeypatch.setattr(optional, "load", lambda n: None)
    monkeypatch.setattr(optional, "why_unavailable", lambda n: "ImportError: no module")
    with pytest.raises(backend.BackendUnavailable) as err:
        backend._make(name)
    msg = str(err.value)
    assert f'pip install -e ".[{extra}]"' in msg and "tinynet[" not in msg
    assert name != "cupy" or "cupy-cuda12x" in msg


def test_no_install_hint_names_the_pypi_tinynet():
    from pathlib import Path

    import tinynet

    sources = Path(tinynet.__file__).parent.rglob("*.py")
    assert not [p.name for p in sources if "tinynet[" in p.read_text()]


def test_an_interrupted_run_resumes_from_its_last_epoch_not_its_best(fashion, tmp_path):
    """OUT/last.safetensors is written after every epoch (best.safetensors only when the monitor improves), so
    --resume OUT/last.safetensors goes on from where the run stopped."""
    from tinynet import models
    from tinynet.checkpoint import load_checkpoint

    argv = ["train", "--limit-train", "200", "--limit-test", "100", "--validation", "100", "--backend", "numpy",
            "--no-plots", "--quiet", "--out", str(tmp_path), "--lr", "0.1", "--no-cosine",
            "--label-smoothing", "0"]  # epoch 2's val_loss is worse than 1's
    assert main([*argv, "--epochs", "2"]) == 0
    last = load_checkpoint(tmp_path / "last.safetensors", models.build("cnn_dropout02"))
    best = load_checkpoint(tmp_path / "best.safetensors", models.build("cnn_dropout02"))
    assert last["parsed"]["epoch"] == 1 and best["parsed"]["epoch"] == 0
    assert main([*argv, "--epochs", "3", "--resume", str(tmp_path / "last.safetensors")]) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert len(m["history"]["loss"]) == 3 and m["epochs"] == 3


def test_train_logs_epoch_lines_when_redirected_and_nothing_when_quiet(fashion, tmp_path, capsys, monkeypatch):
    """Under capture stdout and stderr are not terminals: --progress auto prints one line per epoch, no bar.
    --csv-log writes history.csv, --reduce-lr-on-plateau adds the callback before the checkpoint's."""
    import tinynet.train
    from tinynet.callbacks import ModelCheckpoint, ReduceLROnPlateau

    given, fit = [], tinynet.train.fit
    monkeypatch.setattr(tinynet.train, "fit", lambda *a, **k: given.append(k["callbacks"]) or fit(*a, **k))
    argv = ["train", "--epochs", "2", "--limit-train", "200", "--limit-test", "100", "--validation", "100",
            "--backend", "numpy", "--no-plots", "--out", str(tmp_path)]
    assert main([*argv, "--csv-log", "--reduce-lr-on-plateau", "3", "--limit-val", "40"]) == 0
    out, err = capsys.readouterr()
    assert "validating on 40," in out and json.loads((tmp_path / "metrics.json").read_text())["validation_images"] == 40
    assert "\nEpoch 1/2 - " in out and "\nEpoch 2/2 - " in out and "\r" not in out + err
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines[0] == "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds" and len(lines) == 3
    plateau, checkpoint = given[0][:2]
    assert isinstance(plateau, ReduceLROnPlateau) and isinstance(checkpoint, ModelCheckpoint)
    assert (plateau.patience, plateau.monitor, plateau.factor) == (3, "val_loss", 0.1)
    assert main([*argv, "--quiet", "--overwrite"]) == 0
    assert "Epoch" not in capsys.readouterr().out


def test_version_and_help_with_defaults_and_examples(capsys):
    import tinynet

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"tinynet {tinynet.__version__}\n"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines at the terminal's width
    assert "epochs to train (default: 10)" in text and "(default: auto)" in text and "(default: 0.002)" in text
    assert "(default: last)" in text and "(the default, unless another schedule is given" in text
    assert "(default: None)" not in text and "(default: False)" not in text
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "\nexamples:\n  tinynet train  " in out and "  tinynet train --epochs 1 --limit-train 1000 --limit-test 500" in out


@pytest.mark.parametrize("flags,second_lr", [([], (2e-3 + 2e-5) / 2), (["--lr-decay-steps", "1"], 2e-4),
                                             (["--no-cosine"], 2e-3), (["--reduce-lr-on-plateau", "5"], 2e-3)])
def test_cosine_decay_is_the_default_schedule_unless_another_is_asked_for(fashion, tmp_path, flags, second_lr):
    """The plain command trains with the recipe the README reports (Adam 2e-3, cosine decay towards 1%, label
    smoothing 0.1, all 60,000 images, the last epoch evaluated); another schedule replaces cosine decay rather
    than stacking on it."""
    assert main(["train", "--epochs", "2", "--limit-train", "64", "--limit-test", "32", "--backend", "numpy",
                 "--no-plots", "--quiet", "--out", str(tmp_path), *flags]) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["history"]["lr"] == pytest.approx([2e-3, second_lr])
    recipe = m["run"]["recipe"]
    assert (m["validation_images"], m["selection"], recipe["cosine"], recipe["label_smoothing"]) == (0, "last",
                                                                                                    not flags, 0.1)


def test_a_run_records_the_code_it_started_with_not_a_commit_made_while_it_trained(fashion, tmp_path, monkeypatch):
    """A long training loads its code at the start; a commit made before it ends must not be credited with it."""
    from tinynet import provenance

    states = iter([{"commit": "a" * 40, "dirty": False}] + [{"commit": "b" * 40, "dirty": True}] * 10)
    monkeypatch.setattr(provenance, "git_state", lambda where=None: next(states))
    assert main(["train", "--epochs", "1", "--limit-train", "64", "--limit-test", "32", "--backend", "numpy",
                 "--seeds", "0,1", "--no-plots", "--quiet", "--out", str(tmp_path)]) == 0
    for path in (tmp_path / "seed0" / "metrics.json", tmp_path / "seed1" / "metrics.json", tmp_path / "summary.json"):
        assert json.loads(path.read_text())["run"]["git"] == {"commit": "a" * 40, "dirty": False}


def test_weight_decay_is_recorded_and_reaches_the_optimizer(fashion, tmp_path, monkeypatch):
    from tinynet import optim

    made = []
    monkeypatch.setattr(optim.Adam, "__init__", lambda self, *a, _init=optim.Adam.__init__, **kw: (
        made.append(kw.get("weight_decay")), _init(self, *a, **kw))[1])
    assert main(["train", "--epochs", "1", "--limit-train", "64", "--limit-test", "32", "--backend", "numpy",
                 "--weight-decay", "0.05", "--no-plots", "--quiet", "--out", str(tmp_path)]) == 0
    assert 0.05 in made
    assert json.loads((tmp_path / "metrics.json").read_text())["run"]["recipe"]["weight_decay"] == 0.05


def test_a_run_records_the_openblas_kernels_and_who_chose_them():
    """The kernel set changes float32 sums and GEMM speed; OPENBLAS_CORETYPE (which some machines set) must show."""
    from tinynet.provenance import openblas_kernels

    if openblas_kernels() is None or platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("NumPy's BLAS here is not an x86-64 OpenBLAS with a choice of kernels")
    code = ("import tinynet, numpy; from tinynet.provenance import openblas_kernels, record; "
            "k = openblas_kernels(); assert record({})['blas']['kernels'] == k; print(k)")
    env = {**os.environ, "OPENBLAS_CORETYPE": "Haswell"}  # AVX2: the setting of the machines this runs on
    forced = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert forced.stdout.strip() == "Haswell (environment: OPENBLAS_CORETYPE=Haswell)"
    env.pop("OPENBLAS_CORETYPE")
    own = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "OPENBLAS_CORETYPE" not in own.stdout and own.stdout.strip() not in ("", "?")


def test_resume_takes_the_model_options_and_folder_from_the_checkpoint(fashion, tmp_path, monkeypatch):
    """--resume alone continues the run the checkpoint holds: its model, its training options, its folder (only
    --epochs may differ, to train on for longer)."""
    monkeypatch.chdir(tmp_path)
    quiet = ["--backend", "numpy", "--no-plots", "--quiet", "--limit-test", "100"]
    assert main(["train", "--model", "cnn_dropout05", "--epochs", "1", "--limit-train", "200", "--lr", "0.01",
                 "--no-cosine", "--seed", "3", "--out", "first", *quiet]) == 0
    assert main(["train", "--resume", "first/last.safetensors", "--epochs", "2", *quiet]) == 0
    m = json.loads((tmp_path / "first" / "metrics.json").read_text())
    assert (m["model"], m["lr"], m["seed"], m["train_images"], m["epochs"]) == ("cnn_dropout05", 0.01, 3, 200, 2)
    assert m["run"]["recipe"]["cosine"] is False
    assert not (tmp_path / "runs").exists()  # not the default runs/MODEL folder


def test_resume_of_one_seed_keeps_its_seed_split_selection_and_test_set(fashion, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    quiet = ["--backend", "numpy", "--no-plots", "--quiet"]
    assert main(["train", "--seeds", "0,1", "--validation", "50", "--limit-train", "150", "--limit-test", "40",
                 "--select", "best", "--epochs", "1", "--out", "s", *quiet]) == 0
    assert main(["train", "--resume", "s/seed1/last.safetensors", "--epochs", "2", *quiet]) == 0
    m = json.loads((tmp_path / "s" / "seed1" / "metrics.json").read_text())
    assert (m["seed"], m["validation_images"], m["train_images"], m["selection"], m["epochs"]) == (1, 50, 150, "best", 2)
    assert sum(map(sum, m["test"]["confusion_matrix"])) == 40


def test_resume_refuses_to_overwrite_later_epochs_but_branches_into_another_folder(fashion, tmp_path, monkeypatch):
    import shutil

    monkeypatch.chdir(tmp_path)
    quiet = ["--backend", "numpy", "--no-plots", "--quiet", "--limit-train", "100", "--limit-test", "40"]
    assert main(["train", "--epochs", "1", "--out", "r", *quiet]) == 0
    shutil.copy(tmp_path / "r" / "last.safetensors", tmp_path / "r" / "epoch1.safetensors")
    assert main(["train", "--resume", "r/last.safetensors", "--epochs", "2", *quiet]) == 0
    before = (tmp_path / "r" / "last.safetensors").read_bytes()
    assert main(["train", "--resume", "r/epoch1.safetensors", "--epochs", "3", *quiet]) == 2
    assert (tmp_path / "r" / "last.safetensors").read_bytes() == before
    assert main(["train", "--resume", "r/epoch1.safetensors", "--epochs", "3", "--out", "branch", *quiet]) == 0
    assert json.loads((tmp_path / "branch" / "metrics.json").read_text())["epochs"] == 3
    assert (tmp_path / "r" / "last.safetensors").read_bytes() == before


def test_a_resumed_run_keeps_its_best_checkpoint_unless_beaten():
    """ModelCheckpoint(save_best_only) starts a resumed run from the best of the epochs it brings, not from inf."""
    from types import SimpleNamespace

    from tinynet.callbacks import ModelCheckpoint
    from tinynet.train import History

    run = SimpleNamespace(history=History({"loss": [0.5, 0.3, 0.4], "accuracy": [0.7, 0.8, 0.75]}))
    low, high = ModelCheckpoint("b.safetensors", monitor="loss"), ModelCheckpoint("b.safetensors", monitor="accuracy")
    low.on_train_begin(run)
    high.on_train_begin(run)
    assert (low.best, high.best) == (0.3, 0.8)


@pytest.mark.parametrize(("raised", "one_line"), [
    (__import__("tinynet").exceptions.InvalidValue("bad batch size"), True),
    (__import__("tinynet").exceptions.MissingDependency("needs onnx: pip install onnx"), True),
    (FileNotFoundError(2, "No such file or directory", "x.safetensors"), True),
    (ValueError("operands could not be broadcast together"), False),  # a bug deep inside: keep the traceback
    (TypeError("unsupported operand type(s)"), False),
])
def test_only_tinynets_own_errors_become_one_line_and_a_bug_keeps_its_traceback(monkeypatch, capsys, raised, one_line):
    import importlib

    cli_main = importlib.import_module("tinynet.cli.main")  # the module (tinynet.cli.main is also the function)

    def command(args):
        raise raised

    monkeypatch.setattr(cli_main, "_command", lambda name: command)
    if one_line:
        assert cli_main.main(["models"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("tinynet: error: ") and err.count("\n") == 1
    else:
        with pytest.raises(type(raised)):
            cli_main.main(["models"])
