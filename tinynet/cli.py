"""The ``tinynet`` command line (also ``python -m tinynet``)."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from tinynet.data import FASHION_MNIST

DATASET = FASHION_MNIST  # the application's data set: its class names, image size and files come from here
_STARTED = time.perf_counter()  # about when the process started: startup_seconds counts from here


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each option's default (but not None or False: options without a value to show), and keeps the
    lines of a text written on several lines (the examples) as they are."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)

    def _fill_text(self, text, width, indent):
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


EXAMPLES = """examples:
  tinynet train                # cnn_dropout02, 10 epochs, Adam 2e-3, cosine decay, label smoothing 0.1
  tinynet train --epochs 1 --limit-train 1000 --limit-test 500   # a quick smoke test
  tinynet train --model cnn_dropout05 --epochs 20 --out runs/m2
  tinynet train --validation 10000 --select best --patience 3   # the course's 50,000 / 10,000 split
  tinynet train --reduce-lr-on-plateau 2 --validation 10000 --csv-log --progress epoch > train.log
  tinynet train --resume runs/cnn_dropout02/last.safetensors   # go on after an interruption
  tinynet evaluate runs/m2/last.safetensors
  tinynet predict runs/m2/last.safetensors --index 169 --plot p.png
  tinynet gradcheck deep_bn_cnn
"""


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported like every other error: one line, status 2; --help shows defaults."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Help)  # add_parser makes the subcommands' parsers of this class too
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"tinynet: error: {message} (see {self.prog} --help)\n")


def _int_from(low):
    """An argparse type: an integer >= ``low``."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {'a positive integer' if low == 1 else f'an integer >= {low}'}"
                                             f", got {value}")
        return value

    return parse


