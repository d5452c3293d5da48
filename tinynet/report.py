"""The evaluation report of a trained model: numbers, text and plots, as the course shows them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import metrics
from .arrays import to_numpy
from .atomic_files import writing
from .exceptions import InvalidValue
from .layers.softmax import softmax
from .provenance import strict_json
from .train import evaluate


def build_report(model, loss, x_test, y_test, x_train=None, y_train=None, batch_size=1000, class_names=None):
    """Evaluate on test (and train): loss, accuracy, confusion matrices, per-class table, confusions.

    ``class_names`` (e.g. ``tinynet.data.FASHION_MNIST.class_names``) name the classes in the report and its
    plots; without them the classes are called 0, 1, 2, ...
    """
    k = model.output_shape[0]
    names = [str(i) for i in range(k)] if class_names is None else list(class_names)
    if len(names) != k:
        raise InvalidValue(f"{len(names)} class names for a model with {k} outputs")
    out = {"class_names": names}
    splits = [("test", x_test, y_test)] + ([("train", x_train, y_train)] if x_train is not None else [])
    for name, x, y in splits:
        r = evaluate(model, loss, x, y, batch_size=batch_size)
        y = to_numpy(y)  # the metrics are host code; evaluation data may live on the device
        cm = metrics.confusion_matrix(y, r["predictions"], k)
        out[name] = {
            "loss": r["loss"],
            "accuracy": r["accuracy"],
            "confusion_matrix": cm.tolist(),
            "per_class": _jsonable(metrics.classification_report(cm, names)),
            "most_confused": metrics.most_confused(cm, names, top=5),
            "misclassified": int(len(metrics.misclassified(y, r["predictions"]))),
        }
        if name == "test":
            out["test"]["misclassified_indices"] = metrics.misclassified(y, r["predictions"])[:200].tolist()
            out["_test_logits"] = r["logits"]
    return out


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


def format_text(report) -> str:
    lines = []
    for name in ("test", "train"):
        if name not in report:
            continue
        r = report[name]
        lines += [
            f"== {name}: accuracy {r['accuracy']:.4f}, loss {r['loss']:.4f} ({r['misclassified']} misclassified)",
            "",
            "confusion matrix:",
            metrics.format_confusion_matrix(np.array(r["confusion_matrix"]), report["class_names"]),
            "",
            metrics.format_report(r["per_class"]),
            "",
            "most confused: " + "; ".join(r["most_confused"]),
            "",
        ]
    return "\n".join(lines)


def write_outputs(out_dir, report, history, info, x_test_u8, y_test, x_train_u8=None, y_train=None, plots=True,
                  label_smoothing=0.0):
    """metrics.json plus the PNG plots; returns the list of files written. ``label_smoothing``: the training
    loss's, which history.png and prediction.png then explain (the report's own loss is plain cross-entropy)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    logits = report.pop("_test_logits")
    names = report["class_names"]
    data = dict(info)
    data.update(
        test_loss=report["test"]["loss"], test_accuracy=report["test"]["accuracy"], history=history,
        test=report["test"], train=report.get("train"), class_names=names,
    )
    path = out_dir / "metrics.json"
    with writing(path):
        path.write_text(strict_json(data, indent=2))  # strict JSON: NaN (val_loss without validation) is null
    written = [path]
    if plots:
        written += write_plots(out_dir, report, logits, history, x_test_u8, y_test, x_train_u8, y_train, label_smoothing)
    return written


def write_plots(out_dir, report, logits, history, x_test_u8, y_test, x_train_u8=None, y_train=None, label_smoothing=0.0):
    """The PNG plots of a run into ``out_dir``: history, confusion matrices, a prediction, misclassified test
    images, samples and the data set's statistics; returns their paths. ``logits``: the test images'
    (build_report's ``_test_logits``)."""
    from . import plots as P

    out_dir, names = Path(out_dir), report["class_names"]
    y_test = np.asarray(to_numpy(y_test))
    probs = np.asarray(softmax(np.asarray(to_numpy(logits), dtype=np.float64)))
    written = [
        P.history_curves(history, out_dir / "history.png", label_smoothing=label_smoothing),
        P.confusion_heatmap(np.array(report["test"]["confusion_matrix"]), names, out_dir / "confusion_test.png",
                            "Confusion matrix (test)"),
        P.prediction_bars(x_test_u8[0], probs[0], names, out_dir / "prediction.png", y_test[0], "test image 0",
                          label_smoothing=label_smoothing),
        P.misclassified_grid(x_test_u8, y_test, probs.argmax(axis=1), probs, names, out_dir / "misclassified.png"),
        P.sample_grid(x_test_u8, y_test, names, out_dir / "samples.png", "test"),
    ]
    if "train" in report and report["train"]:
        written.append(P.confusion_heatmap(np.array(report["train"]["confusion_matrix"]), names,
                                           out_dir / "confusion_train.png", "Confusion matrix (train)"))
    if x_train_u8 is not None:
        written.append(P.dataset_statistics(x_train_u8, y_train, names, out_dir / "dataset.png", "training"))
    return written
