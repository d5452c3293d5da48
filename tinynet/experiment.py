"""Training experiments from a recipe: the options of a run (Recipe), the callbacks they imply, one run or one per
seed with its report and metrics files, and the recipe to go on with from a checkpoint. This is what ``tinynet
train`` does; the command line (tinynet.cli) only turns its options into a Recipe. No argparse here: it works from
Python and notebooks alike.

Training from Python, as ``tinynet train --epochs 1 --limit-train 1000 --limit-test 500 --out runs/quick
--no-plots`` does::

    from tinynet.experiment import Recipe, run

    result = run(Recipe(epochs=1, limit_train=1000, limit_test=500, out="runs/quick", no_plots=True))
    result.test_accuracy, result.history.history["loss"], result.metrics  # runs/quick/metrics.json
    result.model.predict(...)  # the trained model, with the weights the report evaluated

``run_seeds(recipe, [0, 1, 2])`` trains one run per seed (in OUT/seedN) and writes OUT/summary.json. To go on
with a run that stopped, ``run(resume_recipe(Recipe(resume="runs/quick/last.safetensors", epochs=3)))``: the
checkpoint records its run's recipe, and resume_recipe takes it from there.

No finished run is overwritten silently: an ``out`` that holds one is refused (``overwrite=True`` writes over it),
and without ``out`` a run writes into runs/MODEL, or the next free runs/MODEL-2, -3... once that holds one.

The error messages name the options by their command-line spelling (``--validation``), which is also how the
README documents them; a field is the option's name with dashes as underscores.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import errno
import importlib
import json
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from tinynet import models, optional, provenance
from tinynet import train as training  # training.fit is looked up when called: tests stand in for it
from tinynet.atomic_files import writing
from tinynet.backend import get_backend, use_backend
from tinynet.callbacks import (
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    cosine_decay,
    exponential_decay,
)
from tinynet.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from tinynet.data import FASHION_MNIST, Augment, load, to_float, train_val_split
from tinynet.errors import UsageError
from tinynet.exceptions import MissingDependency, TinynetError
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import SGD, Adam
from tinynet.report import build_report, format_text, write_outputs

DATASET = FASHION_MNIST  # the application's data set: its class names, image size and files come from here
# About when the process started (the command line imports this module at once): startup_seconds counts from here
STARTED = time.perf_counter()


@dataclass(frozen=True)
class Recipe:
    """The options of a training run, with the command line's names (``--batch-size`` is ``batch_size``) and
    defaults. The fields are in the command line's order, so that metrics.json records a run the same way whether
    it was started from Python or from ``tinynet train``."""

    backend: str = "auto"  # numpy, numba or cupy; auto: numba when it is installed, else numpy
    data: str | None = None  # folder with the data set's files (None: tinynet.data.load's search)
    model: str = "cnn_dropout02"  # a model of tinynet.models
    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3  # the learning rate
    optimizer: str = "adam"  # adam (AdamW with weight_decay) or sgd
    momentum: float | None = None  # SGD's momentum; None: 0.9 with sgd (check settles it), none with adam
    seed: int = 0  # of the weights, the validation split, the shuffling, dropout and augmentation
    augment: bool = False  # random shifts (zero padding) and horizontal flips of the training images
    augment_shift: int = 2  # largest shift in pixels
    out: str | None = None  # output folder; None: runs/MODEL or the next free runs/MODEL-N (resuming: the checkpoint's)
    overwrite: bool = False  # write into an out that already holds a run
    out_chosen: bool = False  # out was chosen by check() (runs/MODEL or the next free one), not given
    validation: int = 0  # images held out of training to validate on
    monitor: str | None = None  # loss, accuracy, val_loss or val_accuracy; None: val_loss with validation, else loss
    select: str = "last"  # the weights evaluated: the last epoch's, or the best checkpoint's by monitor
    patience: int | None = None  # early stopping patience (restores the best weights)
    lr_decay_steps: float | None = None  # lr * 0.1 ** (epoch / steps)
    weight_decay: float = 0.0  # AdamW's decoupled weight decay (0: plain Adam)
    label_smoothing: float = 0.1  # of the training target; the report's loss stays plain cross-entropy
    cosine: bool | None = None  # cosine decay to 1% of lr; None: on, unless another schedule is asked for
    reduce_lr_on_plateau: int | None = None  # patience before the rate is divided by 10
    csv_log: bool = False  # OUT/history.csv, a row per epoch
    resume: str | None = None  # a checkpoint to go on from (see resume_recipe)
    limit_train: int | None = None  # only the first N training images
    limit_val: int | None = None  # only the first N validation images
    limit_test: int | None = None  # only the first N test images
    no_plots: bool = False
    progress: str = "auto"  # auto, bar or epoch: tinynet.train.fit's verbose
    quiet: bool = False  # no progress bar, no epoch lines, no "training ..." line


# The options that make a training run and its report what they are: a checkpoint records them (extra.recipe, in
# this order), and resuming takes them from it. epochs may differ (to train on for longer); the others would
# silently make another run. The backend too: NumPy, Numba and CUDA round differently, so a run goes on bit for bit
# only on its own. Fields added later come last: a checkpoint written before them holds the ones before.
RECORDED = ("model", "seed", "epochs", "batch_size", "lr", "augment", "augment_shift", "validation", "monitor",
            "patience", "lr_decay_steps", "weight_decay", "label_smoothing", "cosine", "reduce_lr_on_plateau",
            "limit_train", "limit_val", "limit_test", "select", "csv_log", "backend", "optimizer", "momentum")
# What the recorded fields added later were for the checkpoints written before them (tinynet train trained them all
# with Adam); the backend is not among them: such a checkpoint goes on with the command's, and a note says so.
BEFORE_RECORDED = {"optimizer": "adam", "momentum": None}


def given_fields(recipe):
    """The fields of ``recipe`` that differ from the defaults: taken as the ones asked for when nothing says more."""
    default = Recipe()
    return {f.name for f in dataclasses.fields(Recipe)
            if f.name != "out_chosen" and getattr(recipe, f.name) != getattr(default, f.name)}


def backend_name(name):
    """The backend ``name`` stands for: auto is numba when it is installed, else numpy."""
    if name == "auto":
        return "numba" if optional.available("numba") else "numpy"
    return name


def pick_backend(name):
    """Switch to the backend ``name`` (auto: numba when it is installed, else numpy) and return it; a backend that
    is not usable here raises BackendUnavailable, which says why."""
    return use_backend(backend_name(name))


def load_data(root=None):
    """The data set's ((train images, labels), (test images, labels)), uint8 images, from ``root`` or found."""
    return load(DATASET, root)