def _finite_float(text, low, inclusive):
    """An argparse type's body: a finite number above ``low`` (or equal to it when ``inclusive``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and (value >= low if inclusive else value > low)):
        what = f"a finite number >= {low:g}" if inclusive else "a positive finite number"
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def _positive_float(text):
    return _finite_float(text, 0, inclusive=False)


def _nonnegative_float(text):
    return _finite_float(text, 0, inclusive=True)


def _fraction(text):
    """An argparse type: a number in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _check_out_dir(out):
    """The output folder can be made and written: refused now rather than after the first epoch."""
    from tinynet.errors import UsageError

    if out.exists() and not out.is_dir():
        raise UsageError(f"output folder {out} is an existing file; --out needs a folder (for the report, the plots "
                         "and the checkpoint)")
    base = next((p for p in (out, *out.parents) if p.exists()), Path.cwd())
    if not base.is_dir():
        raise UsageError(f"output folder {out} cannot be made: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(f"output folder {out} cannot be written: no write permission in {base}")


def _need_matplotlib(what):
    """Refuse now, not after the work: the plots come last (train's after the whole training)."""
    from tinynet.errors import UsageError
    from tinynet.optional import INSTALL

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(f"{what} needs matplotlib, which could not be imported: {INSTALL['matplotlib']}") from None


def _out_dir(args):
    """train's output folder: --out, or runs/MODEL (with --resume, _take_recipe_from sets --out to the checkpoint's)."""
    return Path(args.out or f"runs/{args.model}")


def _other_model(path, meta, asked):
    from tinynet.errors import UsageError

    return UsageError(f"{path} holds {meta['model_name']}, not {asked}: give one or the other")


def _check_train_args(args):
    """What can be known wrong before the data is loaded and training starts (the numbers' ranges are argparse's)."""
    from tinynet import models
    from tinynet.errors import UsageError

    if args.model not in models.MODELS:
        raise UsageError(f"unknown model {args.model!r}; choose one of: {', '.join(models.MODELS)} (see tinynet models)")
    if args.monitor and args.monitor.startswith("val_") and not args.validation:
        raise UsageError(f"--monitor {args.monitor} needs validation images, but --validation is 0")
    schedules = [flag for flag, given in (("--cosine", args.cosine), ("--lr-decay-steps", args.lr_decay_steps),
                                          ("--reduce-lr-on-plateau", args.reduce_lr_on_plateau is not None)) if given]
    if len(schedules) > 1:
        raise UsageError(f"{' and '.join(schedules)} are each a learning-rate schedule: choose one")
    if args.cosine is None:  # cosine decay is the default schedule, unless another one was asked for
        args.cosine = not schedules
    if args.limit_val and not args.validation:
        raise UsageError("--limit-val needs validation images, but --validation is 0")
    on_monitor = [flag for flag, given in (("--select best", args.select == "best"), ("--patience", args.patience),
                                           ("--reduce-lr-on-plateau", args.reduce_lr_on_plateau)) if given is not None
                  and given is not False]
    if on_monitor and not args.validation and not args.monitor:  # legal, but easy to miss: say it once
        print(f"note: no validation images, so {' and '.join(on_monitor)} use{'s' * (len(on_monitor) == 1)} the "
              "training loss (--validation N holds some out)", file=sys.stderr)
    if not args.no_plots:
        _need_matplotlib("train's plots (--no-plots writes none)")
    _check_out_dir(_out_dir(args))


# The options that make a training run and its report what they are: a checkpoint records them, and --resume takes
# them from it. --epochs may differ (to train on for longer); the others would silently make another run.
RECIPE = ("model", "seed", "epochs", "batch_size", "lr", "augment", "augment_shift", "validation", "monitor",
          "patience", "lr_decay_steps", "weight_decay", "label_smoothing", "cosine", "reduce_lr_on_plateau",
          "limit_train", "limit_val", "limit_test", "select", "csv_log")


def _option(key, value):
    flag = "--" + key.replace("_", "-")
    if value is True or value is False:
        return flag if value else ("--no-cosine" if key == "cosine" else f"no {flag}")
    return f"{flag} {value}" if value is not None else f"no {flag}"


def _take_recipe_from(args):
    """--resume: the model, the options and the output folder of the run being continued, from its checkpoint.

    An option given on the command line that differs from the checkpoint's recipe is refused (it would continue
    another run than the one the checkpoint holds), except --epochs; options left out are taken from it."""
    import json

    from tinynet.checkpoint import CheckpointError, read_checkpoint
    from tinynet.errors import UsageError

    if args.seeds:
        raise UsageError("--resume continues one run; --seeds trains several from the start: give one or the other")
    meta, _, reader = read_checkpoint(args.resume)
    reader.close()
    given = getattr(args, "given", None)
    if given is None:  # not through main(): what differs from the defaults counts as given
        defaults = vars(build_parser().parse_args(["train"]))
        given = {k for k in RECIPE if getattr(args, k) != defaults[k]}
    if "model" in given and args.model != meta["model_name"]:
        raise _other_model(args.resume, meta, args.model)
    args.model = meta["model_name"]
    if "optimizer" not in meta:
        raise UsageError(f"{args.resume} holds no optimizer state (saved without one, as model.save does): it can "
                         "be evaluated or inspected, not resumed")
    try:
        recipe = json.loads(meta.get("extra.recipe", "null"))
    except ValueError as exc:
        raise CheckpointError(f"{args.resume}: its recorded training options are not JSON ({exc})") from None
    if recipe is not None and not isinstance(recipe, dict):
        raise CheckpointError(f"{args.resume}: its recorded training options are a {type(recipe).__name__}, not "
                              "an object")
    if recipe is None:  # written by fit() from Python, or by a tinynet older than the recipe
        print(f"note: {args.resume} records no training options: the command's own are used", file=sys.stderr)
    else:
        clashes = [f"{_option(k, getattr(args, k))} (the checkpoint's run: {_option(k, recipe[k])})"
                   for k in RECIPE if k in given and k != "epochs" and k in recipe and getattr(args, k) != recipe[k]]
        if clashes:
            raise UsageError(f"{args.resume} continues a run trained with other options: {'; '.join(clashes)}. "
                             "Leave them out to take the checkpoint's")
        for k in RECIPE:
            if k not in given and k in recipe:
                setattr(args, k, recipe[k])
        if args.cosine and recipe.get("cosine") and args.epochs != recipe.get("epochs"):
            print(f"note: the cosine schedule now spans {args.epochs} epochs, not {recipe['epochs']}: the learning "
                  "rate follows the new curve from the next epoch", file=sys.stderr)
    if args.out is None:  # the run goes on in its own folder (--out elsewhere branches a copy, this one untouched)
        args.out = str(Path(args.resume).parent)
    last = Path(args.out) / "last.safetensors"
    if last.is_file() and not last.samefile(args.resume):
        later = read_checkpoint(last)
        later[2].close()
        done, here = later[0]["parsed"].get("epoch", -1), meta["parsed"].get("epoch", -1)
        if done > here:
            raise UsageError(f"{last} goes on to epoch {done + 1}, {args.resume} is of epoch {here + 1}: going on "
                             f"from it in {args.out} would overwrite the later epochs; resume {last}, or give --out "
                             "for a new folder")


def cmd_models(args):
    from tinynet import models

    print(f"{'model':<26}{'params':>12}   Keras reference")
    for name, info in models.MODELS.items():
        mark = " (default)" if name == models.DEFAULT else ""
        print(f"{name:<26}{info.params:>12,}   {info.keras_reference}{mark}")
    return 0


def cmd_gradcheck(args):
    from tqdm.auto import tqdm

    import tinynet
    from tinynet import models
    from tinynet.losses import SoftmaxCrossEntropy

    backend = _backend(args.backend)
    model = models.build(args.model, seed=args.seed, dtype="float64")
    rng = np.random.default_rng(args.seed)
    x = rng.random((args.batch, *model.input_shape))
    y = rng.integers(0, model.output_shape[0], args.batch)
    if args.against == "torch":
        from tinynet.interop.torch import compare_gradients

        results = [compare_gradients(model, x, y, dtype) for dtype in args.dtypes.split(",")]
        for r in results:
            print(f"{args.model} against PyTorch's autograd ({r.dtype}, batch {args.batch}, loss included, "
                  f"backend {backend.name})")
            print(r, end="\n\n")
        return 0 if all(r.ok for r in results) else 1
    # the bar on a terminal only, as train's: redrawn frames would fill a log file
    with tqdm(total=len(model.parameters()) + 1, desc=f"gradcheck {args.model}", unit="tensor", leave=False,
              disable=args.quiet or not sys.stderr.isatty()) as bar:

        def progress(done, total, name):
            bar.update(done - bar.n)
            bar.set_postfix_str(name, refresh=True)

        report = tinynet.gradcheck(model, x, y, SoftmaxCrossEntropy(), max_entries=args.entries, seed=args.seed,
                                   progress=progress)
    print(f"gradient check of {args.model} (weights drawn from seed {args.seed}) on the {backend.name} backend:\n"
          f"float64, {args.batch} random images (pixels in [0, 1)) with random labels, through the loss\n")
    print(report.format(entries=args.show))
    return 0 if report.ok else 1


def _backend(name):
    import tinynet
    from tinynet import optional

    if name == "auto":
        name = "numba" if optional.available("numba") else "numpy"
    return tinynet.use_backend(name)  # BackendUnavailable (a RuntimeError) says why


def _load_data(args):
    from tinynet.data import load

    return load(DATASET, getattr(args, "data", None))


def cmd_train(args):
    """Train one model per seed (--seed, or --seeds 0,1,2): a report and metrics.json each, and a summary."""
    import time

    from tinynet.data import to_float, train_val_split
    from tinynet.errors import UsageError
    from tinynet.provenance import git_state

    code = git_state()  # the code this process loaded: a commit made while it trains is not its code
    if args.resume:
        if not Path(args.resume).is_file():
            raise UsageError(f"--resume {args.resume}: no such checkpoint file")
        _take_recipe_from(args)
    _check_train_args(args)
    backend = _backend(args.backend)
    seeds = args.seeds or [args.seed]
    (x_all, y_all), (x_test_u8, y_test) = _load_data(args)
    if args.validation >= len(x_all):
        raise UsageError(f"--validation {args.validation} leaves no training images (there are {len(x_all):,})")
    if args.limit_test:
        x_test_u8, y_test = x_test_u8[: args.limit_test], y_test[: args.limit_test]
    out = _out_dir(args)
    results = []
    for seed in seeds:
        if args.validation:  # the split is drawn from the seed too
            (x_tr_u8, y_tr), (x_val_u8, y_val) = train_val_split(x_all, y_all, args.validation, seed=seed)
        else:
            x_tr_u8, y_tr, x_val_u8, y_val = x_all, y_all, None, None
        if args.limit_train:
            x_tr_u8, y_tr = x_tr_u8[: args.limit_train], y_tr[: args.limit_train]
        if args.limit_val and x_val_u8 is not None:
            x_val_u8, y_val = x_val_u8[: args.limit_val], y_val[: args.limit_val]
        data = (x_tr_u8, y_tr, (to_float(x_val_u8), y_val) if x_val_u8 is not None else None, x_test_u8, y_test)
        run_dir = out if len(seeds) == 1 else out / f"seed{seed}"
        results.append(_train_one(args, backend, seed, data, run_dir, startup=time.perf_counter() - _STARTED,
                                  code=code))
    if len(seeds) > 1:
        _write_summary(args, out, seeds, results, code)
    return 0


def _train_one(args, backend, seed, data, out, startup, code):
    """One seed: build, warm up (compile), train, evaluate, report; returns the metrics written."""
    import json
    import time

    from tinynet import models
    from tinynet.callbacks import (
        CSVLogger,
        EarlyStopping,
        LearningRateScheduler,
        ModelCheckpoint,
        ReduceLROnPlateau,
        cosine_decay,
        exponential_decay,
    )
    from tinynet.checkpoint import load_checkpoint
    from tinynet.data import Augment, to_float
    from tinynet.losses import SoftmaxCrossEntropy
    from tinynet.optim import Adam
    from tinynet.provenance import record
    from tinynet.report import build_report, format_text, write_outputs
    from tinynet.train import fit

    x_tr_u8, y_tr, val, x_test_u8, y_test = data
    x_tr, x_test = to_float(x_tr_u8), to_float(x_test_u8)
    model = models.build(args.model, seed=seed)
    # the report's test loss is plain cross-entropy whatever the training target was, so runs compare
    loss, opt = SoftmaxCrossEntropy(), Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    train_loss = SoftmaxCrossEntropy(label_smoothing=args.label_smoothing)
    best = out / "best.safetensors"
    monitor = args.monitor or ("val_loss" if val else "loss")
    last = out / "last.safetensors"  # every epoch's end, so --resume goes on where an interrupted run stopped
    recorded = {k: getattr(args, k) for k in RECIPE}
    recorded.update(seed=seed, monitor=monitor)  # this seed's, and the metric monitored whether given or not
    ran_with = {"recipe": json.dumps(recorded)}  # for --resume
    callbacks = [ModelCheckpoint(best, monitor=monitor, save_best_only=True, extra=ran_with),
                 ModelCheckpoint(last, monitor=monitor, save_best_only=False, extra=ran_with)]
    if args.reduce_lr_on_plateau is not None:  # first: the checkpoint of an epoch then holds the rate to go on with
        callbacks.insert(0, ReduceLROnPlateau(monitor, patience=args.reduce_lr_on_plateau))
    if args.csv_log:
        callbacks.append(CSVLogger(out / "history.csv"))
    if args.patience is not None:
        callbacks.append(EarlyStopping(monitor, patience=args.patience, restore_best_weights=True))
    if args.lr_decay_steps:
        callbacks.append(LearningRateScheduler(exponential_decay(args.lr, args.lr_decay_steps)))
    if args.cosine:
        callbacks.append(LearningRateScheduler(cosine_decay(args.lr, args.epochs, final_fraction=0.01)))
    augment = Augment(shift=args.augment_shift, flip=True, seed=seed) if args.augment else None
    t0 = time.perf_counter()
    _warm_up(model, x_tr[:2], y_tr[:2])  # compiles every kernel (Numba, CUDA) before the clock for training starts
    jit = time.perf_counter() - t0
    if not args.quiet:
        print(f"training {args.model} (seed {seed}) on {len(x_tr):,} images ({backend.name} backend), "
              f"validating on {len(val[0]) if val else 0:,}, testing on {len(x_test):,}"
              + (f", augmented ({augment})" if augment else ""))
    t0 = time.perf_counter()
    # A diverging run overflows in NumPy long before fit stops it with a DivergenceError naming the epoch and
    # step: that error is the one line to show, not NumPy's overflow warnings ahead of it.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        history = fit(model, train_loss, opt, x_tr, y_tr, epochs=args.epochs, batch_size=args.batch_size,
                      validation_data=val, seed=seed, callbacks=callbacks,
                      verbose="quiet" if args.quiet else args.progress,
                      resume_from=args.resume, augment=augment)
    seconds = time.perf_counter() - t0
    meta = {}
    if args.select == "best" and best.exists():
        meta = load_checkpoint(best, model)
    chosen = meta["parsed"].get("epoch", len(history) - 1) + 1 if meta else len(history)
    t0 = time.perf_counter()
    report = build_report(model, loss, x_test, y_test, x_tr, y_tr, class_names=DATASET.class_names)
    evaluate_seconds = time.perf_counter() - t0
    text = format_text(report)
    recipe = {k: v for k, v in vars(args).items() if k not in ("func", "seeds", "given")}
    recipe.update(seed=seed, backend=backend.name)
    info = dict(model=args.model, backend=backend.name, epochs=len(history), batch_size=args.batch_size, lr=args.lr,
                seed=seed, train_images=len(x_tr), validation_images=len(val[0]) if val else 0,
                evaluated_epoch=chosen, selection=args.select, monitor=monitor, dataset=DATASET.name,
                startup_seconds=round(startup, 2), compile_seconds=round(jit, 2), train_seconds=round(seconds, 1),
                evaluate_seconds=round(evaluate_seconds, 1), run=record(recipe, git=code))
    files = write_outputs(out, report, history.as_dict(), info, x_test_u8, y_test, x_tr_u8, y_tr, plots=not args.no_plots)
    print(f"\n{args.model} (seed {seed}): test accuracy {report['test']['accuracy']:.4f}, test loss "
          f"{report['test']['loss']:.4f} (weights of epoch {chosen}, {seconds:.0f} s of training on {backend.name})\n")
    print(text)
    print("wrote " + ", ".join(str(f) for f in files + [p for p in (best, last) if p.exists()]))
    return {"seed": seed, "test_accuracy": report["test"]["accuracy"], "test_loss": report["test"]["loss"],
            "metrics": str(out / "metrics.json"), "train_seconds": round(seconds, 1)}


