"""The plots say what they show: their titles, labels, colours and legends, read from matplotlib's artists."""

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from tinynet import plots
from tinynet.data import CLASS_NAMES

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (40, 28, 28), dtype=np.uint8)
LABELS = np.arange(40) % 10


def test_figures_are_made_without_pyplot_so_nothing_keeps_or_shows_them_twice():
    """A notebook shows a returned Figure once; pyplot would also show (and keep) every figure it made."""
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = plots.history_figure({"loss": [1.0, 0.5], "accuracy": [0.5, 0.7], "val_loss": [1.1, 0.6],
                                "val_accuracy": [0.4, 0.6]})
    assert plt.get_fignums() == before and fig.axes


def probabilities(top, second=None):
    """Probabilities with class ``top`` first (and ``second`` next), some far below 0.1%."""
    p = np.full(10, 1e-6)
    if second is not None:
        p[second] = 0.3
    p[top] += 1 - p.sum()
    return p


def bars_of(ax):
    return sorted(ax.patches, key=lambda bar: bar.get_y())  # top to bottom: class 0 first (the axis is inverted)


def test_a_wrong_prediction_looks_wrong_and_marks_the_true_class():
    probs = probabilities(7, second=9)
    fig = plots.prediction_figure(IMAGES[0], probs, CLASS_NAMES, true_label=9, source="test image 169")
    title = fig._suptitle
    assert title.get_text() == "test image 169: WRONG, predicted Sneaker (70.0%), true Ankle boot"
    assert to_rgba(title.get_color()) == to_rgba(plots.WRONG)
    bars_ax = fig.axes[1]
    bars = bars_of(bars_ax)
    assert to_rgba(bars[7].get_facecolor()) == to_rgba(plots.WRONG)
    assert to_rgba(bars[9].get_facecolor()) == to_rgba(plots.TRUE)
    assert {to_rgba(b.get_facecolor()) for i, b in enumerate(bars) if i not in (7, 9)} == {to_rgba(plots.OTHER)}
    ticks = bars_ax.get_yticklabels()
    assert ticks[9].get_text() == "Ankle boot (true)" and ticks[9].get_fontweight() == "bold"
    assert [t.get_text() for t in ticks[:9]] == list(CLASS_NAMES[:9])


def test_every_bar_is_labelled_with_its_probability_even_a_tiny_one():
    probs = probabilities(2)
    fig = plots.prediction_figure(IMAGES[0], probs, CLASS_NAMES, true_label=2)
    labels = [t.get_text() for t in fig.axes[1].texts]
    assert labels == [plots.percent(p) for p in probs] and labels.count("<0.1%") == 9
    assert plots.percent(0.6) == "60.0%" and plots.percent(1 - 1e-9) == ">99.9%" and plots.percent(1.0) == "100.0%"
    assert fig.axes[1].get_xlim()[1] > 1  # room for the label of a bar at 100%


def test_a_right_prediction_and_an_unlabelled_image():
    fig = plots.prediction_figure(IMAGES[0], probabilities(4), CLASS_NAMES, true_label=4, source="test image 0")
    assert fig._suptitle.get_text() == "test image 0: right, predicted Coat (>99.9%)"
    assert to_rgba(fig._suptitle.get_color()) != to_rgba(plots.WRONG)
    assert to_rgba(bars_of(fig.axes[1])[4].get_facecolor()) == to_rgba(plots.RIGHT)
    fig = plots.prediction_figure(IMAGES[0], probabilities(4), CLASS_NAMES, source="shoe.png")
    assert fig._suptitle.get_text() == "shoe.png: predicted Coat (>99.9%)"
    assert not any("(true)" in t.get_text() for t in fig.axes[1].get_yticklabels())


def _points_in_display(ax):
    return np.concatenate([ax.transData.transform(line.get_xydata()) for line in ax.get_lines()])


@pytest.mark.parametrize("epochs", [1, 2, 30])
def test_history_has_integer_epoch_ticks_and_a_legend_that_hides_no_point(epochs):
    curve = list(np.linspace(0.5, 0.9, epochs))
    history = {"accuracy": curve, "val_accuracy": curve[::-1], "loss": curve[::-1], "val_loss": curve}
    fig = plots.history_figure(history)
    fig.canvas.draw()
    for ax in fig.axes:
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() and 1 <= t <= epochs for t in ticks)
        assert {1, epochs} <= set(ticks)
        legend = ax.get_legend()
        assert [t.get_text() for t in legend.get_texts()] == [line.get_label() for line in ax.get_lines()]
        assert len(ax.get_lines()) == 2
        box = legend.get_window_extent()
        assert not any(box.contains(x, y) for x, y in _points_in_display(ax))


def test_history_without_validation_has_one_curve():
    fig = plots.history_figure({"loss": [1.0], "accuracy": [0.5], "val_loss": [np.nan], "val_accuracy": [np.nan]})
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["training accuracy"]