# The optional libraries the command line reaches: import name -> (what to call it, its key in optional.INSTALL)
_OPTIONAL = {"matplotlib": ("matplotlib", "matplotlib"), "PIL": ("Pillow", "pillow"), "onnx": ("the onnx package", "onnx"),
             "torch": ("PyTorch", "torch")}


def require(module, what):
    """Import the optional library ``module`` now, before any work (``what`` needs it), or raise MissingDependency
    with the command that installs it."""
    name, key = _OPTIONAL[module]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(f"{what} needs {name}, which could not be imported: {optional.INSTALL[key]}") from None


def require_matplotlib(what):
    """Refuse now, not after the work: the plots come last (train's after the whole training)."""
    require("matplotlib", what)


def model_mismatch(path, held, asked):
    """The error for a checkpoint that holds another model than the one asked for."""
    return UsageError(f"{path} holds {held}, not {asked}: give one or the other")


def unknown_model(name, also=""):
    """The error for a model name that is not one of tinynet.models: the closest names (difflib), or all of them.
    ``also`` follows the name: what else it could have been."""
    scores = {m: difflib.SequenceMatcher(None, name.lower(), m.lower()).ratio() for m in models.MODELS}
    best = max(scores.values())
    close = [m for m, score in scores.items() if score == best and score >= 0.6]  # ties: each one, in the zoo's order
    if close:
        return UsageError(f"unknown model {name!r}{also}; did you mean {' or '.join(close)}? (tinynet models lists them)")
    return UsageError(f"unknown model {name!r}{also}; choose one of: {', '.join(models.MODELS)} (tinynet models lists "
                      "them)")


def output_folder(recipe):
    """Where a run writes: out, or when resuming the checkpoint's folder, or runs/MODEL (check() settles out: then
    runs/MODEL-2, -3... once runs/MODEL holds a run)."""
    if recipe.out:
        return Path(recipe.out)
    return Path(recipe.resume).parent if recipe.resume else Path(f"runs/{recipe.model}")


CLAIM = ".tinynet-run"  # written into a run's folder when the run starts: the folder is taken from then on