def _warm_up(model, x, y):
    """One training step on a copy of the model: Numba and CUDA compile their kernels now, not in the first epoch."""
    import copy

    from tinynet.backend import get_backend
    from tinynet.losses import SoftmaxCrossEntropy
    from tinynet.optim import Adam
    from tinynet.train import train_step

    twin = copy.deepcopy(model)
    b = get_backend(twin.backend)
    train_step(twin, SoftmaxCrossEntropy(), Adam(twin.parameters()), b.asarray(x), b.asarray(np.asarray(y)))
    twin.predict(x)
    b.synchronize()


def _write_summary(args, out, seeds, results, code):
    from tinynet.provenance import record, strict_json

    acc = np.array([r["test_accuracy"] for r in results])
    loss = np.array([r["test_loss"] for r in results])
    summary = {"model": args.model, "seeds": seeds, "runs": results,
               "test_accuracy": {"mean": float(acc.mean()), "std": float(acc.std(ddof=1)), "min": float(acc.min()),
                                 "max": float(acc.max())},
               "test_loss": {"mean": float(loss.mean()), "std": float(loss.std(ddof=1))},
               "run": record({k: v for k, v in vars(args).items() if k not in ("func", "given")}, git=code)}
    path = out / "summary.json"
    path.write_text(strict_json(summary, indent=2))
    per_seed = ", ".join(f"seed {r['seed']}: {r['test_accuracy']:.2%}" for r in results)
    print(f"\n{args.model} over {len(seeds)} seeds: test accuracy {acc.mean():.2%} ± {acc.std(ddof=1):.2%} "
          f"(mean ± standard deviation; {per_seed}); wrote {path}")