def test_history_names_the_label_smoothed_objective_and_says_the_report_loss_is_plain_cross_entropy():
    history = {"accuracy": [0.7, 0.8], "val_accuracy": [0.7, 0.8], "loss": [0.94, 0.67], "val_loss": [0.9, 0.7]}
    fig = plots.history_figure(history, label_smoothing=0.1)
    accuracy_ax, loss_ax = fig.axes[:2]
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == [
        "training objective (label-smoothed, e=0.1)", "validation objective (label-smoothed, e=0.1)"]
    assert loss_ax.get_ylabel() == "objective (label-smoothed, e=0.1)"
    note = fig._suptitle.get_text()
    assert "label-smoothed" in note and "e=0.1" in note and "plain cross-entropy" in note
    assert [t.get_text() for t in accuracy_ax.get_legend().get_texts()] == ["training accuracy", "validation accuracy"]
    plain = plots.history_figure(history)
    assert plain._suptitle is None and plain.axes[1].get_legend().get_texts()[0].get_text() == "training loss (cross-entropy)"


def test_the_log_axis_rule():
    assert plots.LOG_RATIO == 30
    assert plots.needs_log_axis([0.5, 240.0]) and plots.needs_log_axis([0.01, 0.5, np.nan])
    assert not plots.needs_log_axis([0.5, 14.0]) and not plots.needs_log_axis([0.3, 0.9, np.nan, np.inf])
    assert not plots.needs_log_axis([0.0, 5.0]) and not plots.needs_log_axis([np.nan, np.nan]) and not plots.needs_log_axis([])


def test_a_loss_spike_puts_the_loss_panel_on_a_log_axis_and_says_so():
    history = {"accuracy": [0.7, 0.1, 0.8], "val_accuracy": [0.7, 0.1, 0.8], "loss": [0.9, 0.7, 0.6],
               "val_loss": [0.8, 240.0, 0.65]}
    fig = plots.history_figure(history)
    assert fig.axes[1].get_yscale() == "log" and "log scale" in fig.axes[1].get_title()
    assert fig.axes[0].get_yscale() == "linear"  # accuracy stays linear whatever its range
    history["val_loss"][1] = 0.7
    fig = plots.history_figure(history)
    assert fig.axes[1].get_yscale() == "linear" and "log" not in fig.axes[1].get_title()


CM = np.array([[90, 0, 10], [0, 100, 0], [30, 1, 69]])