def run_files(folder):
    """The files that show ``folder`` holds a run (one seed's, or several seeds' in seedN/): its metrics.json,
    last.safetensors and summary.json, or the claim a run writes when it starts (a run still in its first epoch, or
    one that stopped before writing anything); empty when it holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    names = ("metrics.json", "last.safetensors", "summary.json", CLAIM)
    return [p for name in names for p in (folder / name, *sorted(folder.glob(f"seed*/{name}"))) if p.is_file()]


def _settle_out(recipe):
    """The recipe with the folder it writes into. Not given: the resumed checkpoint's, else runs/MODEL, or when
    that holds a run the next free runs/MODEL-2, -3... (a note says so). Given and holding a run: refused, unless
    overwrite, or it is the resumed checkpoint's own folder (a run goes on there)."""
    if recipe.out is None and recipe.resume:
        return replace(recipe, out=str(Path(recipe.resume).parent))
    if recipe.out is None:
        base, folder = Path("runs") / recipe.model, _free_folder(recipe.model)
        if folder != base:
            print(f"note: {base} holds a run: this one writes into {folder} (--out DIR chooses the folder)",
                  file=sys.stderr)
        return replace(recipe, out=str(folder), out_chosen=True)
    held = run_files(recipe.out)
    own = recipe.resume and Path(recipe.out).resolve() == Path(recipe.resume).resolve().parent
    if held and not recipe.overwrite and not own:
        raise UsageError(f"--out {recipe.out} already holds a run ({held[0]}): give another --out, or add --overwrite "
                         "to write over it")
    return recipe


def _free_folder(model, claim=False):
    """runs/MODEL, or the first of runs/MODEL-2, -3... that holds no run (and, with ``claim``, that this run took)."""
    base = folder = Path("runs") / model
    n = 1
    while run_files(folder) or (folder.exists() and not folder.is_dir()) or (claim and not _claim(folder)):
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def take_folder(recipe):
    """Claim the run's folder as the run starts (check() only chose it). A chosen folder that another run took since
    gives way to the next free one (a note says so); a given one is taken over only with overwrite."""
    out = Path(recipe.out)
    if recipe.resume and out.resolve() == Path(recipe.resume).resolve().parent:
        return recipe  # a run going on in its own folder
    if recipe.overwrite:  # the run written over loses its claim: this one takes the folder
        (out / CLAIM).unlink(missing_ok=True)
    if _claim(out):
        return recipe
    if not recipe.out_chosen:
        raise UsageError(f"--out {out} was taken by another run that started meanwhile: give another --out")
    folder = _free_folder(recipe.model, claim=True)
    print(f"note: {out} was taken by another run that started meanwhile: this one writes into {folder}",
          file=sys.stderr)
    return replace(recipe, out=str(folder))


