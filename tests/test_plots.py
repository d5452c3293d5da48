"""The plots say what they show: their titles, labels, colours and legends, read from matplotlib's artists."""

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from tinynet import plots
from tinynet.data import CLASS_NAMES

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (40, 28, 28), dtype=np.uint8)
LABELS = np.arange(40) % 10


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plots._plt().close("all")


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
        plots.history_curves({"loss": [1.0], "accuracy": [0.5]}, tmp_path / "h.png"),
    ]
    assert all(p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG" for p in written)
