"""Metrics against cases computed by hand."""

import numpy as np
import pytest

from tinynet import metrics


def test_confusion_matrix_and_report_by_hand():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    cm = metrics.confusion_matrix(y_true, y_pred, 3)
    np.testing.assert_array_equal(cm, [[2, 1, 0], [0, 1, 1], [0, 0, 1]])
    r = metrics.classification_report(cm, ["a", "b", "c"])
    # a: P = 2/2, R = 2/3;  b: P = 1/2, R = 1/2;  c: P = 1/2, R = 1/1
    assert r["classes"]["a"]["precision"] == 1.0 and r["classes"]["a"]["recall"] == pytest.approx(2 / 3)
    assert r["classes"]["b"]["f1"] == pytest.approx(0.5)
    assert r["classes"]["c"]["f1"] == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["macro avg"]["precision"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert r["weighted avg"]["recall"] == pytest.approx((3 * 2 / 3 + 2 * 0.5 + 1 * 1) / 6)
    assert r["classes"]["a"]["support"] == 3


def test_unpredicted_class_has_zero_precision_not_nan():
    cm = metrics.confusion_matrix(np.array([0, 1]), np.array([0, 0]), 2)
    r = metrics.classification_report(cm)
    assert r["classes"]["1"]["precision"] == 0.0 and r["classes"]["1"]["f1"] == 0.0


def test_most_confused_in_words():
    cm = np.zeros((10, 10), dtype=int)
    cm[6, 0], cm[6, 2], cm[4, 2] = 692, 536, 298
    from tinynet.data import CLASS_NAMES

    out = metrics.most_confused(cm, CLASS_NAMES, top=2)
    assert out == ["Shirt predicted as T-shirt/top: 692", "Shirt predicted as Pullover: 536"]


def test_misclassified_indices():
    np.testing.assert_array_equal(metrics.misclassified([1, 2, 3, 4], [1, 0, 3, 0]), [1, 3])


def test_bad_inputs():
    with pytest.raises(ValueError, match="equal length"):
        metrics.confusion_matrix(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        metrics.confusion_matrix(np.array([10]), np.array([0]))
    with pytest.raises(ValueError, match="integer class indices"):  # one check for every label, tinynet/checks.py
        metrics.confusion_matrix(np.array([0.0]), np.array([0]))


def test_the_text_report_names_every_class_in_full():
    from tinynet.data import CLASS_NAMES

    cm = np.arange(100).reshape(10, 10) * 37  # up to 3,663: wider columns than the default
    text = metrics.format_confusion_matrix(cm, CLASS_NAMES)
    rows = text.splitlines()[1:]
    assert [r.split("  ")[0] for r in rows] == [f"{i} {n}" for i, n in enumerate(CLASS_NAMES)]
    assert len({len(line) for line in text.splitlines()}) == 1  # every column lines up
    assert all(r.split()[-1] == str(cm[i, -1]) for i, r in enumerate(rows))
    long = ["a garment with a long name", "b"]
    table = metrics.format_report(metrics.classification_report(np.eye(2, dtype=int), long))
    assert len({len(line) for line in table.splitlines()}) == 1  # a long name widens the column, not one row