def _claim(folder):
    """Take ``folder`` for this run: create it and its claim file, atomically (O_EXCL), so that a second run started
    before this one's first checkpoint picks another folder. False when another run took it first."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except OSError:  # a folder that cannot be made or written: _check_out_dir says why, in one line
        return True
    with os.fdopen(fd, "w") as f:
        f.write(f'{{"pid": {os.getpid()}, "started": {time.time():.0f}}}\n')
    return True


def monitor_of(recipe):
    """The metric the best checkpoint, early stopping and plateaus follow: monitor, or val_loss (loss without
    validation images)."""
    return recipe.monitor or ("val_loss" if recipe.validation else "loss")


def _schedules(recipe):
    """The learning-rate schedules asked for, by option."""
    asked = (("--cosine", recipe.cosine), ("--lr-decay-steps", recipe.lr_decay_steps),
             ("--reduce-lr-on-plateau", recipe.reduce_lr_on_plateau is not None))
    return [flag for flag, given in asked if given]


def _check_out_dir(out):
    """The output folder can be made and written: refused now rather than after the first epoch."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"output folder {out} is an existing file; --out needs a folder (for the report, the plots "
                         "and the checkpoint)")
    base = next((p for p in (out, *out.parents) if p.exists()), Path.cwd())
    if not base.is_dir():
        raise UsageError(f"output folder {out} cannot be made: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(f"output folder {out} cannot be written: no write permission in {base}")


def check(recipe):
    """What can be known wrong before the data is loaded and training starts: raises UsageError (MissingDependency
    for plots without matplotlib). Returns the recipe with its schedule settled (cosine decay is the default, unless
    another schedule was asked for), SGD's momentum, and the folder it writes into (see _settle_out: no finished run
    is overwritten silently). Monitoring options without validation images are legal but easy to miss: a note on
    stderr says what they follow."""
    if recipe.model not in models.MODELS:
        raise unknown_model(recipe.model)
    if recipe.monitor and recipe.monitor.startswith("val_") and not recipe.validation:
        raise UsageError(f"--monitor {recipe.monitor} needs validation images, but --validation is 0")
    schedules = _schedules(recipe)
    if len(schedules) > 1:
        raise UsageError(f"{' and '.join(schedules)} are each a learning-rate schedule: choose one")
    if recipe.cosine is None:
        recipe = replace(recipe, cosine=not schedules)
    if recipe.limit_val and not recipe.validation:
        raise UsageError("--limit-val needs validation images, but --validation is 0")
    on_monitor = [flag for flag, given in (("--select best", recipe.select == "best"), ("--patience", recipe.patience),
                                           ("--reduce-lr-on-plateau", recipe.reduce_lr_on_plateau))
                  if given is not None and given is not False]
    if on_monitor and not recipe.validation and not recipe.monitor:  # legal, but easy to miss: say it once
        print(f"note: no validation images, so {' and '.join(on_monitor)} use{'s' * (len(on_monitor) == 1)} the "
              "training loss (--validation N holds some out)", file=sys.stderr)
    recipe = _settle_optimizer(recipe)
    if not recipe.no_plots:
        require_matplotlib("train's plots (--no-plots writes none)")
    pick_backend(recipe.backend)  # an unusable backend is refused before a folder is taken for the run
    recipe = _settle_out(recipe)
    _check_out_dir(output_folder(recipe))
    return recipe


def _settle_optimizer(recipe):
    """The recipe with SGD's momentum settled (0.9 unless given); an option of the other optimizer is refused."""
    if recipe.optimizer not in ("adam", "sgd"):
        raise UsageError(f"unknown optimizer {recipe.optimizer!r}: adam or sgd")
    if recipe.optimizer == "adam":
        if recipe.momentum is not None:
            raise UsageError(f"--momentum {recipe.momentum} is SGD's: add --optimizer sgd (Adam keeps moving averages "
                             "of its own)")
        return recipe
    if recipe.weight_decay:
        raise UsageError("--weight-decay is AdamW's decoupled decay: --optimizer sgd has none; leave one of them out")
    momentum = 0.9 if recipe.momentum is None else recipe.momentum
    if not 0 <= momentum < 1:
        raise UsageError(f"--momentum must be in [0, 1), got {momentum}")
    return replace(recipe, momentum=momentum)


def checkpoint_record(recipe):
    """The recipe as a checkpoint records it (extra.recipe, as JSON), with the metric monitored whether given or
    not: what resuming takes back."""
    return {**{k: getattr(recipe, k) for k in RECORDED}, "monitor": monitor_of(recipe)}


def callbacks_for(recipe, folder):
    """The callbacks ``recipe`` implies for a run writing into ``folder``: the best and the last epoch's checkpoint
    (both recording the recipe), then the plateau, CSV log, early stopping and schedule it asks for."""
    folder, monitor = Path(folder), monitor_of(recipe)
    ran_with = {"recipe": json.dumps(checkpoint_record(recipe))}  # for resuming
    callbacks = [ModelCheckpoint(folder / "best.safetensors", monitor=monitor, save_best_only=True, extra=ran_with),
                 # every epoch's end, so that resuming goes on where an interrupted run stopped
                 ModelCheckpoint(folder / "last.safetensors", monitor=monitor, save_best_only=False, extra=ran_with)]
    if recipe.reduce_lr_on_plateau is not None:  # first: the checkpoint of an epoch then holds the rate to go on with
        callbacks.insert(0, ReduceLROnPlateau(monitor, patience=recipe.reduce_lr_on_plateau))
    if recipe.csv_log:
        callbacks.append(CSVLogger(folder / "history.csv"))
    if recipe.patience is not None:
        callbacks.append(EarlyStopping(monitor, patience=recipe.patience, restore_best_weights=True))
    if recipe.lr_decay_steps:
        callbacks.append(LearningRateScheduler(exponential_decay(recipe.lr, recipe.lr_decay_steps)))
    cosine = recipe.cosine if recipe.cosine is not None else not _schedules(recipe)
    if cosine:
        callbacks.append(LearningRateScheduler(cosine_decay(recipe.lr, recipe.epochs, final_fraction=0.01)))
    return callbacks


class Split(NamedTuple):
    """One run's images (uint8, as the data set stores them) and labels; no validation: x_val and y_val None."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray


def split_for(recipe, train, test):
    """The images of the run of ``recipe`` (its seed draws the validation split), within its limits."""
    (x_all, y_all), (x_test, y_test) = train, test
    if recipe.validation:
        (x_tr, y_tr), (x_val, y_val) = train_val_split(x_all, y_all, recipe.validation, seed=recipe.seed)
    else:
        x_tr, y_tr, x_val, y_val = x_all, y_all, None, None
    if recipe.limit_train:
        x_tr, y_tr = x_tr[: recipe.limit_train], y_tr[: recipe.limit_train]
    if recipe.limit_val and x_val is not None:
        x_val, y_val = x_val[: recipe.limit_val], y_val[: recipe.limit_val]
    if recipe.limit_test:
        x_test, y_test = x_test[: recipe.limit_test], y_test[: recipe.limit_test]
    return Split(x_tr, y_tr, x_val, y_val, x_test, y_test)


@dataclass
class RunResult:
    """One run: the trained model (with the weights the report evaluated), its history and report, and its files."""

    seed: int
    model: object  # a tinynet.Sequential
    history: object  # a tinynet.history.History
    report: dict  # tinynet.report.build_report's
    folder: Path
    files: list  # the paths written: metrics.json, plots, checkpoints
    train_seconds: float

    @property
    def test_accuracy(self):
        return self.report["test"]["accuracy"]

    @property
    def test_loss(self):
        return self.report["test"]["loss"]

    @property
    def metrics(self):
        return self.folder / "metrics.json"

    def summary(self):
        """The run's line in summary.json."""
        return {"seed": self.seed, "test_accuracy": self.test_accuracy, "test_loss": self.test_loss,
                "metrics": str(self.metrics), "train_seconds": round(self.train_seconds, 1)}


def _warm_up(model, x, y):
    """One training step on a copy of the model: Numba and CUDA compile their kernels now, not in the first epoch."""
    twin = copy.deepcopy(model)
    b = get_backend(twin.backend)
    loss = SoftmaxCrossEntropy.for_model(twin)
    training.train_step(twin, loss, Adam(twin.parameters()), b.asarray(x), b.asarray(np.asarray(y)))
    twin.predict(x)
    b.synchronize()


def _optimizer(recipe, model):
    """The recipe's optimizer for ``model``: Adam (AdamW with a weight decay), or SGD with momentum."""
    if recipe.optimizer == "sgd":
        return SGD(model.parameters(), lr=recipe.lr, momentum=0.9 if recipe.momentum is None else recipe.momentum)
    return Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)


