"""Classification metrics from labels and predictions (host NumPy, integer classes)."""

from __future__ import annotations

import numpy as np

from . import checks
from .exceptions import InvalidValue


def confusion_matrix(y_true, y_pred, num_classes: int = 10) -> np.ndarray:
    """cm[i, j] = number of samples of true class i predicted as class j."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise InvalidValue(f"y_true and y_pred must be 1-D of equal length, got {y_true.shape} and {y_pred.shape}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        checks.class_labels(y, num_classes, what=name)
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def classification_report(cm: np.ndarray, class_names=None) -> dict:
    """Per-class precision, recall, F1 and support, with macro and weighted averages.

    A class never predicted has precision 0 (and one with no samples recall 0),
    as scikit-learn does with zero_division=0.
    """
    cm = np.asarray(cm, dtype=np.int64)
    k = cm.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    tp = np.diag(cm).astype(float)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    total = support.sum()
    per_class = {
        names[i]: {"precision": precision[i], "recall": recall[i], "f1": f1[i], "support": int(support[i])}
        for i in range(k)
    }
    weights = support / total if total else np.zeros(k)
    return {
        "classes": per_class,
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "macro avg": {"precision": precision.mean(), "recall": recall.mean(), "f1": f1.mean(), "support": int(total)},
        "weighted avg": {
            "precision": float(weights @ precision), "recall": float(weights @ recall), "f1": float(weights @ f1),
            "support": int(total),
        },
    }


def most_confused(cm: np.ndarray, class_names, top: int = 5) -> list[str]:
    """The largest off-diagonal counts in words, e.g. 'Shirt predicted as T-shirt/top: 692'."""
    cm = np.asarray(cm)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None)[::-1][:top]
    out = []
    for flat in order:
        i, j = divmod(int(flat), cm.shape[1])
        if off[i, j] == 0:
            break
        out.append(f"{class_names[i]} predicted as {class_names[j]}: {int(off[i, j])}")
    return out


def misclassified(y_true, y_pred) -> np.ndarray:
    """Indices of the samples whose prediction is wrong."""
    return np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred))


def format_confusion_matrix(cm, class_names) -> str:
    """Rows: the true class, by number and full name; columns: the predicted class, by the same numbers.

    Names are never cut: 'Pullo' or 'Sanda' would leave a reader guessing which class a row is.
    """
    cm = np.asarray(cm)
    w = max(5, len(str(int(np.max(cm)))) + 1)
    rows = [f"{i} {name}" for i, name in enumerate(class_names)]
    label = max(len(r) for r in rows + ["true \\ predicted"]) + 1
    lines = ["true \\ predicted".ljust(label) + "".join(f"{i:>{w}}" for i in range(len(cm)))]
    for row_label, counts in zip(rows, cm, strict=True):
        lines.append(row_label.ljust(label) + "".join(f"{int(v):>{w}}" for v in counts))
    return "\n".join(lines)


def format_report(report: dict) -> str:
    """The per-class table, as scikit-learn prints it; the first column fits the longest class name."""
    n = max([len(name) + 2 for name in report["classes"]] + [14])
    lines = [f"{'':<{n}}{'precision':>10}{'recall':>10}{'f1-score':>10}{'support':>10}"]
    for name, r in report["classes"].items():
        lines.append(f"{name:<{n}}{r['precision']:>10.4f}{r['recall']:>10.4f}{r['f1']:>10.4f}{r['support']:>10}")
    total = report["macro avg"]["support"]
    lines.append(f"{'accuracy':<{n}}{'':>20}{report['accuracy']:>10.4f}{total:>10}")
    for key in ("macro avg", "weighted avg"):
        r = report[key]
        lines.append(f"{key:<{n}}{r['precision']:>10.4f}{r['recall']:>10.4f}{r['f1']:>10.4f}{r['support']:>10}")
    return "\n".join(lines)