def _model_from_checkpoint(path, backend):
    """The checkpoint's model (any Sequential of tinynet's layers, or a zoo model by name), checked to take the
    data set's images and give one output per class."""
    from tinynet.errors import UsageError
    from tinynet.loading import load_model

    model, meta = load_model(path, backend.name, with_meta=True)
    image, classes = (1, *DATASET.image_shape), (DATASET.num_classes,)
    if model.input_shape != image or model.output_shape != classes:
        raise UsageError(f"{path}: model {model.name!r} takes inputs of shape {model.input_shape} and gives "
                         f"{model.output_shape}; {DATASET.name} needs {image} and {classes}")
    return model, meta


def cmd_export(args):
    from tinynet.interop.onnx import export
    from tinynet.loading import load_model

    # any architecture exports, not only models shaped for Fashion-MNIST
    model = load_model(args.checkpoint, _backend(args.backend).name)
    print(f"wrote {export(model, args.output)} ({model.name}: inference graph, Dropout left out, checked "
          "by onnx.checker)")
    return 0


def cmd_evaluate(args):
    from tinynet.data import to_float
    from tinynet.losses import SoftmaxCrossEntropy
    from tinynet.report import build_report, format_text

    backend = _backend(args.backend)
    model, meta = _model_from_checkpoint(args.checkpoint, backend)
    _, (x_test, y_test) = _load_data(args)
    report = build_report(model, SoftmaxCrossEntropy(), to_float(x_test).astype(model.dtype), y_test,
                          class_names=DATASET.class_names)
    report.pop("_test_logits")
    print(f"{meta['model_name']} from {args.checkpoint} (epoch {meta['parsed'].get('epoch', -1) + 1})")
    print(format_text(report))
    return 0