def _train(recipe, model, x_tr, y_tr, val, n_test, folder, backend_name):
    """Warm up, then fit: returns the history, the seconds compiling and the seconds training."""
    opt = _optimizer(recipe, model)
    train_loss = SoftmaxCrossEntropy.for_model(model, label_smoothing=recipe.label_smoothing)
    callbacks = callbacks_for(recipe, folder)
    augment = Augment(shift=recipe.augment_shift, flip=True, seed=recipe.seed) if recipe.augment else None
    t0 = time.perf_counter()
    _warm_up(model, x_tr[:2], y_tr[:2])  # compiles every kernel (Numba, CUDA) before the clock for training starts
    jit = time.perf_counter() - t0
    if not recipe.quiet:
        print(f"training {recipe.model} (seed {recipe.seed}) on {len(x_tr):,} images ({backend_name} backend), "
              f"validating on {len(val[0]) if val else 0:,}, testing on {n_test:,}"
              + (f", augmented ({augment})" if augment else ""))
    t0 = time.perf_counter()
    # A diverging run overflows in NumPy long before fit stops it with a DivergenceError naming the epoch and
    # step: that error is the one line to show, not NumPy's overflow warnings ahead of it.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        history = training.fit(model, train_loss, opt, x_tr, y_tr, epochs=recipe.epochs, batch_size=recipe.batch_size,
                               validation_data=val, seed=recipe.seed, callbacks=callbacks,
                               verbose="quiet" if recipe.quiet else recipe.progress, resume_from=recipe.resume,
                               augment=augment)
    return history, jit, time.perf_counter() - t0


def run_record(recipe, seeds=None, **changes):
    """The options of a run as metrics.json and summary.json record them (run.recipe): the command line's, in its
    order (``seeds`` after ``seed``, for several runs), with ``changes``."""
    fields = {"command": "train"}
    for key, value in dataclasses.asdict(recipe).items():
        if key == "out_chosen":  # how the folder was found, not an option of the run
            continue
        fields[key] = value
        if key == "seed" and seeds is not None:
            fields["seeds"] = seeds
    fields.update(changes)
    return fields


