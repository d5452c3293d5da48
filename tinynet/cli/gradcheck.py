"""``tinynet gradcheck``: backprop against finite differences (or PyTorch's autograd) for a model of the zoo, or for
a layer or model of your own: ``tinynet gradcheck path/to/file.py:NAME``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from tinynet.errors import UsageError
from tinynet.experiment import pick_backend, require, unknown_model


def cmd_gradcheck(args):
    import tinynet

    if args.against == "torch":  # refused before any work
        require("torch", "--against torch")
    backend = pick_backend(args.backend)
    target, what = _target(args)
    if args.against == "torch":
        return _against_torch(args, target, what, backend)
    rng = np.random.default_rng(args.seed)
    if isinstance(target, tinynet.Sequential):
        from tinynet.losses import SoftmaxCrossEntropy

        x = rng.random((args.batch, *target.input_shape))
        y = rng.integers(0, target.output_shape[0], args.batch)
        loss = SoftmaxCrossEntropy.for_model(target)
        report = _check(args, target, what, lambda progress: tinynet.gradcheck(
            target, x, y, loss, max_entries=args.entries, seed=args.seed, progress=progress))
        drawn = f"{args.batch} random images (pixels in [0, 1)) with random labels, through the loss"
    else:
        x = rng.standard_normal((args.batch, *_input_shape(args, what)))
        report = _check(args, target, what, lambda progress: tinynet.gradcheck(
            target, x, max_entries=args.entries, seed=args.seed, progress=progress))
        drawn = f"a random input of shape {x.shape} (normal), L = sum(g * output) for a random g"
    print(f"gradient check of {what} on the {backend.name} backend:\nfloat64, {drawn}\n")
    print(report.format(entries=args.show))
    return 0 if report.ok else 1


def _check(args, target, what, run):
    """``run(progress)``, with a progress bar on a terminal only (redrawn frames would fill a log file)."""
    from tqdm.auto import tqdm

    tensors = len(target.parameters()) if hasattr(target, "parameters") else len(target.params)
    with tqdm(total=tensors + 2, desc=f"gradcheck {what}", unit="tensor", leave=False,
              disable=args.quiet or not sys.stderr.isatty()) as bar:

        def progress(done, total, name):
            bar.update(done - bar.n)
            bar.set_postfix_str(name, refresh=True)

        return run(progress)


def _target(args):
    """(the Sequential or Layer to check, how to name it): a zoo model built in float64, or FILE.py:NAME."""
    from tinynet import models

    if ":" in args.model and args.model.rsplit(":", 1)[0].endswith(".py"):
        return load_from_file(args.model), args.model
    if args.model not in models.MODELS:
        raise unknown_model(args.model, also=" (nor FILE.py:NAME, a layer or model of your own)")
    return models.build(args.model, seed=args.seed, dtype="float64"), f"{args.model} (weights drawn from seed {args.seed})"


def load_from_file(spec):
    """The Layer or Sequential ``NAME`` of ``FILE.py:NAME`` gives: the object itself, a Layer class (called with no
    arguments) or a function returning one (called with none)."""
    from tinynet import Sequential
    from tinynet.layers import Layer

    path, name = spec.rsplit(":", 1)
    module = _import_file(Path(path))
    if not hasattr(module, name):
        found = [k for k, v in vars(module).items() if not k.startswith("_") and (callable(v) or isinstance(v, Layer))]
        raise UsageError(f"{path} has no {name!r}; it defines: {', '.join(found) or 'nothing callable'}")
    made = getattr(module, name)
    if not isinstance(made, (Layer, Sequential)) and callable(made):
        made = made()
    if not isinstance(made, (Layer, Sequential)):
        raise UsageError(f"{spec} gives a {type(made).__name__}, not a tinynet Layer or Sequential (a Layer class or "
                         "a function returning a layer or a model works too)")
    return made


def _import_file(path):
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(f"tinynet_user_{abs(hash(str(path.resolve())))}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))  # its own imports of modules beside it work, as in `python FILE`
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's file: say where, in one line
        raise UsageError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(str(path.resolve().parent))
    return module


def _input_shape(args, what):
    if not args.input_shape:
        raise UsageError(f"{what} is a layer: say the shape of one sample with --input-shape, e.g. --input-shape 3,8,8")
    return args.input_shape


def _against_torch(args, target, what, backend):
    from tinynet import Sequential
    from tinynet.interop.torch import compare_gradients

    if not isinstance(target, Sequential) or ":" in what:
        raise UsageError("--against torch compares the models of the zoo (PyTorch has no twin of a layer of your own)")
    rng = np.random.default_rng(args.seed)
    x = rng.random((args.batch, *target.input_shape))
    y = rng.integers(0, target.output_shape[0], args.batch)
    results = [compare_gradients(target, x, y, dtype) for dtype in args.dtypes.split(",")]
    for r in results:
        print(f"{args.model} against PyTorch's autograd ({r.dtype}, batch {args.batch}, loss included, "
              f"backend {backend.name})")
        print(r, end="\n\n")
    return 0 if all(r.ok for r in results) else 1
