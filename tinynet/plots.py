"""PNG plots with matplotlib (Agg, no display needed). Each function writes one file."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


def _picture(image):
    """One image as (H, W), from (H, W) or (1, H, W): whatever size the data set's images are."""
    return np.asarray(image).reshape(np.asarray(image).shape[-2:])


def sample_grid(images, labels, class_names, path, n=25):
    """A 5x5 grid of images with their class names."""
    plt = _plt()
    fig, axes = plt.subplots(5, 5, figsize=(8, 8.6))
    for ax, img, lab in zip(axes.flat, images[:n], labels[:n], strict=False):
        ax.imshow(_picture(img), cmap="binary")
        ax.set_xlabel(class_names[int(lab)], fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    return _save(fig, path)


def history_curves(history: dict, path):
    """Training vs validation accuracy and loss per epoch."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, key, title in ((a1, "accuracy", "Accuracy"), (a2, "loss", "Loss")):
        ax.plot(epochs, history[key], "o-", label=f"train {key}")
        if not np.all(np.isnan(history.get(f"val_{key}", [np.nan]))):
            ax.plot(epochs, history[f"val_{key}"], "s-", label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{title} vs epochs")
        ax.grid(True)
        ax.legend()
    return _save(fig, path)


def confusion_heatmap(cm, class_names, path, title="Confusion matrix"):
    plt = _plt()
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(8, 7))
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax)
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
    return _save(fig, path)


def prediction_bars(image, probs, class_names, path, true_label=None):
    """One image with its predicted class, and the probability of every class."""
    plt = _plt()
    probs = np.asarray(probs)
    pred = int(probs.argmax())
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    a1.imshow(_picture(image), cmap="binary")
    a1.axis("off")
    title = f"predicted: {class_names[pred]} ({probs[pred]:.1%})"
    if true_label is not None:
        title += f"\ntrue: {class_names[int(true_label)]}"
    a1.set_title(title, fontsize=9)
    colors = ["tab:blue"] * len(probs)
    colors[pred] = "tab:red"
    a2.barh(range(len(probs)), probs, color=colors)
    a2.set_yticks(range(len(probs)), class_names)
    a2.invert_yaxis()
    a2.set_xlim(0, 1)
    a2.set_xlabel("probability")
    return _save(fig, path)


def dataset_statistics(images, labels, class_names, path):
    """Per-pixel mean and std images, class balance, and value range / missing values."""
    plt = _plt()
    x = np.asarray(images, dtype=np.float64).reshape(len(images), *_picture(images[0]).shape)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    axes[0].imshow(x.mean(axis=0), cmap="viridis")
    axes[0].set_title("per-pixel mean")
    axes[1].imshow(x.std(axis=0), cmap="viridis")
    axes[1].set_title("per-pixel std")
    for ax in axes[:2]:
        ax.axis("off")
    counts = np.bincount(np.asarray(labels), minlength=len(class_names))
    axes[2].bar(range(len(class_names)), counts)
    axes[2].set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    axes[2].set_title(
        f"class balance — values {x.min():.0f}..{x.max():.0f}, missing {int(np.isnan(x).sum())}"
    )
    return _save(fig, path)