def train_one(recipe, split, folder=None, *, backend=None, code=None):
    """Build, warm up (compile), train, evaluate and report the run of ``recipe`` (of its seed) on ``split`` (see
    split_for); writes metrics.json, the plots and the checkpoints into ``folder`` (default: output_folder(recipe))
    and prints the report. ``backend``: the one in use (default: the current one); ``code``: the checkout's git
    state when the run started (default: read now). run() checks the recipe first; this does not."""
    startup = time.perf_counter() - STARTED
    folder = output_folder(recipe) if folder is None else Path(folder)
    backend = get_backend() if backend is None else backend
    recipe = replace(recipe, backend=backend.name)  # what the checkpoints record: auto would be numba on one machine
    code = provenance.git_state() if code is None else code
    x_tr, x_test = to_float(split.x_train), to_float(split.x_test)
    val = (to_float(split.x_val), split.y_val) if split.x_val is not None else None
    model = models.build(recipe.model, seed=recipe.seed)
    history, jit, seconds = _train(recipe, model, x_tr, split.y_train, val, len(x_test), folder, backend.name)
    best, last = folder / "best.safetensors", folder / "last.safetensors"
    meta = load_checkpoint(best, model) if recipe.select == "best" and best.exists() else {}
    chosen = meta["parsed"].get("epoch", len(history) - 1) + 1 if meta else len(history)
    t0 = time.perf_counter()
    # the report's test loss is plain cross-entropy whatever the training target was, so runs compare
    report = build_report(model, SoftmaxCrossEntropy.for_model(model), x_test, split.y_test, x_tr, split.y_train,
                          class_names=DATASET.class_names)
    evaluate_seconds = time.perf_counter() - t0
    text = format_text(report)
    info = dict(model=recipe.model, backend=backend.name, epochs=len(history), batch_size=recipe.batch_size,
                lr=recipe.lr, seed=recipe.seed, train_images=len(x_tr), validation_images=len(val[0]) if val else 0,
                evaluated_epoch=chosen, selection=recipe.select, monitor=monitor_of(recipe), dataset=DATASET.name,
                startup_seconds=round(startup, 2), compile_seconds=round(jit, 2), train_seconds=round(seconds, 1),
                evaluate_seconds=round(evaluate_seconds, 1),
                run=provenance.record(run_record(recipe, backend=backend.name), git=code))
    files = write_outputs(folder, report, history.as_dict(), info, split.x_test, split.y_test, split.x_train,
                          split.y_train, plots=not recipe.no_plots, label_smoothing=recipe.label_smoothing)
    files += [p for p in (best, last) if p.exists()]
    print(f"\n{recipe.model} (seed {recipe.seed}): test accuracy {report['test']['accuracy']:.4f}, test loss "
          f"{report['test']['loss']:.4f} (weights of epoch {chosen}, {seconds:.0f} s of training on {backend.name})\n")
    print(text)
    print("wrote " + ", ".join(str(f) for f in files))
    return RunResult(recipe.seed, model, history, report, folder, files, seconds)


def run(recipe, data=None):
    """Check ``recipe``, then train, evaluate and report its run (see the module's example); returns a RunResult.
    ``data``: ((train images, labels), (test images, labels)) as tinynet.data.load gives them (uint8 images of the
    data set's shape); default: loaded from recipe.data."""
    return run_seeds(recipe, [recipe.seed], data)[0]


def run_seeds(recipe, seeds, data=None):
    """One run of ``recipe`` per seed, each in OUT/seedN (one seed: in OUT), and OUT/summary.json with the mean and
    standard deviation of their test scores; returns their RunResults. ``data``: as for run()."""
    return run_checked(check(recipe), seeds, data)


def run_checked(recipe, seeds, data=None, on_folder=None):
    """run_seeds for a recipe check() returned (its output folder settled: tinynet train says where it writes
    before it starts). ``on_folder`` is called with the folder the run takes, before its first epoch: another run
    may have taken the one check() chose (tinynet train's resume hint looks there). A full disk raises DiskFull,
    naming the file and the checkpoint that survived."""
    code = provenance.git_state()  # the code this process loaded: a commit made while it trains is not its code
    started = time.time()
    backend = pick_backend(recipe.backend)
    train, test = load_data(recipe.data) if data is None else data
    if recipe.validation >= len(train[0]):
        raise UsageError(f"--validation {recipe.validation} leaves no training images (there are {len(train[0]):,})")
    left = nothing_left_to_train(recipe) if recipe.resume else None
    if left:
        print(f"{left}; evaluating it and writing its report")
    recipe = take_folder(recipe)
    out = output_folder(recipe)
    if on_folder is not None:
        on_folder(out)
    results = []
    for seed in seeds:
        one = replace(recipe, seed=seed)
        folder = out if len(seeds) == 1 else out / f"seed{seed}"
        with _naming_a_full_disk(folder, started, recipe.resume):
            results.append(train_one(one, split_for(one, train, test), folder, backend=backend, code=code))
    if len(seeds) > 1:
        with _naming_a_full_disk(out, started, None):
            _write_summary(recipe, seeds, results, out, code)
    return results


# -- a full disk -----------------------------------------------------------------------------------------------------
class DiskFull(TinynetError, OSError):
    """The disk (or the user's quota) filled up while a run wrote its files; the message names the file being
    written and the checkpoint that survived."""


