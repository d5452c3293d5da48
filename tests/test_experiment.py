"""tinynet.experiment from Python: a Recipe trained on a tiny slice, the callbacks a recipe implies, and the resume
merge (a checkpoint's recorded recipe and the options a user gave) as a pure function."""

import json
from pathlib import Path

import numpy as np
import pytest

from tinynet.callbacks import CSVLogger, EarlyStopping, LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau
from tinynet.checkpoint import CheckpointError
from tinynet.errors import UsageError
from tinynet.experiment import (
    CLAIM,
    RECORDED,
    Recipe,
    callbacks_for,
    check,
    checkpoint_record,
    merge_resume,
    recipe_in_checkpoint,
    resume_recipe,
    run,
    run_record,
    take_folder,
)

TINY = dict(epochs=1, limit_train=200, limit_test=50, validation=50, backend="numpy", no_plots=True, quiet=True)


# -- training from Python ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def from_python(fashion, tmp_path_factory):
    out = tmp_path_factory.mktemp("python")
    return run(Recipe(**TINY, seed=1, out=str(out)), data=fashion)


def test_a_recipe_trains_from_python_and_writes_what_the_command_line_writes(from_python):
    r = from_python
    m = json.loads(r.metrics.read_text())
    assert r.metrics == r.folder / "metrics.json" and len(r.history) == 1 and r.seed == 1
    assert (m["train_images"], m["validation_images"], m["seed"], m["epochs"]) == (200, 50, 1, 1)
    assert m["test_accuracy"] == r.test_accuracy and 0 < r.test_accuracy <= 1
    assert sum(map(sum, m["test"]["confusion_matrix"])) == 50
    assert {p.name for p in r.files} == {"metrics.json", "best.safetensors", "last.safetensors"}
    assert r.model.predict(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)  # the trained model itself
    # run.recipe: the checked recipe (cosine settled) in the command line's names and order
    assert m["run"]["recipe"] == run_record(Recipe(**TINY, seed=1, out=str(r.folder), cosine=True), backend="numpy")
    assert list(m["run"]["recipe"])[:4] == ["command", "backend", "data", "model"]
    assert r.summary() == {"seed": 1, "test_accuracy": r.test_accuracy, "test_loss": r.test_loss,
                           "metrics": str(r.metrics), "train_seconds": m["train_seconds"]}


def test_python_and_the_command_line_train_the_same_run(from_python, tmp_path):
    from tinynet.cli import main

    argv = ["train", "--epochs", "1", "--limit-train", "200", "--limit-test", "50", "--validation", "50", "--backend",
            "numpy", "--no-plots", "--quiet", "--seed", "1", "--out", str(tmp_path)]
    assert main(argv) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert (m["test_accuracy"], m["test_loss"]) == (from_python.test_accuracy, from_python.test_loss)
    assert m["history"]["loss"] == from_python.history.history["loss"]


def test_a_run_from_python_resumes_with_its_recorded_recipe(from_python, fashion, tmp_path):
    """resume_recipe takes the model, options and folder from the checkpoint; only epochs is the caller's."""
    last = from_python.folder / "last.safetensors"
    recipe = resume_recipe(Recipe(resume=str(last), epochs=2, out=str(tmp_path), backend="numpy", quiet=True,
                                  no_plots=True))
    assert (recipe.seed, recipe.limit_train, recipe.validation, recipe.epochs, recipe.monitor) == (1, 200, 50, 2,
                                                                                                   "val_loss")
    r = run(recipe, data=fashion)
    assert len(r.history) == 2 and json.loads(r.metrics.read_text())["epochs"] == 2


def test_check_settles_the_schedule_and_refuses_what_cannot_work(tmp_path):
    out = str(tmp_path / "run")
    assert check(Recipe(out=out, no_plots=True)).cosine is True
    assert check(Recipe(out=out, no_plots=True, lr_decay_steps=5)).cosine is False
    with pytest.raises(UsageError, match="--cosine and --lr-decay-steps are each a learning-rate schedule"):
        check(Recipe(out=out, no_plots=True, cosine=True, lr_decay_steps=5))
    with pytest.raises(UsageError, match="unknown model 'resnet'"):
        check(Recipe(model="resnet", out=out))
    assert not (tmp_path / "run").exists()