def test_confusion_colours_the_row_shares_of_the_errors_and_greys_out_the_diagonal():
    fig = plots.confusion_figure(CM, ["a", "b", "c"], "Confusion matrix (test)")
    ax = fig.axes[0]
    (image,) = ax.get_images()
    shown = image.get_array()
    assert shown.mask.tolist() == np.eye(3, dtype=bool).tolist()  # the diagonal is off the colour scale
    np.testing.assert_allclose(shown.filled(np.nan)[~np.eye(3, dtype=bool)], [0, 0.1, 0, 0, 0.3, 0.01])
    assert image.norm.vmax == pytest.approx(0.3)  # the worst error is the darkest cell, whatever the diagonal
    assert to_rgba(image.get_cmap().get_bad()) == to_rgba(plots.DIAGONAL)
    assert image.colorbar.ax.get_ylabel() == "share of the true class predicted as this wrong class"
    title = ax.get_title()
    assert title.startswith("Confusion matrix (test)\n") and "share of the row" in title and "diagonal" in title
    texts = [t.get_text() for t in ax.texts]
    assert texts[:3] == ["90\n90.0%", "0", "10\n10.0%"] and texts[6:] == ["30\n30.0%", "1\n1.0%", "69\n69.0%"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a (100)", "b (100)", "c (100)"]


def test_confusion_shares_of_a_class_without_images_are_zero():
    np.testing.assert_array_equal(plots.row_shares([[0, 0], [1, 3]]), [[0, 0], [0.25, 0.75]])
    fig = plots.confusion_figure(np.diag([5, 7]), ["a", "b"])  # no error at all: still a scale, no division by 0
    assert fig.axes[0].get_images()[0].norm.vmax > 0


def test_misclassified_grid_captions_each_mistake_with_predicted_and_true_class():
    true = LABELS[:30]
    predicted = true.copy()
    predicted[[3, 17]] = [5, 0]
    probs = np.stack([probabilities(int(p), second=int(t) if t != p else None) for p, t in zip(predicted, true, strict=True)])
    fig = plots.misclassified_grid_figure(IMAGES[:30], true, predicted, probs, CLASS_NAMES)
    shown = [ax for ax in fig.axes if ax.get_images()]
    assert len(shown) == 2
    assert shown[0].get_title() == "#3 predicted\nSandal (70.0%)" and shown[0].get_xlabel() == "true: Dress (30.0%)"
    assert to_rgba(shown[0].title.get_color()) == to_rgba(plots.WRONG)
    assert shown[1].get_title() == "#17 predicted\nT-shirt/top (70.0%)" and shown[1].get_xlabel() == "true: Sneaker (30.0%)"
    np.testing.assert_array_equal(shown[0].get_images()[0].get_array(), IMAGES[3])
    assert fig._suptitle.get_text().startswith("The first 2 of the 2 misclassified test images (6.7% of 30), in test order")
    none = plots.misclassified_grid_figure(IMAGES[:30], true, true, probs, CLASS_NAMES)
    assert none._suptitle.get_text().startswith("None of the 30 test images is misclassified")


def test_misclassified_grid_shows_at_most_n():
    wrong = (LABELS + 1) % 10
    probs = np.stack([probabilities(int(p)) for p in wrong])
    fig = plots.misclassified_grid_figure(IMAGES, LABELS, wrong, probs, CLASS_NAMES, n=10)
    assert sum(bool(ax.get_images()) for ax in fig.axes) == 10 and len(fig.axes) == 10
    assert fig._suptitle.get_text().startswith("The first 10 of the 40 misclassified")


def test_a_label_smoothed_models_prediction_says_why_it_tops_out_near_91_percent():
    fig = plots.prediction_figure(IMAGES[0], probabilities(4), CLASS_NAMES, true_label=4, label_smoothing=0.1)
    note = fig._supxlabel.get_text()
    assert "label smoothing (e=0.1)" in note and "91%" in note and "not doubt" in note
    assert plots.prediction_figure(IMAGES[0], probabilities(4), CLASS_NAMES, true_label=4)._supxlabel is None


def test_the_report_writes_the_misclassified_grid_beside_the_other_plots(tmp_path):
    from tinynet.report import write_plots

    logits = np.log(np.stack([probabilities(int(p)) for p in (LABELS + (np.arange(40) % 4 == 0)) % 10]))
    cm = np.zeros((10, 10), int)
    np.add.at(cm, (LABELS, logits.argmax(axis=1)), 1)
    report = {"class_names": list(CLASS_NAMES), "test": {"confusion_matrix": cm.tolist()}}
    history = {"loss": [0.9, 0.7], "accuracy": [0.6, 0.7]}
    written = write_plots(tmp_path, report, logits, history, IMAGES, LABELS, label_smoothing=0.1)
    assert [p.name for p in written] == ["history.png", "confusion_test.png", "prediction.png", "misclassified.png",
                                         "samples.png"]
    assert all(p.stat().st_size > 1000 for p in written)


def test_dataset_statistics_have_colour_bars_a_labelled_count_axis_and_name_the_split():
    fig = plots.dataset_figure(IMAGES, LABELS, CLASS_NAMES, "training")
    mean_ax, std_ax, balance_ax = fig.axes[:3]
    for ax in (mean_ax, std_ax):
        (image,) = ax.get_images()
        assert image.colorbar is not None and image.colorbar.ax.get_ylabel() == "pixel value (0-255)"
    np.testing.assert_allclose(mean_ax.get_images()[0].get_array(), IMAGES.mean(axis=0))
    assert balance_ax.get_title() == "class balance of the training images" and balance_ax.get_ylabel() == "images"
    assert [bar.get_height() for bar in balance_ax.patches] == list(np.bincount(LABELS))
    assert fig._suptitle.get_text().startswith("40 training images; pixel values 0..255, 0 missing")


def test_sample_grid_names_the_split_and_each_images_index():
    fig = plots.sample_grid_figure(IMAGES, LABELS, CLASS_NAMES, "test")
    captions = [ax.get_xlabel() for ax in fig.axes]
    assert captions[:3] == ["#0 T-shirt/top", "#1 Trouser", "#2 Pullover"] and len(captions) == 25
    assert fig._suptitle.get_text().startswith("25 test images, each captioned #index and class")
    fig = plots.sample_grid_figure(IMAGES[5:], LABELS[5:], CLASS_NAMES, "training", indices=np.arange(5, 40))
    assert fig.axes[0].get_xlabel() == "#5 Sandal" and "training" in fig._suptitle.get_text()


def test_the_files_are_written(tmp_path):
    written = [
        plots.prediction_bars(IMAGES[0], probabilities(1), CLASS_NAMES, tmp_path / "p.png", 1, "test image 3"),
        plots.dataset_statistics(IMAGES, LABELS, CLASS_NAMES, tmp_path / "d.png", "training"),
        plots.sample_grid(IMAGES, LABELS, CLASS_NAMES, tmp_path / "s.png", "test"),
        plots.history_curves({"loss": [1.0], "accuracy": [0.5]}, tmp_path / "h.png", label_smoothing=0.1),
        plots.confusion_heatmap(CM, ["a", "b", "c"], tmp_path / "c.png"),
        plots.misclassified_grid(IMAGES, LABELS, (LABELS + 1) % 10, np.full((40, 10), 0.1), CLASS_NAMES, tmp_path / "m.png"),
    ]
    assert all(p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG" for p in written)
