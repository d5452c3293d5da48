"""The ``tinynet`` command line's parser: its commands, their options, defaults and help, and which train options a
command line gave."""

from __future__ import annotations

import argparse
import math

from tinynet.experiment import Recipe


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
  tinynet evaluate runs/m2                      # a folder: its last.safetensors
  tinynet predict runs/m2/last.safetensors --index 169 --plot p.png
  tinynet export runs/m2 m2.onnx                # the inference graph, for ONNX Runtime
  tinynet summary deep_bn_cnn                   # Keras's table: layers, output shapes, parameters
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


def _seed_list(text):
    try:
        seeds = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers separated by commas, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must be distinct integers >= 0, got {text!r}")
    return seeds


def build_parser(defaults=True):
    """The parser of every command. ``defaults=False``: train's options (and the --backend and --data it shares)
    get no default, so that a namespace parsed with it holds only the options written (see given_options)."""
    import tinynet
    from tinynet.backend import NAMES

    d = Recipe()  # the defaults are the library's own, so that the command line and Python train alike

    def default(value):
        return value if defaults else argparse.SUPPRESS

    p = _Parser(prog="tinynet", description="tinynet: hand-written backprop on NumPy / Numba / CuPy", epilog=EXAMPLES)
    p.add_argument("--version", action="version", version=f"tinynet {tinynet.__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    on_backend = argparse.ArgumentParser(add_help=False)  # options several commands share, written once
    on_backend.add_argument("--backend", default=default(d.backend), choices=("auto", *NAMES),
                            help="array backend; auto: numba when it is installed, else numpy")
    with_data = argparse.ArgumentParser(add_help=False)
    with_data.add_argument("--data", default=default(d.data), help="folder with the four .gz files (default: "
                           "$TINYNET_DATA when set, and only there; otherwise ~/.cache/tinynet/fashion-mnist, then "
                           "/usr/share/datasets/fashion-mnist, else downloaded into the cache)")
    train = sub.add_parser("train", parents=[on_backend, with_data], epilog=EXAMPLES,
                           help="train a model on Fashion-MNIST, then print and save the report")
    _add_recipe_options(train, d, default)
    _add_run_options(train, d, default)
    _add_evaluation_commands(sub, on_backend, with_data)
    _add_model_commands(sub, on_backend)
    return p


def _add_recipe_options(s, d, default):
    """train's options that make the run what it is (a checkpoint records them: experiment.RECORDED)."""
    s.add_argument("--model", default=default(d.model), help="one of the models of tinynet models")
    s.add_argument("--epochs", type=_int_from(1), default=default(d.epochs), help="epochs to train")
    s.add_argument("--batch-size", type=_int_from(1), default=default(d.batch_size), help="images per step")
    s.add_argument("--lr", type=_positive_float, default=default(d.lr), help="the learning rate")
    s.add_argument("--optimizer", choices=("adam", "sgd"), default=default(d.optimizer),
                   help="Adam (AdamW with --weight-decay), or SGD with --momentum")
    s.add_argument("--momentum", type=_fraction, default=default(d.momentum),
                   help="SGD's momentum, with --optimizer sgd (default 0.9)")
    s.add_argument("--seed", type=_int_from(0), default=default(d.seed),
                   help="seed of the weights, the validation split, the shuffling and dropout")
    s.add_argument("--seeds", type=_seed_list, default=default(None), help="several seeds, e.g. 0,1,2: one run each "
                   "(in OUT/seedN), and OUT/summary.json with the mean and standard deviation")
    s.add_argument("--augment", action="store_true", default=default(d.augment),
                   help="random shifts (zero padding) and horizontal flips of the training images")
    s.add_argument("--augment-shift", type=_int_from(0), default=default(d.augment_shift),
                   help="largest shift in pixels, with --augment")
    s.add_argument("--out", default=default(d.out),
                   help="output folder (default runs/MODEL, or the next free runs/MODEL-2, -3... once that holds a run; "
                   "with --resume, the checkpoint's folder); one that holds a run is refused without --overwrite")
    s.add_argument("--overwrite", action="store_true", default=default(d.overwrite),
                   help="write into an --out that already holds a run")
    s.add_argument("--validation", type=_int_from(0), default=default(d.validation),
                   help="images held out of training to validate on (0: none, train on all 60,000; the course held "
                   "out 10000)")
    s.add_argument("--monitor", choices=["loss", "accuracy", "val_loss", "val_accuracy"], default=default(d.monitor),
                   help="metric for the best checkpoint (default val_loss, or loss)")
    s.add_argument("--select", choices=["best", "last"], default=default(d.select),
                   help="weights to evaluate: the last epoch's, or the best checkpoint's by --monitor")
    s.add_argument("--patience", type=_int_from(0), default=default(d.patience),
                   help="early stopping patience (restores the best weights)")
    s.add_argument("--lr-decay-steps", type=_positive_float, default=default(d.lr_decay_steps),
                   help="lr * 0.1 ** (epoch / steps), as in the course")
    s.add_argument("--weight-decay", type=_nonnegative_float, default=default(d.weight_decay),
                   help="AdamW's decoupled weight decay: weights shrink by lr * wd per step (0: plain Adam)")
    s.add_argument("--label-smoothing", type=_fraction, default=default(d.label_smoothing),
                   help="train towards (1 - e) * onehot + e / 10 (Keras's label_smoothing; 0: plain cross-entropy); "
                   "the report's loss stays plain cross-entropy")
    s.add_argument("--cosine", action=argparse.BooleanOptionalAction, default=default(d.cosine),
                   help="cosine decay of the learning rate, to 1%% of --lr at the end (the default, unless another "
                   "schedule is given; --no-cosine: a constant rate)")
    s.add_argument("--reduce-lr-on-plateau", type=_int_from(0), metavar="PATIENCE",
                   default=default(d.reduce_lr_on_plateau), help="divide the learning rate by 10 after PATIENCE "
                   "epochs without improvement of the --monitor metric (Keras's ReduceLROnPlateau)")
    s.add_argument("--csv-log", action="store_true", default=default(d.csv_log),
                   help="write OUT/history.csv, one row per epoch as it ends (appended to on --resume)")


def _add_run_options(s, d, default):
    """train's options about going on, the data's size, and what is written and shown."""
    s.add_argument("--resume", default=default(d.resume), help="continue the run of this checkpoint "
                   "(OUT/last.safetensors is written at the end of every epoch), in its folder, with its model, "
                   "backend and options (only --epochs may change)")
    s.add_argument("--limit-train", type=_int_from(1), default=default(d.limit_train),
                   help="use only the first N training images")
    s.add_argument("--limit-val", type=_int_from(1), default=default(d.limit_val),
                   help="use only the first N validation images")
    s.add_argument("--limit-test", type=_int_from(1), default=default(d.limit_test),
                   help="use only the first N test images")
    s.add_argument("--no-plots", action="store_true", default=default(d.no_plots), help="write no plots")
    s.add_argument("--progress", choices=["auto", "bar", "epoch"], default=default(d.progress),
                   help="a progress bar, or one line per epoch; auto: the bar on a terminal, lines otherwise")
    s.add_argument("--quiet", action="store_true", default=default(d.quiet), help="no progress bars or epoch lines")


def _add_evaluation_commands(sub, on_backend, with_data):
    """evaluate, predict and data: a trained checkpoint on the data set, and the data set itself."""
    s = sub.add_parser("evaluate", parents=[on_backend, with_data], help="evaluate a checkpoint on the test set")
    s.add_argument("checkpoint", help="a checkpoint file, or a folder: its last.safetensors")
    s = sub.add_parser("predict", parents=[on_backend, with_data],
                       help="classify one test image (--index) or a 28x28 image file (--image)",
                       description="Classify one test image (--index) or a 28x28 image file (--image). The models "
                       "learnt light garments on a black background: a dark garment on a light one is refused "
                       "unless --invert flips it or --as-is is given.")
    s.add_argument("checkpoint", help="a checkpoint file, or a folder: its last.safetensors")
    s.add_argument("--index", type=_int_from(0), help="test image to classify (default 0)")
    s.add_argument("--image", help="a 28x28 image file: a light garment on black, as in Fashion-MNIST")
    s.add_argument("--invert", action="store_true", help="flip the --image (255 - x): for a dark garment on light")
    s.add_argument("--as-is", action="store_true",
                   help="classify the --image even if it looks dark on light (no background check)")
    s.add_argument("--plot", help="write the image and its probability bars to this PNG")
    s = sub.add_parser("data", parents=[with_data], help="find (or fetch), verify and describe Fashion-MNIST")
    s.add_argument("--plots", help="also write samples.png and dataset.png into this folder")


def _shape(text):
    """'3,8,8' -> (3, 8, 8): the shape of one sample, positive sizes."""
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a shape is sizes separated by commas, e.g. 3,8,8; got {text!r}") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return shape


def _add_model_commands(sub, on_backend):
    """inspect, export, models and gradcheck: a model's shapes, statistics, graph and gradients."""
    s = sub.add_parser("inspect", parents=[on_backend],
                       help="one batch through a model: shapes, activation and gradient statistics")
    s.add_argument("model", nargs="?", help="a model of tinynet models (default cnn_dropout02, or the checkpoint's)")
    s.add_argument("--checkpoint", help="inspect this trained checkpoint (a file, or a folder: its last.safetensors) "
                   "instead of a fresh model")
    s.add_argument("--batch", type=_int_from(1), default=32)
    s.add_argument("--seed", type=_int_from(0), default=0, help="draws the batch (and a fresh model's weights)")
    s = sub.add_parser("export", parents=[on_backend], help="write a checkpoint's inference graph to an ONNX file")
    s.add_argument("checkpoint", help="a checkpoint file, or a folder: its last.safetensors")
    s.add_argument("output", help="the .onnx file to write")
    sub.add_parser("models", help="list the models with parameter counts")
    s = sub.add_parser("summary", help="Keras's summary table of a model: layers, output shapes, parameter counts")
    s.add_argument("model", help="a model of tinynet models, a checkpoint file, or a folder (its last.safetensors)")
    s = sub.add_parser("gradcheck", parents=[on_backend],
                       help="finite-difference check of a model of the zoo, or of a layer or model of your own")
    s.add_argument("model", nargs="?", default="cnn_dropout02",
                   help="a model of tinynet models, or FILE.py:NAME: a Layer, a Sequential, or a class or function "
                        "making one")
    s.add_argument("--input-shape", type=_shape, help="with a layer of your own: one sample's shape, e.g. 3,8,8")
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


def given_options(argv):
    """The train options written on ``argv`` (not left to their defaults), by their names in the namespace: the same
    parser built without defaults leaves out of its namespace every option not written."""
    written = vars(build_parser(defaults=False).parse_args(argv))
    return set(written) - {"command"}