def cmd_predict(args):
    from tinynet.data import to_float
    from tinynet.errors import UsageError
    from tinynet.images import read_image

    if args.image is None and (args.invert or args.as_is):
        raise UsageError("--invert and --as-is apply to an --image file")
    if args.image is not None and args.index is not None:
        raise UsageError("give --index (a test image) or --image (a file), not both")
    if args.plot:  # refused now, not after the prediction was made
        _need_matplotlib("--plot")
        from tinynet.plots import file_formats

        ending = Path(args.plot).suffix.lower().lstrip(".")
        if ending not in file_formats():
            raise UsageError(f"--plot {args.plot}: matplotlib writes {', '.join(file_formats())} files, not "
                             f"{ending or 'a name without an ending'}")
    backend = _backend(args.backend)
    true = u8 = None
    if args.image is not None:  # before the model: a bad image is refused at once
        u8 = read_image(args.image, invert=args.invert, check_background=not args.as_is, shape=DATASET.image_shape)
    model, _ = _model_from_checkpoint(args.checkpoint, backend)
    if u8 is None:
        index = args.index or 0
        _, (x_test, y_test) = _load_data(args)
        if index >= len(x_test):
            raise UsageError(f"--index must be in [0, {len(x_test) - 1}], got {index}")
        u8, true = x_test[index], int(y_test[index])
    probs = model.predict_proba(to_float(u8[None]).astype(model.dtype))[0]
    pred = int(probs.argmax())
    written = None
    if args.plot:  # files first: a reader that stops early (| head -3) must not cost the plot
        from tinynet.plots import prediction_bars

        source = f"test image {args.index or 0}" if args.image is None else Path(args.image).name
        written = prediction_bars(u8, probs, DATASET.class_names, args.plot, true, source)
    names = DATASET.class_names
    print(f"predicted: {names[pred]} ({probs[pred]:.2%})" + (f"   true: {names[true]}" if true is not None else ""))
    for i in np.argsort(probs)[::-1]:
        print(f"  {names[i]:<12} {probs[i]:7.2%}  {'#' * int(round(probs[i] * 40))}")
    if written:
        print(f"wrote {written}")
    return 0


