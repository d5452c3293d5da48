"""The command line under misuse: one clear line and a non-zero exit for every deliberate error, never a traceback."""

import os
import subprocess
import sys

import pytest

from tinynet import cli
from tinynet.cli import main

TINY_TRAIN = ["--limit-train", "256", "--validation", "0", "--limit-test", "10", "--no-plots", "--quiet"]


def run_cli(*argv, **kw):
    """``python -m tinynet ARGV`` in a fresh process, from the repository root."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "tinynet", *argv], text=True, **kw)


def one_error_line(err):
    """The single stderr line of a failed command (asserting there is exactly one and no traceback)."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinynet: error: "), err
    return lines[0]


# -- 1. every deliberate error type: one line, exit 2 ----------------------------------------------------------------
def test_divergence_is_one_line_not_a_traceback(fashion, tmp_path, capsys):
    assert main(["train", "--lr", "1e6", *TINY_TRAIN, "--out", str(tmp_path / "run")]) == 2
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert "training diverged" in line and "epoch 1" in line and "learning rate" in line
    assert not (tmp_path / "run" / "best.safetensors").exists()  # no checkpoint of the broken weights


def test_divergence_from_a_subprocess(fashion, tmp_path):
    r = run_cli("train", "--lr", "1e6", *TINY_TRAIN, "--out", str(tmp_path / "run"))
    assert r.returncode == 2
    assert "training diverged" in one_error_line(r.stderr)  # NumPy's overflow warnings are not shown either


def test_the_deliberate_error_types_are_collected_in_one_place():
    from tinynet.backend import BackendUnavailable
    from tinynet.callbacks import DivergenceError
    from tinynet.checkpoint import CheckpointError
    from tinynet.data import DataError
    from tinynet.errors import EXPECTED

    for t in (BackendUnavailable, DivergenceError, CheckpointError, DataError, MemoryError):
        assert issubclass(t, EXPECTED), t
    assert not issubclass(KeyError, EXPECTED) and not issubclass(AssertionError, EXPECTED)  # bugs keep a traceback


def _raiser(exc):
    def cmd(args):
        raise exc

    return cmd


def _errors():
    import fake_cupy

    from tinynet.backend import BackendUnavailable
    from tinynet.callbacks import DivergenceError
    from tinynet.checkpoint import CheckpointError
    from tinynet.data import DataError

    return {
        "divergence": (DivergenceError("training diverged: loss became nan"),
                       "tinynet: error: training diverged: loss became nan"),
        "checkpoint": (CheckpointError("c.safetensors: no such checkpoint file"), "c.safetensors: no such checkpoint"),
        "data": (DataError("/d: missing t10k-images-idx3-ubyte.gz"), "/d: missing t10k-images-idx3-ubyte.gz"),
        "backend": (BackendUnavailable("backend 'x' is not usable here"), "backend 'x' is not usable here"),
        "numpy-oom": (MemoryError("Unable to allocate 4.66 GiB"), "error: out of memory: Unable to allocate 4.66 GiB"),
        "cupy-oom": (fake_cupy.OutOfMemoryError("Out of memory allocating 512 bytes"), "Out of memory allocating 512"),
        "bare-oom": (MemoryError(), "tinynet: error: out of memory"),
        "file": (FileNotFoundError(2, "No such file or directory", "x.png"), "No such file or directory: 'x.png'"),
    }


@pytest.mark.parametrize("kind", list(_errors()))
def test_each_error_type_is_one_line_and_status_2(monkeypatch, capsys, kind):
    exc, expect = _errors()[kind]
    monkeypatch.setattr(cli, "cmd_models", _raiser(exc))
    assert main(["models"]) == 2
    assert expect in one_error_line(capsys.readouterr().err)


def test_a_bug_keeps_its_traceback(monkeypatch):
    monkeypatch.setattr(cli, "cmd_models", _raiser(KeyError("bug")))
    with pytest.raises(KeyError):
        main(["models"])


def test_ctrl_c_is_one_line_and_status_130(monkeypatch, capsys):
    monkeypatch.setattr(cli, "cmd_models", _raiser(KeyboardInterrupt()))
    assert main(["models"]) == 130
    assert capsys.readouterr().err == "tinynet: interrupted\n"


