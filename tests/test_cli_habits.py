"""The command line's habits a new user relies on: no finished run overwritten silently, --resume that goes on bit
for bit (backend and optimizer included) or says there is nothing left, a full disk in one line, folders taken for
their last.safetensors, every missing optional library in one line with its install command, tinynet summary,
--optimizer, "did you mean", short skip reasons, and export that writes only .onnx files."""

import errno
import importlib
import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from tinynet import experiment, optional
from tinynet.cli import main

cli_main = importlib.import_module("tinynet.cli.main")  # the module: the package's name main is its function

QUICK = ["--epochs", "1", "--limit-train", "64", "--limit-test", "32", "--backend", "numpy", "--no-plots", "--quiet"]


def one_error_line(err):
    """The single stderr line of a failed command (asserting there is exactly one and no traceback)."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinynet: error: "), err
    return lines[0]




@pytest.fixture(scope="module")
def finished(fashion, tmp_path_factory):
    """A finished one-epoch run (Adam, NumPy) in its folder: metrics.json, best and last.safetensors."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", *QUICK, "--seed", "2", "--out", str(out)]) == 0
    return out


def _checkpoint(path, epoch=0, recipe=None, optimizer=True):
    """A cnn_dropout02 checkpoint of ``epoch`` written by hand, recording ``recipe`` (a dict) if given."""
    from tinynet import models
    from tinynet.checkpoint import save_checkpoint
    from tinynet.optim import Adam

    model = models.build("cnn_dropout02", seed=0)
    extra = {"recipe": json.dumps(recipe)} if recipe is not None else None
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, model, Adam(model.parameters()) if optimizer else None, epoch=epoch, extra=extra)
    return path


# -- 1. no output folder is overwritten silently --------------------------------------------------------------------
def test_the_default_folder_moves_on_to_the_next_free_number_and_says_so(fashion, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "cnn_dropout02").mkdir(parents=True)
    (tmp_path / "runs" / "cnn_dropout02" / "metrics.json").write_text("{}")  # a finished run
    (tmp_path / "runs" / "cnn_dropout02-2").mkdir()
    (tmp_path / "runs" / "cnn_dropout02-2" / "last.safetensors").write_bytes(b"x")  # one cut short
    assert main(["train", *QUICK]) == 0
    err = capsys.readouterr().err
    assert "note: runs/cnn_dropout02 holds a run: this one writes into runs/cnn_dropout02-3" in err
    assert json.loads((tmp_path / "runs" / "cnn_dropout02-3" / "metrics.json").read_text())["epochs"] == 1
    assert (tmp_path / "runs" / "cnn_dropout02" / "metrics.json").read_text() == "{}"
    assert (tmp_path / "runs" / "cnn_dropout02-2" / "last.safetensors").read_bytes() == b"x"