# -- the callbacks a recipe implies ------------------------------------------------------------------------------------
def test_callbacks_for_the_default_recipe(tmp_path):
    best, last, cosine = callbacks_for(Recipe(), tmp_path)
    assert isinstance(best, ModelCheckpoint) and best.save_best_only and best.path == tmp_path / "best.safetensors"
    assert isinstance(last, ModelCheckpoint) and not last.save_best_only and last.path == tmp_path / "last.safetensors"
    assert best.monitor == "loss"  # no validation images
    assert json.loads(best.extra["recipe"]) == checkpoint_record(Recipe()) == json.loads(last.extra["recipe"])
    assert isinstance(cosine, LearningRateScheduler)
    assert cosine.schedule(0) == pytest.approx(2e-3) and cosine.schedule(10) == pytest.approx(2e-5)


def test_callbacks_for_a_recipe_with_a_plateau_log_and_early_stopping(tmp_path):
    recipe = Recipe(validation=100, reduce_lr_on_plateau=2, csv_log=True, patience=3)
    plateau, best, last, log, stop = callbacks_for(recipe, tmp_path)  # another schedule: no cosine decay
    assert isinstance(plateau, ReduceLROnPlateau) and (plateau.monitor, plateau.patience) == ("val_loss", 2)
    assert isinstance(best, ModelCheckpoint) and isinstance(last, ModelCheckpoint)
    assert isinstance(log, CSVLogger) and isinstance(stop, EarlyStopping)
    assert (stop.monitor, stop.patience, stop.restore_best_weights) == ("val_loss", 3, True)
    *_, decay = callbacks_for(Recipe(lr_decay_steps=2, cosine=False, lr=1.0), tmp_path)
    assert decay.schedule(2) == pytest.approx(0.1)
    assert len(callbacks_for(Recipe(cosine=False), tmp_path)) == 2


# -- the resume merge, pure -------------------------------------------------------------------------------------------
# extra.recipe as tinynet train has written it into checkpoints since the recipe was recorded: the format must stay
OLD = ('{"model": "cnn_dropout05", "seed": 1, "epochs": 1, "batch_size": 32, "lr": 0.01, "augment": false, '
       '"augment_shift": 2, "validation": 0, "monitor": "loss", "patience": null, "lr_decay_steps": null, '
       '"weight_decay": 0.0, "label_smoothing": 0.1, "cosine": true, "reduce_lr_on_plateau": null, "limit_train": '
       '100, "limit_val": null, "limit_test": 50, "select": "last", "csv_log": false}')


def test_the_recorded_format_starts_with_the_one_old_checkpoints_hold():
    """Fields recorded since (the backend, the optimizer) come after the old ones, which keep their format."""
    recipe = Recipe(model="cnn_dropout05", seed=1, epochs=1, lr=0.01, cosine=True, limit_train=100, limit_test=50,
                    backend="numpy")
    old = tuple(json.loads(OLD))
    assert json.dumps(checkpoint_record(recipe)) == OLD[:-1] + ', "backend": "numpy", "optimizer": "adam", "momentum": null}'
    assert RECORDED[: len(old)] == old and RECORDED[len(old):] == ("backend", "optimizer", "momentum")


def test_resume_takes_every_option_not_given_from_the_recorded_recipe():
    merged = merge_resume(Recipe(epochs=3, out="elsewhere"), json.loads(OLD), given={"epochs", "out"})
    assert (merged.model, merged.seed, merged.lr, merged.limit_train, merged.monitor) == ("cnn_dropout05", 1, 0.01,
                                                                                          100, "loss")
    assert (merged.epochs, merged.out) == (3, "elsewhere")  # epochs may differ: to train on for longer