def checkpoints_written_since(folder, started):
    """The last.safetensors files under ``folder`` (its own, its seedN/ ones) written since the time ``started``,
    newest first (2 s of slack: coarse file clocks)."""
    folder = Path(folder)
    written = [p for p in (folder / "last.safetensors", *folder.glob("seed*/last.safetensors"))
               if p.is_file() and p.stat().st_mtime >= started - 2]
    return sorted(written, key=lambda p: p.stat().st_mtime, reverse=True)


def _survivor(folder, started, resumed):
    """The checkpoint a run that stopped can go on from, as words: the last one it wrote fully (its writes are atomic:
    a failed one leaves the one before), else the one it resumed from, else none."""
    kept = next(iter(checkpoints_written_since(folder, started)), None) or (Path(resumed) if resumed else None)
    if kept is None:
        return "no checkpoint was fully written before it: free some space and train again"
    try:
        epoch = f" (epoch {epochs_done(kept)})"
    except (CheckpointError, OSError):
        epoch = ""
    return f"the last checkpoint fully written is {kept}{epoch}: free some space, then tinynet train --resume {kept}"


@contextlib.contextmanager
def _naming_a_full_disk(folder, started, resumed):
    """A full disk or quota (ENOSPC, EDQUOT) while the run in ``folder`` writes becomes DiskFull: one line naming the
    file being written and the checkpoint that survived."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        file = getattr(exc, "writing", None) or exc.filename or f"a file in {folder}"  # atomic_files.writing's tag
        raise DiskFull(f"{os.strerror(exc.errno).lower()} while writing {file}; "
                       f"{_survivor(folder, started, resumed)}") from exc


def _write_summary(recipe, seeds, results, out, code):
    acc = np.array([r.test_accuracy for r in results])
    loss = np.array([r.test_loss for r in results])
    summary = {"model": recipe.model, "seeds": seeds, "runs": [r.summary() for r in results],
               "test_accuracy": {"mean": float(acc.mean()), "std": float(acc.std(ddof=1)), "min": float(acc.min()),
                                 "max": float(acc.max())},
               "test_loss": {"mean": float(loss.mean()), "std": float(loss.std(ddof=1))},
               "run": provenance.record(run_record(recipe, seeds=seeds), git=code)}
    path = out / "summary.json"
    with writing(path):
        path.write_text(provenance.strict_json(summary, indent=2))
    per_seed = ", ".join(f"seed {r.seed}: {r.test_accuracy:.2%}" for r in results)
    print(f"\n{recipe.model} over {len(seeds)} seeds: test accuracy {acc.mean():.2%} ± {acc.std(ddof=1):.2%} "
          f"(mean ± standard deviation; {per_seed}); wrote {path}")
    return path


# -- going on from a checkpoint --------------------------------------------------------------------------------------
def _option(key, value):
    """A recipe's field and value as the command-line option that gives it (for the messages)."""
    flag = "--" + key.replace("_", "-")
    if value is True or value is False:
        return flag if value else ("--no-cosine" if key == "cosine" else f"no {flag}")
    return f"{flag} {value}" if value is not None else f"no {flag}"


def recipe_in_checkpoint(meta, where):
    """The recipe a checkpoint's metadata ``meta`` records (extra.recipe) as a dict, or None where it records none
    (written by fit() from Python, or by a tinynet older than the recipe). ``where`` names the file in errors."""
    try:
        recipe = json.loads(meta.get("extra.recipe", "null"))
    except ValueError as exc:
        raise CheckpointError(f"{where}: its recorded training options are not JSON ({exc})") from None
    if recipe is not None and not isinstance(recipe, dict):
        raise CheckpointError(f"{where}: its recorded training options are a {type(recipe).__name__}, not "
                              "an object")
    return recipe


def merge_resume(recipe, recorded, given=None, where="the checkpoint"):
    """The recipe that continues the run ``recorded`` describes (a checkpoint's extra.recipe, as a dict): its
    options, except those ``given`` (the fields the user asked for; default: those of ``recipe`` that differ from
    the defaults). A given option that differs from the recorded one would continue another run than the one the
    checkpoint holds: UsageError naming both values. epochs alone may differ, to train on for longer. Reads and
    writes nothing."""
    given = given_fields(recipe) if given is None else set(given)
    clashes = [f"{_option(k, getattr(recipe, k))} (the checkpoint's run: {_option(k, recorded[k])})"
               for k in RECORDED if k in given and k != "epochs" and k in recorded and getattr(recipe, k) != recorded[k]]
    if clashes:
        raise UsageError(f"{where} continues a run trained with other options: {'; '.join(clashes)}. "
                         "Leave them out to take the checkpoint's")
    return replace(recipe, **{k: recorded[k] for k in RECORDED if k not in given and k in recorded})