@pytest.mark.parametrize("held", ["metrics.json", "last.safetensors", "seed1/metrics.json", "summary.json"])
def test_an_out_that_holds_a_run_is_refused_before_any_data_is_loaded(tmp_path, no_work, capsys, held):
    out = tmp_path / "m2"
    (out / held).parent.mkdir(parents=True)
    (out / held).write_text("{}")
    assert main(["train", "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"--out {out} already holds a run ({out / held})" in line and "--overwrite" in line
    assert (out / held).read_text() == "{}"
    with pytest.raises(AssertionError, match="started working"):  # --overwrite: it goes on, to load the data
        main(["train", "--out", str(out), "--overwrite"])


def test_an_empty_out_and_the_resumed_checkpoints_own_folder_are_not_refused(tmp_path, no_work):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AssertionError, match="started working"):
        main(["train", "--out", str(tmp_path / "empty")])
    last = _checkpoint(tmp_path / "run" / "last.safetensors", recipe=experiment.checkpoint_record(experiment.Recipe()))
    (tmp_path / "run" / "metrics.json").write_text("{}")
    with pytest.raises(AssertionError, match="started working"):  # a run goes on in its own folder
        main(["train", "--resume", str(last), "--out", str(tmp_path / "run"), "--epochs", "3"])


# -- 2. --resume restores the backend --------------------------------------------------------------------------------
def test_the_resume_command_printed_on_ctrl_c_gives_the_uninterrupted_run_bit_for_bit(fashion, tmp_path, monkeypatch,
                                                                                     capsys):
    from tinynet.callbacks import Callback

    argv = ["train", "--epochs", "2", "--limit-train", "64", "--limit-test", "32", "--backend", "numpy", "--no-plots",
            "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "whole")]) == 0

    class CtrlC(Callback):
        def on_epoch_end(self, epoch, logs, run):
            raise KeyboardInterrupt

    callbacks_for = experiment.callbacks_for
    monkeypatch.setattr(experiment, "callbacks_for", lambda *a: [*callbacks_for(*a), CtrlC()])  # after the checkpoints
    assert main([*argv, "--out", str(tmp_path / "cut")]) == 130
    command = capsys.readouterr().err.split("to go on from its last finished epoch: tinynet ")[1].split()
    monkeypatch.undo()
    assert command == ["train", "--resume", str(tmp_path / "cut" / "last.safetensors")]
    assert main(command) == 0  # --backend auto would be Numba where it is installed: the checkpoint says numpy
    whole, cut = (json.loads((tmp_path / f / "metrics.json").read_text()) for f in ("whole", "cut"))
    assert cut["backend"] == "numpy" and cut["run"]["recipe"]["backend"] == "numpy"
    assert (cut["history"]["loss"], cut["test_loss"]) == (whole["history"]["loss"], whole["test_loss"])
    a, b = (_tensors(tmp_path / f / "last.safetensors") for f in ("whole", "cut"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)  # weights and optimizer state


def test_ctrl_c_names_the_folder_the_run_took_when_another_run_took_the_chosen_one(fashion, tmp_path, monkeypatch,
                                                                                    capsys):
    from tinynet.callbacks import Callback

    class CtrlC(Callback):
        def on_epoch_end(self, epoch, logs, run):
            raise KeyboardInterrupt

    def another_run_starts(root=None):  # while this run loads its data, another takes the folder check() chose
        experiment.take_folder(experiment.check(experiment.Recipe(no_plots=True)))
        return load_data(root)

    load_data, callbacks_for = experiment.load_data, experiment.callbacks_for
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(experiment, "load_data", another_run_starts)
    monkeypatch.setattr(experiment, "callbacks_for", lambda *a: [*callbacks_for(*a), CtrlC()])
    assert main(["train", "--epochs", "2", "--limit-train", "64", "--limit-test", "32", "--backend", "numpy",
                 "--no-plots", "--quiet"]) == 130
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.endswith("tinynet train --resume runs/cnn_dropout02-2/last.safetensors"), last


def _tensors(path):
    """Every tensor of the checkpoint ``path``, by name."""
    from tinynet.checkpoint import read_checkpoint

    _, _, reader = read_checkpoint(path)
    try:
        return {k: reader.get_tensor(k) for k in reader.keys()}
    finally:
        reader.close()


def test_ctrl_c_before_a_resumed_runs_first_new_epoch_names_the_checkpoint_it_went_on_from(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main, "cmd_train", interrupted)
    assert main(["train", "--resume", "r/last.safetensors", "--epochs", "5"]) == 130
    assert capsys.readouterr().err == "tinynet: interrupted; to go on: tinynet train --resume r/last.safetensors --epochs 5\n"


def test_resume_refuses_another_backend_and_takes_auto_as_the_checkpoints(tmp_path, no_work, capsys):
    recorded = experiment.checkpoint_record(experiment.Recipe(backend="numpy"))
    last = _checkpoint(tmp_path / "run" / "last.safetensors", recipe=recorded)
    assert main(["train", "--resume", str(last), "--backend", "numba"]) == 2
    assert "--backend numba (the checkpoint's run: --backend numpy)" in one_error_line(capsys.readouterr().err)
    given = {"backend", "resume"}
    recipe = experiment.resume_recipe(experiment.Recipe(resume=str(last), backend="auto"), given)
    assert recipe.backend == "numpy"


def test_an_older_checkpoint_without_a_backend_goes_on_with_the_commands_and_says_so(tmp_path, capsys):
    older = {k: v for k, v in experiment.checkpoint_record(experiment.Recipe()).items()
             if k not in ("backend", "optimizer", "momentum")}
    last = _checkpoint(tmp_path / "last.safetensors", recipe=older)
    recipe = experiment.resume_recipe(experiment.Recipe(resume=str(last), backend="numpy"), {"backend", "resume"})
    assert (recipe.backend, recipe.optimizer) == ("numpy", "adam")
    assert f"note: {last} records no backend (an older tinynet wrote it): going on with numpy" in capsys.readouterr().err


# -- 3. a full disk --------------------------------------------------------------------------------------------------
def _no_space(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_writing_the_second_checkpoint_names_it_and_the_first(fashion, tmp_path, monkeypatch, capsys):
    from tinynet import checkpoint

    write_atomically, lasts = checkpoint.write_atomically, []

    def filling_up(path, write, check=None):
        lasts.append(Path(path).name == "last.safetensors")
        return write_atomically(path, _no_space if sum(lasts) == 2 and lasts[-1] else write, check)

    monkeypatch.setattr(checkpoint, "write_atomically", filling_up)
    out = tmp_path / "run"
    assert main(["train", *QUICK, "--epochs", "2", "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == (f"tinynet: error: no space left on device while writing {out / 'last.safetensors'}; the last "
                    f"checkpoint fully written is {out / 'last.safetensors'} (epoch 1): free some space, then tinynet "
                    f"train --resume {out / 'last.safetensors'}")
    assert experiment.epochs_done(out / "last.safetensors") == 1 and not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("where", ["metrics.json", "history.png"])
def test_a_full_disk_writing_the_report_names_the_file_and_the_last_checkpoint(fashion, tmp_path, monkeypatch, capsys,
                                                                                where):
    if where == "metrics.json":
        write_text = Path.write_text
        monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: _no_space() if self.name == where
                            else write_text(self, *a, **k))
        argv = QUICK
    else:
        from matplotlib.figure import Figure

        monkeypatch.setattr(Figure, "savefig", _no_space)  # the first plot written
        argv = [a for a in QUICK if a != "--no-plots"]
    out = tmp_path / "run"
    assert main(["train", *argv, "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"no space left on device while writing {out / where}; the last checkpoint fully written is " \
           f"{out / 'last.safetensors'} (epoch 1)" in line


def test_a_full_disk_before_any_checkpoint_says_none_survived(fashion, tmp_path, monkeypatch, capsys):
    from tinynet import checkpoint

    write_atomically = checkpoint.write_atomically
    monkeypatch.setattr(checkpoint, "write_atomically", lambda path, write, check=None: write_atomically(path, _no_space))
    assert main(["train", *QUICK, "--out", str(tmp_path / "run")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"while writing {tmp_path / 'run' / 'best.safetensors'}; no checkpoint was fully written" in line


def test_a_full_disk_blames_only_a_file_being_written(tmp_path, monkeypatch):
    """summary.json is written; then printing the line that says so fails (stdout goes to a file on the full disk):
    the message must not name summary.json, which is whole."""
    from types import SimpleNamespace

    result = SimpleNamespace(test_accuracy=0.9, test_loss=0.3, seed=0, summary=dict)
    monkeypatch.setattr(experiment, "print", _no_space, raising=False)  # the module's print, not the builtin
    with pytest.raises(experiment.DiskFull) as err, experiment._naming_a_full_disk(tmp_path, 0, None):
        experiment._write_summary(experiment.Recipe(), [0, 1], [result, result], tmp_path, {})
    assert (tmp_path / "summary.json").is_file() and "summary.json" not in str(err.value)


def test_other_os_errors_are_not_called_a_full_disk(tmp_path):
    with pytest.raises(PermissionError), experiment._naming_a_full_disk(tmp_path, 0, None):
        raise PermissionError(errno.EACCES, "Permission denied")


# -- 4. a folder for a checkpoint ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seeds_folder(tmp_path_factory):
    """runs/m2 as --seeds 0,1 leaves it: seed0/ and seed1/, each with best and last.safetensors, no last of its own."""
    root = tmp_path_factory.mktemp("m2")
    for seed in (0, 1):
        for name in ("best", "last"):
            _checkpoint(root / f"seed{seed}" / f"{name}.safetensors")
    return root


@pytest.mark.parametrize("argv", [["evaluate", "{}"], ["predict", "{}"], ["inspect", "--checkpoint", "{}"],
                                  ["export", "{}", "m.onnx"], ["summary", "{}"]])
def test_a_folder_without_last_safetensors_lists_its_checkpoints(seeds_folder, no_work, capsys, argv):
    assert main([a.format(seeds_folder) for a in argv]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{seeds_folder} is a folder without a last.safetensors: name one of the checkpoints it holds: " \
           f"{seeds_folder / 'seed0' / 'last.safetensors'}, {seeds_folder / 'seed1' / 'last.safetensors'}, " \
           f"{seeds_folder / 'seed0' / 'best.safetensors'}" in line


def test_a_folder_gives_its_last_safetensors(finished, tmp_path, capsys):
    assert main(["predict", str(finished), "--index", "3"]) == 0
    assert capsys.readouterr().out.startswith("predicted: ")
    assert main(["inspect", "--checkpoint", str(finished), "--batch", "2"]) == 0
    assert f"cnn_dropout02 from {finished / 'last.safetensors'} (epoch 1)" in capsys.readouterr().out
    assert main(["export", str(finished), str(tmp_path / "m.onnx")]) == 0
    assert f"from {finished / 'last.safetensors'}" in capsys.readouterr().out and (tmp_path / "m.onnx").is_file()
    (tmp_path / "nothing").mkdir()
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "is a folder holding no checkpoint" in one_error_line(capsys.readouterr().err)


# -- 5. --resume with nothing left to train --------------------------------------------------------------------------
def test_resume_with_nothing_left_says_so_and_leaves_a_current_report_alone(finished, tmp_path, monkeypatch, capsys):
    run = shutil.copytree(finished, tmp_path / "run")
    report = (run / "metrics.json").read_bytes()
    monkeypatch.setattr(experiment, "load_data", lambda *a: pytest.fail("loaded the data"))
    assert main(["train", "--resume", str(run / "last.safetensors")]) == 0
    out = capsys.readouterr().out
    assert out == (f"nothing left to train: {run / 'last.safetensors'} is of epoch 1 of 1; pass --epochs N > 1 to train "
                   f"on (its report, {run / 'metrics.json'}, is up to date)\n")
    assert (run / "metrics.json").read_bytes() == report


def test_resume_with_nothing_left_writes_a_missing_report(finished, tmp_path, capsys):
    """A run stopped after its last epoch, before its report (Ctrl-C in the evaluation, a full disk): its resume
    command writes the report, and says there was nothing left to train."""
    run = shutil.copytree(finished, tmp_path / "run")
    (run / "metrics.json").unlink()
    assert main(["train", "--resume", str(run / "last.safetensors")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"nothing left to train: {run / 'last.safetensors'} is of epoch 1 of 1; pass --epochs N > 1 "
                          "to train on; evaluating it and writing its report\n")
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 1


def test_nothing_left_to_train_names_a_smaller_epochs(tmp_path):
    last = _checkpoint(tmp_path / "last.safetensors", epoch=6)
    recipe = experiment.Recipe(resume=str(last), epochs=5)
    assert experiment.nothing_left_to_train(recipe) == (f"nothing left to train: {last} is of epoch 7 and --epochs is "
                                                         "5; pass --epochs N > 7 to train on")
    assert experiment.nothing_left_to_train(experiment.Recipe(resume=str(last), epochs=8)) is None
    assert not experiment.report_is_current(recipe)  # no metrics.json beside it


# -- 6. every missing optional library: one line with its install command ---------------------------------------------
def test_export_without_onnx_is_refused_before_the_checkpoint_is_read(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    assert main(["export", "no/such/checkpoint.safetensors", "m.onnx"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "tinynet export needs the onnx package, which could not be imported: pip install onnx" in line


def test_gradcheck_against_torch_without_torch_is_refused_before_any_work(monkeypatch, capsys):
    from tinynet.cli import gradcheck

    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setattr(gradcheck, "_target", lambda args: pytest.fail("built the model first"))
    assert main(["gradcheck", "--against", "torch", "--backend", "numpy"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--against torch needs PyTorch, which could not be imported: pip install torch" in line


def test_plots_and_images_without_their_libraries_raise_missing_dependency(monkeypatch, tmp_path):
    from tinynet.exceptions import MissingDependency
    from tinynet.images import read_image

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependency, match=r'--plot needs matplotlib, .*pip install -e "\.\[plot\]"'):
        experiment.require_matplotlib("--plot")
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(MissingDependency, match=r"reading an --image needs Pillow, .*pip install pillow"):
        read_image(tmp_path / "x.png")


def test_predict_image_without_pillow_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "PIL", None)
    last = _checkpoint(tmp_path / "last.safetensors", optimizer=False)
    assert main(["predict", str(last), "--image", str(tmp_path / "x.png")]) == 2
    assert 'needs Pillow, which could not be imported: pip install pillow' in one_error_line(capsys.readouterr().err)


@pytest.fixture
def forget_backends(monkeypatch):
    """optional's and the backend's caches emptied for one test, so that a hidden module is tried again."""
    import tinynet.backend

    for cache in (optional._modules, optional._reasons, tinynet.backend._cache):
        for name in ("numba", "cupy"):
            monkeypatch.delitem(cache, name, raising=False)
    monkeypatch.setattr(optional, "_installed", set())


@pytest.mark.parametrize("name,install", [("numba", "pip install numba"), ("cupy", 'pip install -e ".[cuda]"')])
def test_a_backend_whose_library_is_missing_is_one_line_with_its_install_command(forget_backends, monkeypatch,
                                                                                  capsys, name, install):
    monkeypatch.setitem(sys.modules, name, None)
    assert main(["gradcheck", "--backend", name, "--entries", "1"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert install in line and f"backend '{name}'" in line


# -- 7. tinynet summary ----------------------------------------------------------------------------------------------
# (tests/test_summary.py)


# -- 8. --optimizer adam|sgd -----------------------------------------------------------------------------------------
def test_sgd_trains_is_recorded_and_resumes_as_sgd(fashion, tmp_path, monkeypatch, capsys):
    from tinynet import optim

    made = []
    monkeypatch.setattr(optim.SGD, "__init__", lambda self, *a, _init=optim.SGD.__init__, **kw: (
        made.append(kw.get("momentum")), _init(self, *a, **kw))[1])
    out = tmp_path / "sgd"
    assert main(["train", *QUICK, "--optimizer", "sgd", "--lr", "0.01", "--out", str(out)]) == 0
    assert made == [0.9]  # the default momentum
    recipe = json.loads((out / "metrics.json").read_text())["run"]["recipe"]
    assert (recipe["optimizer"], recipe["momentum"]) == ("sgd", 0.9)
    meta = experiment._metadata(out / "last.safetensors")
    assert meta["optimizer"] == "SGD" and json.loads(meta["extra.recipe"])["optimizer"] == "sgd"
    assert main(["train", "--resume", str(out / "last.safetensors"), "--optimizer", "adam"]) == 2
    assert "--optimizer adam (the checkpoint's run: --optimizer sgd)" in one_error_line(capsys.readouterr().err)
    assert main(["train", "--resume", str(out / "last.safetensors"), "--epochs", "2"]) == 0
    assert made == [0.9, 0.9] and json.loads((out / "metrics.json").read_text())["epochs"] == 2


@pytest.mark.parametrize("argv,expect", [
    (["--momentum", "0.5"], "--momentum 0.5 is SGD's: add --optimizer sgd"),
    (["--optimizer", "sgd", "--weight-decay", "0.01"], "--weight-decay is AdamW's decoupled decay: --optimizer sgd has"),
])
def test_an_option_of_the_other_optimizer_is_refused(tmp_path, no_work, capsys, argv, expect):
    assert main(["train", *argv, "--out", str(tmp_path / "run")]) == 2
    assert expect in one_error_line(capsys.readouterr().err)


def test_an_older_checkpoint_was_trained_with_adam(tmp_path, no_work, capsys):
    older = {k: v for k, v in experiment.checkpoint_record(experiment.Recipe(backend="numpy")).items()
             if k not in ("optimizer", "momentum")}
    last = _checkpoint(tmp_path / "last.safetensors", recipe=older)
    assert main(["train", "--resume", str(last), "--optimizer", "sgd"]) == 2
    assert "--optimizer sgd (the checkpoint's run: --optimizer adam)" in one_error_line(capsys.readouterr().err)


# -- 9. did you mean -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,expect", [
    (["train", "--model", "cnn_dropout2"], "unknown model 'cnn_dropout2'; did you mean cnn_dropout02? (tinynet models "
                                           "lists them)"),
    (["train", "--model", "cnn_dropout3"], "unknown model 'cnn_dropout3'; did you mean cnn_dropout02 or cnn_dropout05?"),
    (["inspect", "deep_bn"], "unknown model 'deep_bn'; did you mean deep_bn_cnn?"),
    (["gradcheck", "Three_Conv_CNN"], "unknown model 'Three_Conv_CNN' (nor FILE.py:NAME, a layer or model of your own); "
                                      "did you mean three_conv_cnn?"),
    (["summary", "one_conv"], "unknown model 'one_conv' (nor a checkpoint file or folder); did you mean one_conv_cnn?"),
    (["train", "--model", "resnet"], "unknown model 'resnet'; choose one of: cnn_dropout02, cnn_dropout05, "),
])
def test_a_misspelt_model_name_gets_a_did_you_mean(tmp_path, no_work, capsys, argv, expect):
    out = ["--out", str(tmp_path / "run")] if argv[0] == "train" else []
    assert main([*argv, *out]) == 2
    assert expect in one_error_line(capsys.readouterr().err)


# -- 10. short skip reasons ------------------------------------------------------------------------------------------
def _cupy_without_a_device(monkeypatch):
    """A CuPy that imports and whose cudaGetDeviceCount fails as it does with an old driver."""

    class CUDARuntimeError(RuntimeError):
        pass

    def count():
        raise CUDARuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version")

    fake = types.ModuleType("cupy")
    fake.__version__ = "14.2.0"
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=count))
    monkeypatch.setitem(sys.modules, "cupy", fake)


def test_cupy_without_a_device_says_so_first_and_gives_no_install_command(forget_backends, monkeypatch):
    import tinynet
    from tinynet.backend import BackendUnavailable

    _cupy_without_a_device(monkeypatch)
    with pytest.raises(BackendUnavailable) as err:
        tinynet.use_backend("cupy")
    assert str(err.value) == ("no CUDA device: CuPy 14.2.0 is installed but cudaGetDeviceCount failed "
                              "(cudaErrorInsufficientDriver), so backend 'cupy' is not usable here")
    assert optional.installed("cupy") and not optional.available("cupy")


def test_the_suites_skip_reasons_are_short_lines(forget_backends, monkeypatch):
    from conftest import skip_reason

    _cupy_without_a_device(monkeypatch)
    assert skip_reason("cupy") == "no CUDA device (CuPy finds none)"
    monkeypatch.setattr(optional, "installed", lambda name: False)
    assert skip_reason("cupy") == "CuPy is not installed" and skip_reason("numba") == "numba is not installed"


# -- 11. export writes .onnx files -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["model.txt", "model", "model.onnx.bak"])
def test_export_refuses_a_name_not_ending_in_onnx_before_reading_anything(capsys, name):
    assert main(["export", "no/such/checkpoint.safetensors", name]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"tinynet export writes an ONNX file: name it NAME.onnx, not {name}" in line


def test_the_help_shows_export_and_summary(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "\n  tinynet export runs/m2 m2.onnx " in out and "\n  tinynet summary deep_bn_cnn " in out