def test_missing_data_is_one_line(tmp_path, capsys):
    assert main(["data", "--data", str(tmp_path)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(tmp_path) in line and "missing" in line and "train-images-idx3-ubyte.gz" in line


def test_out_of_memory_evaluation_is_one_line(fashion, tmp_path, monkeypatch, capsys):
    """Evaluation that runs out of memory even at batch size 1 (train.predict_logits halves down to it)."""
    import models
    from tinynet.checkpoint import save_checkpoint
    from tinynet.sequential import Sequential

    ckpt = tmp_path / "m.safetensors"
    save_checkpoint(ckpt, models.build("cnn_dropout02", seed=0))

    def no_memory(self, x, training=False):
        raise MemoryError(f"Unable to allocate {len(x) * 4} MiB")

    monkeypatch.setattr(Sequential, "forward", no_memory)
    assert main(["evaluate", str(ckpt)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "out of memory evaluating even one sample on numpy" in line


# -- 2. argument problems are refused before any data is loaded or any training starts -----------------------------
@pytest.fixture
def no_work(monkeypatch):
    """Loading the data or training fails the test: the refusal must come first."""

    def forbidden(*a, **k):
        raise AssertionError("the command started working before refusing its arguments")

    monkeypatch.setattr(cli, "_load_data", forbidden)
    monkeypatch.setattr("tinynet.train.fit", forbidden)


def test_out_naming_an_existing_file_is_refused_up_front(tmp_path, no_work, capsys):
    f = tmp_path / "report.txt"
    f.write_text("keep me")
    assert main(["train", "--out", str(f)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(f) in line and "existing file" in line and "--out" in line
    assert f.read_text() == "keep me"
    assert main(["train", "--out", str(f / "sub")]) == 2  # a file where a parent folder should be
    assert f"{f} is a file" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["--epochs", "0"], "argument --epochs: must be a positive integer, got 0"),
        (["--epochs", "two"], "argument --epochs: expected an integer, got 'two'"),
        (["--batch-size", "-32"], "argument --batch-size: must be a positive integer, got -32"),
        (["--lr", "0"], "argument --lr: must be a positive finite number, got 0"),
        (["--lr=-1e-3"], "argument --lr: must be a positive finite number, got -1e-3"),
        (["--lr", "nan"], "argument --lr: must be a positive finite number, got nan"),
        (["--limit-train", "0"], "argument --limit-train: must be a positive integer, got 0"),
        (["--limit-test", "-5"], "argument --limit-test: must be a positive integer, got -5"),
        (["--validation", "-1"], "argument --validation: must be an integer >= 0, got -1"),
        (["--seed", "-1"], "argument --seed: must be an integer >= 0, got -1"),
        (["--patience", "-1"], "argument --patience: must be an integer >= 0, got -1"),
        (["--lr-decay-steps", "0"], "argument --lr-decay-steps: must be a positive finite number, got 0"),
        (["--monitor", "val_acc"], "argument --monitor: invalid choice: 'val_acc'"),
    ],
)
def test_bad_numbers_and_choices_are_one_line_at_parse_time(no_work, capsys, argv, expect):
    with pytest.raises(SystemExit) as e:
        main(["train", *argv])
    assert e.value.code == 2
    line = one_error_line(capsys.readouterr().err)
    assert expect in line and "tinynet train --help" in line


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["--model", "resnet"], "unknown model 'resnet'; choose one of: cnn_dropout02"),
        (["--monitor", "val_loss", "--validation", "0"], "--monitor val_loss needs validation images"),
        (["--resume", "no/such.safetensors"], "--resume no/such.safetensors: no such checkpoint file"),
    ],
)
def test_inconsistent_arguments_are_refused_up_front(tmp_path, no_work, capsys, argv, expect):
    assert main(["train", *argv, "--out", str(tmp_path / "run")]) == 2
    assert expect in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


def test_validation_larger_than_the_data_is_refused_before_training(fashion, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("tinynet.train.fit", lambda *a, **k: pytest.fail("training started"))
    assert main(["train", "--validation", "60000", "--out", str(tmp_path / "run")]) == 2
    assert "--validation 60000 leaves no training images (there are 60,000)" in one_error_line(capsys.readouterr().err)


def test_predict_index_below_zero_is_refused(capsys):
    with pytest.raises(SystemExit) as e:
        main(["predict", "model.safetensors", "--index", "-1"])
    assert e.value.code == 2
    assert "argument --index: must be an integer >= 0, got -1" in one_error_line(capsys.readouterr().err)


# -- 3. predict into a pipe whose reader stops early -----------------------------------------------------------------
@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """A checkpoint of an untrained cnn_dropout02: predict needs weights, not good ones."""
    import models
    from tinynet.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "untrained.safetensors"
    save_checkpoint(path, models.build("cnn_dropout02", seed=0))
    return path


@pytest.mark.parametrize("unbuffered", [True, False], ids=["unbuffered", "buffered"])
def test_predict_into_a_closed_pipe_keeps_the_plot_and_exits_quietly(fashion, untrained, tmp_path, unbuffered):
    """stdout is a real pipe whose reading end is already closed: every write to it fails with EPIPE."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"  # each print reaches the pipe at once (and fails at once)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        r = run_cli("predict", str(untrained), "--index", "169", "--plot", str(tmp_path / "p.png"),
                    stdout=write_end, stderr=subprocess.PIPE, env=env)
    finally:
        os.close(write_end)
    assert r.stderr == "" and r.returncode == 0
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_predict_piped_into_head(fashion, untrained, tmp_path):
    """tinynet predict CKPT --plot p.png | head -1"""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p1 = subprocess.Popen([sys.executable, "-m", "tinynet", "predict", str(untrained), "--index", "169", "--plot",
                           str(tmp_path / "p.png")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    p2 = subprocess.Popen(["head", "-1"], stdin=p1.stdout, stdout=subprocess.PIPE)
    p1.stdout.close()  # head alone holds the reading end now
    out, _ = p2.communicate()
    err = p1.stderr.read()
    p1.stderr.close()
    assert p1.wait() == 0 and err == b""
    assert out.decode().startswith("predicted: ") and out.decode().count("\n") == 1
    assert (tmp_path / "p.png").stat().st_size > 1000