def cmd_data(args):
    from tinynet.data import find_data_dir, load

    if args.plots:
        _need_matplotlib("--plots")
    d = find_data_dir(args.data, dataset=DATASET)
    (xtr, ytr), (xte, yte) = load(DATASET, args.data)
    print(f"{DATASET.name} in {d}: all {len(DATASET.files)} files present, MD5 of the content verified")
    for name, x, y in (("train", xtr, ytr), ("test", xte, yte)):
        counts = np.bincount(y, minlength=10)
        print(f"  {name}: images {x.shape} {x.dtype}, values {x.min()}..{x.max()}, mean {x.mean() / 255:.4f} "
              f"(scaled), missing values 0; labels {y.shape}, per class {counts.min()}..{counts.max()}")
    print("  classes: " + ", ".join(f"{i} {n}" for i, n in enumerate(DATASET.class_names)))
    if args.plots:
        from tinynet.plots import dataset_statistics, sample_grid

        print("wrote", sample_grid(xtr, ytr, DATASET.class_names, Path(args.plots) / "samples.png", "training"),
              dataset_statistics(xtr, ytr, DATASET.class_names, Path(args.plots) / "dataset.png", "training"))
    return 0


def cmd_inspect(args):
    """One batch through a fresh model or a checkpoint's: print tinynet.inspection's tables, legend and notes."""
    from tinynet import models
    from tinynet.data import DataError, load, to_float
    from tinynet.errors import UsageError
    from tinynet.inspection import inspect_model

    backend = _backend(args.backend)
    if args.checkpoint:
        model, meta = _model_from_checkpoint(args.checkpoint, backend)
        if args.model not in (None, meta["model_name"]):
            raise _other_model(args.checkpoint, meta, args.model)
        what = f"{meta['model_name']} from {args.checkpoint} (epoch {meta['parsed'].get('epoch', -1) + 1})"
    else:
        name = args.model or models.DEFAULT
        if name not in models.MODELS:
            raise UsageError(f"unknown model {name!r}; choose one of: {', '.join(models.MODELS)} (see tinynet models)")
        model, what = models.build(name, seed=args.seed), f"a fresh {name} (weights drawn from seed {args.seed})"
    rng = np.random.default_rng(args.seed)
    try:
        (x_u8, y), _ = load(DATASET, download=False)
        idx = np.sort(rng.choice(len(x_u8), args.batch, replace=False))
        x, y, source = to_float(x_u8[idx]).astype(model.dtype), y[idx], f"{DATASET.name} training images"
    except DataError:  # no data here: random pixels still show the shapes and the gradient flow
        x = rng.random((args.batch, *model.input_shape)).astype(model.dtype)
        y, source = rng.integers(0, model.output_shape[0], args.batch), "random images (no data set found)"
    print(f"one batch of {args.batch} {source} through {what},\nin training mode: Dropout drops, BatchNorm uses "
          "the batch's own mean and variance\n")
    print(inspect_model(model, x, y))
    return 0


def _seed_list(text):
    try:
        seeds = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers separated by commas, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must be distinct integers >= 0, got {text!r}")
    return seeds


