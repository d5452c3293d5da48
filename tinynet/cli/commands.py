"""The ``tinynet`` commands other than train and gradcheck: evaluate, predict, inspect, data, export, summary and
models. Each takes the parsed options and returns the exit status."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinynet.errors import UsageError
from tinynet.experiment import (
    DATASET,
    load_data,
    model_mismatch,
    pick_backend,
    recipe_in_checkpoint,
    require,
    require_matplotlib,
    unknown_model,
)


def cmd_models(args):
    from tinynet import models

    print(f"{'model':<26}{'params':>12}   Keras reference")
    for name, info in models.MODELS.items():
        mark = " (default)" if name == models.DEFAULT else ""
        print(f"{name:<26}{info.params:>12,}   {info.keras_reference}{mark}")
    return 0


def checkpoint_file(path):
    """The checkpoint ``path`` names: the file itself, or a folder's last.safetensors. A folder without one (a
    folder of seeds, say) is refused in one line listing the checkpoints it holds (last.safetensors first)."""
    path = Path(path)
    if not path.is_dir():
        return path
    if (path / "last.safetensors").is_file():
        return path / "last.safetensors"
    held = sorted([*path.glob("*.safetensors"), *path.glob("*/*.safetensors")],
                  key=lambda p: (p.name != "last.safetensors", str(p)))
    if not held:
        raise UsageError(f"{path} is a folder holding no checkpoint (no .safetensors file in it or in its subfolders)")
    shown = ", ".join(map(str, held[:6])) + (f" and {len(held) - 6} more" if len(held) > 6 else "")
    raise UsageError(f"{path} is a folder without a last.safetensors: name one of the checkpoints it holds: {shown}")


def _load_data(args):
    """The data set, from --data or found: one function, so that tests can check refusals come before it."""
    return load_data(getattr(args, "data", None))


def _model_from_checkpoint(path, backend):
    """The checkpoint's model (any Sequential of tinynet's layers, or a zoo model by name), checked to take the
    data set's images and give one output per class. ``path``: a file (see checkpoint_file for a folder)."""
    from tinynet.loading import load_model

    model, meta = load_model(path, backend.name, with_meta=True)
    image, classes = (1, *DATASET.image_shape), (DATASET.num_classes,)
    if model.input_shape != image or model.output_shape != classes:
        raise UsageError(f"{path}: model {model.name!r} takes inputs of shape {model.input_shape} and gives "
                         f"{model.output_shape}; {DATASET.name} needs {image} and {classes}")
    return model, meta


def cmd_export(args):
    if Path(args.output).suffix.lower() != ".onnx":  # it writes ONNX whatever the name: a name that says so
        raise UsageError(f"tinynet export writes an ONNX file: name it NAME.onnx, not {args.output}")
    require("onnx", "tinynet export")
    from tinynet.interop.onnx import export
    from tinynet.loading import load_model

    checkpoint = checkpoint_file(args.checkpoint)
    # any architecture exports, not only models shaped for Fashion-MNIST
    model = load_model(checkpoint, pick_backend(args.backend).name)
    print(f"wrote {export(model, args.output)} ({model.name} from {checkpoint}: inference graph, Dropout left out, "
          "checked by onnx.checker)")
    return 0


def cmd_summary(args):
    """Keras's summary table of a model of the zoo, or of a checkpoint's model (a file, or a folder's
    last.safetensors): any architecture, as export takes."""
    from tinynet import models
    from tinynet.loading import load_model

    if args.model in models.MODELS:
        model = models.build(args.model)
    elif Path(args.model).exists():
        model = load_model(checkpoint_file(args.model), "numpy")  # nothing is computed: the host's backend will do
    else:
        raise unknown_model(args.model, also=" (nor a checkpoint file or folder)")
    model.summary()
    return 0


def cmd_evaluate(args):
    from tinynet.data import to_float
    from tinynet.losses import SoftmaxCrossEntropy
    from tinynet.report import build_report, format_text

    checkpoint = checkpoint_file(args.checkpoint)
    backend = pick_backend(args.backend)
    model, meta = _model_from_checkpoint(checkpoint, backend)
    _, (x_test, y_test) = _load_data(args)
    report = build_report(model, SoftmaxCrossEntropy.for_model(model), to_float(x_test).astype(model.dtype), y_test,
                          class_names=DATASET.class_names)
    report.pop("_test_logits")
    print(f"{meta['model_name']} from {checkpoint} (epoch {meta['parsed'].get('epoch', -1) + 1}), on all "
          f"{len(y_test):,} test images" + _limited_note(meta, checkpoint))
    print(format_text(report))
    return 0


def _limited_note(meta, where):
    """Why evaluate's figures may differ from the run's own report: the run evaluated --limit-test images only."""
    limit = (recipe_in_checkpoint(meta, where) or {}).get("limit_test")
    return f" (the run's own report used the first {limit:,}: --limit-test)" if limit else ""


def cmd_predict(args):
    from tinynet.data import to_float
    from tinynet.images import read_image

    if args.image is None and (args.invert or args.as_is):
        raise UsageError("--invert and --as-is apply to an --image file")
    if args.image is not None and args.index is not None:
        raise UsageError("give --index (a test image) or --image (a file), not both")
    checkpoint = checkpoint_file(args.checkpoint)
    if args.plot:  # refused now, not after the prediction was made
        require_matplotlib("--plot")
        from tinynet.plots import file_formats

        ending = Path(args.plot).suffix.lower().lstrip(".")
        if ending not in file_formats():
            raise UsageError(f"--plot {args.plot}: matplotlib writes {', '.join(file_formats())} files, not "
                             f"{ending or 'a name without an ending'}")
    backend = pick_backend(args.backend)
    true = u8 = None
    if args.image is not None:  # before the model: a bad image is refused at once
        u8 = read_image(args.image, invert=args.invert, check_background=not args.as_is, shape=DATASET.image_shape)
    model, meta = _model_from_checkpoint(checkpoint, backend)
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
        smoothing = (recipe_in_checkpoint(meta, checkpoint) or {}).get("label_smoothing", 0.0)  # why a sure bar reads 91%
        written = prediction_bars(u8, probs, DATASET.class_names, args.plot, true, source, label_smoothing=smoothing)
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
        require_matplotlib("--plots")
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
    from tinynet.inspection import inspect_model

    backend = pick_backend(args.backend)
    if args.checkpoint:
        checkpoint = checkpoint_file(args.checkpoint)
        model, meta = _model_from_checkpoint(checkpoint, backend)
        if args.model not in (None, meta["model_name"]):
            raise model_mismatch(checkpoint, meta["model_name"], args.model)
        what = f"{meta['model_name']} from {checkpoint} (epoch {meta['parsed'].get('epoch', -1) + 1})"
    else:
        name = args.model or models.DEFAULT
        if name not in models.MODELS:
            raise unknown_model(name)
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