def test_resume_accepts_given_options_that_agree_with_the_recorded_ones():
    merged = merge_resume(Recipe(lr=0.01, seed=1, epochs=1), json.loads(OLD), given={"lr", "seed", "epochs"})
    assert merged.lr == 0.01 and merged.model == "cnn_dropout05"


@pytest.mark.parametrize(
    "given,expect",
    [
        (dict(seed=5), "--seed 5 (the checkpoint's run: --seed 1)"),
        (dict(lr=0.1, augment=True), "--lr 0.1 (the checkpoint's run: --lr 0.01); --augment (the checkpoint's run: "
                                     "no --augment)"),
        (dict(cosine=False), "--no-cosine (the checkpoint's run: --cosine)"),
        (dict(patience=2), "--patience 2 (the checkpoint's run: no --patience)"),
    ],
)
def test_resume_refuses_given_options_that_differ_naming_both_values(given, expect):
    with pytest.raises(UsageError) as err:
        merge_resume(Recipe(**given), json.loads(OLD), given=set(given), where="runs/x/last.safetensors")
    msg = str(err.value)
    assert msg.startswith("runs/x/last.safetensors continues a run trained with other options: ") and expect in msg
    assert msg.endswith("Leave them out to take the checkpoint's")


def test_resume_without_a_given_set_counts_what_differs_from_the_defaults():
    with pytest.raises(UsageError, match=r"--lr 0.5 \(the checkpoint's run: --lr 0.01\)"):
        merge_resume(Recipe(lr=0.5), json.loads(OLD))
    assert merge_resume(Recipe(), json.loads(OLD)).lr == 0.01  # the default lr: not given, so taken


def test_resume_keeps_options_an_older_recipe_does_not_record():
    older = {k: v for k, v in json.loads(OLD).items() if k not in ("weight_decay", "label_smoothing")}
    merged = merge_resume(Recipe(weight_decay=0.05), older, given={"weight_decay"})
    assert (merged.weight_decay, merged.label_smoothing, merged.lr) == (0.05, 0.1, 0.01)


@pytest.mark.parametrize("raw,expect", [("{not json", "are not JSON"), ("[1, 2]", "are a list, not an object")])
def test_a_damaged_recorded_recipe_names_its_file(raw, expect):
    with pytest.raises(CheckpointError, match=expect) as err:
        recipe_in_checkpoint({"extra.recipe": raw}, "c.safetensors")
    assert str(err.value).startswith("c.safetensors: its recorded training options")
    assert recipe_in_checkpoint({}, "c.safetensors") is None  # saved by fit() from Python: no recipe


def test_a_run_claims_its_folder_as_it_starts_so_a_run_started_meanwhile_goes_elsewhere(tmp_path, monkeypatch):
    """Found by a new user: the smoke test started during make demo's first epoch chose the same runs/MODEL, and the
    demo's checkpoints then overwrote it. check() only chooses; take_folder() claims atomically as the run starts."""
    from tinynet.errors import UsageError

    monkeypatch.chdir(tmp_path)
    first, second = check(Recipe(no_plots=True)), check(Recipe(no_plots=True))  # both chosen before either starts
    assert first.out == second.out == "runs/cnn_dropout02" and not Path(first.out).exists()  # choosing takes nothing
    assert take_folder(first).out == "runs/cnn_dropout02" and (Path(first.out) / CLAIM).is_file()
    third = check(Recipe(no_plots=True))
    assert third.out == "runs/cnn_dropout02-2"  # a claimed folder holds a run, even before its first checkpoint
    assert take_folder(second).out == "runs/cnn_dropout02-2"  # the second run gives way when it starts...
    assert take_folder(third).out == "runs/cnn_dropout02-3"  # ...and so does the third
    given = check(Recipe(no_plots=True, out="mine"))
    take_folder(check(Recipe(no_plots=True, out="mine")))  # another run took the given folder meanwhile
    with pytest.raises(UsageError, match="--out mine was taken by another run that started meanwhile"):
        take_folder(given)