def _metadata(path):
    meta, _, reader = read_checkpoint(path)
    reader.close()
    return meta


def epochs_done(path):
    """How many epochs the checkpoint ``path`` is of (its epoch counts from 0)."""
    return _metadata(path)["parsed"].get("epoch", -1) + 1


def nothing_left_to_train(recipe):
    """For a recipe that resumes: None while epochs are left to train, else the line that says none are."""
    done = epochs_done(recipe.resume)
    if done < recipe.epochs:
        return None
    asked = f"of {done}" if done == recipe.epochs else f"and --epochs is {recipe.epochs}"
    return f"nothing left to train: {recipe.resume} is of epoch {done} {asked}; pass --epochs N > {done} to train on"


def report_is_current(recipe):
    """Whether the output folder's metrics.json is the report of the resumed checkpoint: written after it, of as
    many epochs (a run cut short in its evaluation, or by a full disk, has none, or an older one)."""
    report, checkpoint = output_folder(recipe) / "metrics.json", Path(recipe.resume)
    try:
        epochs = json.loads(report.read_text()).get("epochs")
        return epochs == epochs_done(checkpoint) and report.stat().st_mtime >= checkpoint.stat().st_mtime
    except (OSError, ValueError, AttributeError):  # none, or a damaged one: not the report
        return False


def resume_recipe(recipe, given=None, seeds=None):
    """The recipe that continues the run of the checkpoint ``recipe.resume``: its model, its recorded options (see
    merge_resume) and its folder (an ``out`` given branches a copy elsewhere, the run's own folder untouched).
    ``given``: the fields the user asked for (default: those that differ from the defaults); ``seeds``: refused,
    as resuming continues one run. Refuses a checkpoint without optimizer state, and going on in a folder whose
    last.safetensors has later epochs than the checkpoint."""
    path = recipe.resume
    if not Path(path).is_file():
        raise UsageError(f"--resume {path}: no such checkpoint file")
    if seeds:
        raise UsageError("--resume continues one run; --seeds trains several from the start: give one or the other")
    given = given_fields(recipe) if given is None else set(given)
    if recipe.backend == "auto":  # no backend chosen: the checkpoint's is the one to go on with
        given.discard("backend")
    meta = _metadata(path)
    if "model" in given and recipe.model != meta["model_name"]:
        raise model_mismatch(path, meta["model_name"], recipe.model)
    recipe = replace(recipe, model=meta["model_name"])
    if "optimizer" not in meta:
        raise UsageError(f"{path} holds no optimizer state (saved without one, as model.save does): it can "
                         "be evaluated or inspected, not resumed")
    ran = recipe_in_checkpoint(meta, path)
    if ran is None:
        print(f"note: {path} records no training options: the command's own are used", file=sys.stderr)
    else:
        recipe = _go_on_as_recorded(recipe, {**BEFORE_RECORDED, **ran}, given, path)
    if recipe.out is None:  # the run goes on in its own folder
        recipe = replace(recipe, out=str(Path(path).parent))
    _refuse_overwriting_later_epochs(recipe, meta)
    return recipe


def _go_on_as_recorded(recipe, ran, given, path):
    """resume_recipe's merge of the recorded recipe ``ran``, with notes on what may surprise: a checkpoint that
    records no backend (goes on with the command's), a cosine schedule stretched over another number of epochs."""
    recipe = merge_resume(recipe, ran, given, where=path)
    if "backend" not in ran:
        print(f"note: {path} records no backend (an older tinynet wrote it): going on with {backend_name(recipe.backend)}"
              " (--backend chooses another)", file=sys.stderr)
    if recipe.cosine and ran.get("cosine") and recipe.epochs != ran.get("epochs"):
        print(f"note: the cosine schedule now spans {recipe.epochs} epochs, not {ran['epochs']}: the learning "
              "rate follows the new curve from the next epoch", file=sys.stderr)
    return recipe


def _refuse_overwriting_later_epochs(recipe, meta):
    """Going on from an earlier checkpoint in a folder whose last.safetensors went further would overwrite it."""
    last = Path(recipe.out) / "last.safetensors"
    if last.is_file() and not last.samefile(recipe.resume):
        done, here = _metadata(last)["parsed"].get("epoch", -1), meta["parsed"].get("epoch", -1)
        if done > here:
            raise UsageError(f"{last} goes on to epoch {done + 1}, {recipe.resume} is of epoch {here + 1}: going on "
                             f"from it in {recipe.out} would overwrite the later epochs; resume {last}, or give --out "
                             "for a new folder")
