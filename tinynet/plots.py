"""PNG plots with matplotlib (Agg, no display needed).

Each plot has two functions: ``*_figure(...)`` draws it and returns the matplotlib Figure (the tests read its
titles, labels and marks from there), and the plain name draws it, writes the file and returns its path.
Garments are drawn dark on white, as the course draws them; the data (and what the models see) is light on black.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

RIGHT, WRONG, TRUE, OTHER = "tab:green", "tab:red", "tab:green", "tab:gray"
INVERTED = "drawn dark on white; the data is light on black"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def file_formats():
    """The file name endings matplotlib can write (png, pdf, svg, ...)."""
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


def _picture(image):
    """One image as (H, W), from (H, W) or (1, H, W): whatever size the data set's images are."""
    return np.asarray(image).reshape(np.asarray(image).shape[-2:])


def percent(p) -> str:
    """A probability as a label that never rounds to 0.0% or 100.0% a class the model did not rule out (or in)
    entirely."""
    return "<0.1%" if p < 0.001 else ">99.9%" if 0.999 < p < 1 else f"{p:.1%}"


# -- samples.png -------------------------------------------------------------------------------------------------------
def sample_grid_figure(images, labels, class_names, split, n=25, indices=None):
    """A 5x5 grid of the first ``n`` images of ``split`` ("training", "test"), each captioned '#index class'."""
    plt = _plt()
    indices = np.arange(len(images)) if indices is None else np.asarray(indices)
    fig, axes = plt.subplots(5, 5, figsize=(8, 9))
    for ax, i, img, lab in zip(axes.flat, indices[:n], images[:n], labels[:n], strict=False):
        ax.imshow(_picture(img), cmap="binary")
        ax.set_xlabel(f"#{i} {class_names[int(lab)]}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.flat[min(n, len(images)):]:
        ax.axis("off")
    fig.suptitle(f"{min(n, len(images))} {split} images, each captioned #index and class\n({INVERTED})")
    return fig


def sample_grid(images, labels, class_names, path, split, n=25, indices=None):
    return _save(sample_grid_figure(images, labels, class_names, split, n, indices), path)


# -- history.png -------------------------------------------------------------------------------------------------------
def history_figure(history: dict):
    """Training (and validation) accuracy and loss per epoch: integer epoch ticks, the legend below the axes."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, key, title in ((a1, "accuracy", "Accuracy"), (a2, "loss", "Loss")):
        ax.plot(epochs, history[key], "o-", label=f"training {key}")
        if not np.all(np.isnan(history.get(f"val_{key}", [np.nan]))):
            ax.plot(epochs, history[f"val_{key}"], "s-", label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.set_xlim(0.5, len(epochs) + 0.5)  # one epoch is one point: without limits its tick reads 0.96, 1.005, ...
        ax.set_xticks(epochs if len(epochs) <= 20 else np.unique(np.linspace(1, len(epochs), 11).round()))
        ax.set_title(f"{title} vs epochs")
        ax.grid(True)
        # below the axes, not inside: "best" still covers points when there are one or two of them
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
    return fig


def history_curves(history: dict, path):
    return _save(history_figure(history), path)


# -- confusion_*.png ---------------------------------------------------------------------------------------------------
def confusion_figure(cm, class_names, title="Confusion matrix"):
    plt = _plt()
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(8, 7))
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, label="images")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = cm.max() / 2
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > threshold else "black")
    return fig


def confusion_heatmap(cm, class_names, path, title="Confusion matrix"):
    return _save(confusion_figure(cm, class_names, title), path)


# -- prediction.png ----------------------------------------------------------------------------------------------------
def prediction_title(probs, class_names, true_label=None, source=None) -> str:
    """'test image 169: WRONG, predicted Shirt (61.2%), true T-shirt/top' (or 'right, ...', or no verdict)."""
    pred = int(np.argmax(probs))
    head = f"{source}: " if source else ""
    said = f"predicted {class_names[pred]} ({percent(probs[pred])})"
    if true_label is None:
        return head + said
    verdict = "right" if pred == int(true_label) else "WRONG"
    return head + f"{verdict}, {said}" + ("" if verdict == "right" else f", true {class_names[int(true_label)]}")


def prediction_figure(image, probs, class_names, true_label=None, source=None):
    """The image, and every class's probability as a labelled bar. The predicted bar is green when it is the
    true class and red when it is not; the true class's bar is green and its name says '(true)'."""
    plt = _plt()
    probs = np.asarray(probs)
    pred = int(probs.argmax())
    wrong = true_label is not None and pred != int(true_label)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [1, 1.6]}, layout="constrained")
    a1.imshow(_picture(image), cmap="binary")
    a1.set_xticks([])
    a1.set_yticks([])
    a1.set_xlabel(INVERTED, fontsize=7)
    colors = [OTHER] * len(probs)
    colors[pred] = WRONG if wrong else RIGHT if true_label is not None else "tab:blue"
    names = list(class_names)
    if true_label is not None:
        colors[int(true_label)] = TRUE
        names[int(true_label)] += " (true)"
    bars = a2.barh(range(len(probs)), probs, color=colors)
    a2.bar_label(bars, [percent(p) for p in probs], padding=3, fontsize=8)  # tiny bars still get their number
    a2.set_yticks(range(len(probs)), names)
    if true_label is not None:
        a2.get_yticklabels()[int(true_label)].set_fontweight("bold")
    a2.invert_yaxis()
    a2.set_xlim(0, 1.15)  # room for the label of a bar at 100%
    a2.set_xlabel("probability")
    fig.suptitle(prediction_title(probs, class_names, true_label, source), color=WRONG if wrong else "black")
    return fig


def prediction_bars(image, probs, class_names, path, true_label=None, source=None):
    return _save(prediction_figure(image, probs, class_names, true_label, source), path)


# -- dataset.png -------------------------------------------------------------------------------------------------------
def dataset_figure(images, labels, class_names, split):
    """Per-pixel mean and std images (with colour bars), the class balance of ``split``, value range and gaps."""
    plt = _plt()
    x = np.asarray(images, dtype=np.float64).reshape(len(images), *_picture(images[0]).shape)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3), layout="constrained")
    for ax, image, what in ((axes[0], x.mean(axis=0), "mean"), (axes[1], x.std(axis=0), "standard deviation")):
        im = ax.imshow(image, cmap="viridis")
        fig.colorbar(im, ax=ax, label="pixel value (0-255)")
        ax.set_title(f"per-pixel {what}")
        ax.set_xticks([])
        ax.set_yticks([])
    counts = np.bincount(np.asarray(labels), minlength=len(class_names))
    axes[2].bar(range(len(class_names)), counts)
    axes[2].set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    axes[2].set_ylabel("images")
    axes[2].set_title(f"class balance of the {split} images")
    fig.suptitle(f"{len(x):,} {split} images; pixel values {x.min():.0f}..{x.max():.0f}, "
                 f"{int(np.isnan(x).sum())} missing")
    return fig


def dataset_statistics(images, labels, class_names, path, split):
    return _save(dataset_figure(images, labels, class_names, split), path)