def build_parser():
    import tinynet

    p = _Parser(prog="tinynet", description="tinynet: hand-written backprop on NumPy / Numba / CuPy", epilog=EXAMPLES)
    p.add_argument("--version", action="version", version=f"tinynet {tinynet.__version__}")
    sub = p.subcommands = p.add_subparsers(dest="command", required=True)

    from tinynet.backend import NAMES

    on_backend = argparse.ArgumentParser(add_help=False)  # options several commands share, written once
    on_backend.add_argument("--backend", default="auto", choices=("auto", *NAMES),
                            help="array backend; auto: numba when it is installed, else numpy")
    with_data = argparse.ArgumentParser(add_help=False)
    with_data.add_argument("--data", help="folder with the four .gz files (default: $TINYNET_DATA when set, and "
                           "only there; otherwise ~/.cache/tinynet/fashion-mnist, then /usr/share/datasets/fashion-mnist,"
                           " else downloaded into the cache)")

    s = sub.add_parser("train", parents=[on_backend, with_data], epilog=EXAMPLES,
                       help="train a model on Fashion-MNIST, then print and save the report")
    s.add_argument("--model", default="cnn_dropout02", help="one of the models of tinynet models")
    s.add_argument("--epochs", type=_int_from(1), default=10, help="epochs to train")
    s.add_argument("--batch-size", type=_int_from(1), default=32, help="images per step")
    s.add_argument("--lr", type=_positive_float, default=2e-3, help="Adam's learning rate")
    s.add_argument("--seed", type=_int_from(0), default=0,
                   help="seed of the weights, the validation split, the shuffling and dropout")
    s.add_argument("--seeds", type=_seed_list, help="several seeds, e.g. 0,1,2: one run each (in OUT/seedN), and "
                   "OUT/summary.json with the mean and standard deviation")
    s.add_argument("--augment", action="store_true",
                   help="random shifts (zero padding) and horizontal flips of the training images")
    s.add_argument("--augment-shift", type=_int_from(0), default=2, help="largest shift in pixels, with --augment")
    s.add_argument("--out", help="output folder (default runs/MODEL; with --resume, the checkpoint's folder)")
    s.add_argument("--validation", type=_int_from(0), default=0,
                   help="images held out of training to validate on (0: none, train on all 60,000; the course held "
                   "out 10000)")
    s.add_argument("--monitor", choices=["loss", "accuracy", "val_loss", "val_accuracy"],
                   help="metric for the best checkpoint (default val_loss, or loss)")
    s.add_argument("--select", choices=["best", "last"], default="last",
                   help="weights to evaluate: the last epoch's, or the best checkpoint's by --monitor")
    s.add_argument("--patience", type=_int_from(0), help="early stopping patience (restores the best weights)")
    s.add_argument("--lr-decay-steps", type=_positive_float, help="lr * 0.1 ** (epoch / steps), as in the course")
    s.add_argument("--weight-decay", type=_nonnegative_float, default=0.0,
                   help="AdamW's decoupled weight decay: weights shrink by lr * wd per step (0: plain Adam)")
    s.add_argument("--label-smoothing", type=_fraction, default=0.1,
                   help="train towards (1 - e) * onehot + e / 10 (Keras's label_smoothing; 0: plain cross-entropy); "
                   "the report's loss stays plain cross-entropy")
    s.add_argument("--cosine", action=argparse.BooleanOptionalAction,
                   help="cosine decay of the learning rate, to 1%% of --lr at the end (the default, unless another "
                   "schedule is given; --no-cosine: a constant rate)")
    s.add_argument("--reduce-lr-on-plateau", type=_int_from(0), metavar="PATIENCE",
                   help="divide the learning rate by 10 after PATIENCE epochs without improvement of the --monitor "
                   "metric (Keras's ReduceLROnPlateau)")
    s.add_argument("--csv-log", action="store_true",
                   help="write OUT/history.csv, one row per epoch as it ends (appended to on --resume)")
    s.add_argument("--resume", help="continue the run of this checkpoint (OUT/last.safetensors is written at the end "
                   "of every epoch), in its folder, with its model and options (only --epochs may change)")
    s.add_argument("--limit-train", type=_int_from(1), help="use only the first N training images")
    s.add_argument("--limit-val", type=_int_from(1), help="use only the first N validation images")
    s.add_argument("--limit-test", type=_int_from(1), help="use only the first N test images")
    s.add_argument("--no-plots", action="store_true", help="write no plots")
    s.add_argument("--progress", choices=["auto", "bar", "epoch"], default="auto",
                   help="a progress bar, or one line per epoch; auto: the bar on a terminal, lines otherwise")
    s.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", parents=[on_backend, with_data], help="evaluate a checkpoint on the test set")
    s.add_argument("checkpoint")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("predict", parents=[on_backend, with_data],
                       help="classify one test image (--index) or a 28x28 image file (--image)",
                       description="Classify one test image (--index) or a 28x28 image file (--image). The models "
                       "learnt light garments on a black background: a dark garment on a light one is refused "
                       "unless --invert flips it or --as-is is given.")
    s.add_argument("checkpoint")
    s.add_argument("--index", type=_int_from(0), help="test image to classify (default 0)")
    s.add_argument("--image", help="a 28x28 image file: a light garment on black, as in Fashion-MNIST")
    s.add_argument("--invert", action="store_true", help="flip the --image (255 - x): for a dark garment on light")
    s.add_argument("--as-is", action="store_true",
                   help="classify the --image even if it looks dark on light (no background check)")
    s.add_argument("--plot", help="write the image and its probability bars to this PNG")
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("data", parents=[with_data], help="find (or fetch), verify and describe Fashion-MNIST")
    s.add_argument("--plots", help="also write samples.png and dataset.png into this folder")
    s.set_defaults(func=cmd_data)

    s = sub.add_parser("inspect", parents=[on_backend],
                       help="one batch through a model: shapes, activation and gradient statistics")
    s.add_argument("model", nargs="?", help="a model of tinynet models (default cnn_dropout02, or the checkpoint's)")
    s.add_argument("--checkpoint", help="inspect this trained checkpoint instead of a fresh model")
    s.add_argument("--batch", type=_int_from(1), default=32)
    s.add_argument("--seed", type=_int_from(0), default=0, help="draws the batch (and a fresh model's weights)")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("export", parents=[on_backend], help="write a checkpoint's inference graph to an ONNX file")
    s.add_argument("checkpoint")
    s.add_argument("output", help="the .onnx file to write")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("models", help="list the models with parameter counts")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("gradcheck", parents=[on_backend], help="finite-difference check of a whole model, per tensor")
    s.add_argument("model", nargs="?", default="cnn_dropout02")
    s.add_argument("--batch", type=_int_from(1), default=4,
                   help="images (BatchNorm over 2 samples would make most gradients 0)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--entries", type=_int_from(1), default=10, help="entries checked per tensor")
    s.add_argument("--against", choices=("differences", "torch"), default="differences",
                   help="the oracle: finite differences, or PyTorch's autograd on the same model and weights")
    s.add_argument("--dtypes", default="float64,float32", help="with --against torch: the dtypes to compare in")
    s.add_argument("--show", type=_int_from(0), default=3,
                   help="checked entries per tensor printed with analytic beside numeric (0: none)")
    s.add_argument("--seed", type=_int_from(0), default=0)
    s.set_defaults(func=cmd_gradcheck)
    return p


def _one_line(exc):
    """The message printed for an expected error (see tinynet/errors.py)."""
    msg = str(exc).strip()
    if isinstance(exc, MemoryError) and "memory" not in msg.lower():
        return f"out of memory: {msg}" if msg else "out of memory"
    return msg or type(exc).__name__


def _stdout_to_devnull():
    """Point stdout at os.devnull, so that Python's final flush of what is left cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (captured in-process)
        pass


def _given_options(argv):
    """The train options written on the command line (not left to their defaults): the same parser, with every
    default suppressed, keeps only those."""
    parser = build_parser()
    train = parser.subcommands.choices["train"]
    for action in train._actions:
        action.default = argparse.SUPPRESS
    given = vars(parser.parse_args(argv))
    return set(given) - {"command", "func"}


def _resume_hint(args, started):
    """After Ctrl-C in train: the checkpoint this run wrote last, and the command that goes on from it."""
    if args.command != "train":
        return ""
    out = _out_dir(args)
    written = [p for p in (out / "last.safetensors", *out.glob("seed*/last.safetensors"))
               if p.is_file() and p.stat().st_mtime >= started - 2]  # this run's (2 s: coarse file clocks), not older
    if not written:
        return " (before the end of the first epoch: no checkpoint to resume)"
    newest = max(written, key=lambda p: p.stat().st_mtime)
    return f"; to go on from its last finished epoch: tinynet train --resume {newest}"


def main(argv=None):
    """Run one command; returns its exit status. Every error tinynet raises on purpose
    (tinynet.errors.EXPECTED) ends in one line on stderr and status 2, Ctrl-C in one line and 130."""
    from tinynet.errors import EXPECTED

    args = build_parser().parse_args(argv)
    if args.command == "train":
        args.given = _given_options(argv)
    started, status = time.time(), None
    try:
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not in an "Exception ignored" message at exit
        return status
    except BrokenPipeError:  # stdout is a pipe whose reader stopped (| head): files come first, so exit quietly
        _stdout_to_devnull()
        if args.command == "train" and status is None:  # but a training cut short is not a success
            print("tinynet: stopped: the output pipe closed before training ended" + _resume_hint(args, started),
                  file=sys.stderr)
            return 141  # as a shell reports a process killed by SIGPIPE
        return 0 if status is None else status
    except KeyboardInterrupt:
        print("tinynet: interrupted" + _resume_hint(args, started), file=sys.stderr)
        return 130
    except EXPECTED as exc:
        print(f"tinynet: error: {_one_line(exc)}", file=sys.stderr)
        return 2
