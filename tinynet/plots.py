"""PNG plots with matplotlib (Agg, no display needed).

Each plot has two functions: ``*_figure(...)`` draws it and returns the matplotlib Figure (the tests read its
titles, labels and marks from there), and the plain name draws it, writes the file and returns its path.
Garments are drawn dark on white, as the course draws them; the data (and what the models see) is light on black.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic_files import writing

RIGHT, WRONG, TRUE, OTHER = "tab:green", "tab:red", "tab:green", "tab:gray"
INVERTED = "drawn dark on white; the data is light on black"


def _subplots(nrows=1, ncols=1, **kw):
    """A Figure and its axes, made without pyplot: nothing registers or shows it, so a notebook displays it once (when
    a cell returns it), a script or the command line opens no window, and saving it needs no backend to be chosen."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=kw.pop("figsize", None), layout=kw.pop("layout", None))
    return fig, fig.subplots(nrows, ncols, **kw)


def file_formats():
    """The file name endings matplotlib can write (png, pdf, svg, ...)."""
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with writing(path):
        fig.savefig(path, dpi=110, bbox_inches="tight")
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
    indices = np.arange(len(images)) if indices is None else np.asarray(indices)
    fig, axes = _subplots(5, 5, figsize=(8, 9))
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
LOG_RATIO = 30  # a loss panel whose values span more than this factor (max / min) gets a log axis


def needs_log_axis(values) -> bool:
    """Whether the finite values are all positive and span more than LOG_RATIO (max / min): on a linear axis one
    epoch's val_loss of 240 flattens every other point."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    return bool(len(v) and v.min() > 0 and v.max() / v.min() > LOG_RATIO)


def loss_name(label_smoothing=0.0) -> str:
    """What the history's loss is: 'objective (label-smoothed, e=0.1)' when training smoothed the labels (fit
    computes the validation loss with the same loss), else 'loss (cross-entropy)'."""
    return f"objective (label-smoothed, e={label_smoothing:g})" if label_smoothing else "loss (cross-entropy)"


def _history_panel(ax, epochs, train, val, name, title):
    """One panel of history.png: the training curve, the validation curve when there is one, a log axis when
    the values span orders of magnitude, integer epoch ticks and the legend below the axes."""
    ax.plot(epochs, train, "o-", label=f"training {name}")
    if not np.all(np.isnan(np.asarray(val, dtype=np.float64))):
        ax.plot(epochs, val, "s-", label=f"validation {name}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(name)
    ax.set_xlim(0.5, len(epochs) + 0.5)  # one epoch is one point: without limits its tick reads 0.96, 1.005, ...
    ax.set_xticks(epochs if len(epochs) <= 20 else np.unique(np.linspace(1, len(epochs), 11).round()))
    values = np.concatenate([np.asarray(train, dtype=np.float64), np.asarray(val, dtype=np.float64)])
    if needs_log_axis(values):
        finite = values[np.isfinite(values)]
        ax.set_yscale("log")
        title += f"\n(log scale: the values span a factor of {finite.max() / finite.min():,.0f})"
    ax.set_title(title)
    ax.grid(True)
    # below the axes, not inside: "best" still covers points when there are one or two of them
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=1 if len(name) > 20 else 2, frameon=False)


def history_figure(history: dict, label_smoothing=0.0):
    """Training (and validation) accuracy and loss per epoch. With ``label_smoothing`` the loss panel names the
    label-smoothed objective it shows, and the title says the report's loss is the plain cross-entropy."""
    fig, (a1, a2) = _subplots(1, 2, figsize=(11, 4.4), layout="constrained")
    epochs = np.arange(1, len(history["loss"]) + 1)
    nan = [np.nan] * len(epochs)
    _history_panel(a1, epochs, history["accuracy"], history.get("val_accuracy", nan), "accuracy", "Accuracy vs epochs")
    name = loss_name(label_smoothing)
    _history_panel(a2, epochs, history["loss"], history.get("val_loss", nan), name,
                   "Label-smoothed objective vs epochs" if label_smoothing else "Loss vs epochs")
    if label_smoothing:
        fig.suptitle(f"Right panel: the label-smoothed objective that training minimised (e={label_smoothing:g}), which "
                     "cannot fall to 0.\nThe report's loss (metrics.json and the printed report) is the plain "
                     "cross-entropy: another, usually much lower number.", fontsize=10)
    return fig


def history_curves(history: dict, path, label_smoothing=0.0):
    return _save(history_figure(history, label_smoothing), path)


# -- confusion_*.png ---------------------------------------------------------------------------------------------------
DIAGONAL = "#c7e9c0"  # the right predictions: a light green of their own, off the colour scale of the errors


def row_shares(cm):
    """Each row of ``cm`` divided by its total: the share of that true class predicted as each class (0 in the
    row of a class without images)."""
    cm = np.asarray(cm, dtype=np.float64)
    totals = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)


def confusion_cell_text(count, share) -> str:
    """A cell's text: its image count over its share of the row ('12\\n3.4%'), or '0'."""
    return "0" if count == 0 else f"{int(count)}\n{percent(share)}"


def confusion_figure(cm, class_names, title="Confusion matrix"):
    """The confusion matrix normalised by row. An off-diagonal cell's colour is the share of its true class (row)
    predicted as its column's class, on a scale of the errors alone; the diagonal (right) is green, off that scale.
    Every cell gives its image count and its share of the row."""
    from matplotlib import colormaps
    from matplotlib.colors import PowerNorm
    from matplotlib.ticker import PercentFormatter

    cm = np.asarray(cm)
    shares = row_shares(cm)
    errors = np.ma.masked_array(shares, mask=np.eye(len(cm), dtype=bool))
    top = max(float(errors.max()) if errors.count() else 0.0, 0.01)  # the worst error is the darkest cell
    fig, ax = _subplots(figsize=(9, 8))
    # a square-root scale: a 1% error still shows beside a 30% one
    im = ax.imshow(errors, cmap=colormaps["Reds"].with_extremes(bad=DIAGONAL), norm=PowerNorm(0.5, 0, top))
    fig.colorbar(im, ax=ax, format=PercentFormatter(1.0), shrink=0.8,
                 label="share of the true class predicted as this wrong class")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), [f"{name} ({int(n)})" for name, n in zip(class_names, cm.sum(axis=1), strict=True)])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (its images)")
    ax.set_title(f"{title}\neach cell: images of the row's true class predicted as the column's class, and their "
                 "share of the row\ncolour: that share, for the errors only (square-root scale); the diagonal (right) is green",
                 fontsize=10)
    for i, j in np.ndindex(cm.shape):
        dark = i != j and shares[i, j] > 0.4 * top
        ax.text(j, i, confusion_cell_text(cm[i, j], shares[i, j]), ha="center", va="center", fontsize=7,
                color="white" if dark else OTHER if cm[i, j] == 0 else "black")
    return fig


def confusion_heatmap(cm, class_names, path, title="Confusion matrix"):
    return _save(confusion_figure(cm, class_names, title), path)


# -- misclassified.png -------------------------------------------------------------------------------------------------
def misclassified_grid_figure(images, true, predicted, probs, class_names, n=25, split="test"):
    """The first ``n`` misclassified images, in data set order: above each its index and the predicted class with
    its probability (red), below it the true class with the probability the model gave it (green). ``probs``:
    every image's class probabilities, shape (images, classes)."""
    true, predicted, probs = np.asarray(true), np.asarray(predicted), np.asarray(probs)
    wrong = np.flatnonzero(true != predicted)
    shown = wrong[:n]
    rows = max(1, -(-n // 5))
    fig, axes = _subplots(rows, 5, figsize=(9, 2.2 * rows), squeeze=False)
    for ax, i in zip(axes.flat, shown, strict=False):
        p, t = int(predicted[i]), int(true[i])
        ax.imshow(_picture(images[i]), cmap="binary")
        ax.set_title(f"#{i} predicted\n{class_names[p]} ({percent(probs[i, p])})", fontsize=8, color=WRONG)
        ax.set_xlabel(f"true: {class_names[t]} ({percent(probs[i, t])})", fontsize=8, color=TRUE)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.flat[len(shown):]:
        ax.axis("off")
    if len(wrong):
        head = (f"The first {len(shown)} of the {len(wrong)} misclassified {split} images "
                f"({len(wrong) / len(true):.1%} of {len(true):,}), in {split} order")
    else:
        head = f"None of the {len(true):,} {split} images is misclassified"
    fig.suptitle(f"{head}\nabove, red: #index, the predicted class and its probability; below, green: the true "
                 f"class and the probability it got\n({INVERTED})", fontsize=10)
    return fig


def misclassified_grid(images, true, predicted, probs, class_names, path, n=25, split="test"):
    return _save(misclassified_grid_figure(images, true, predicted, probs, class_names, n, split), path)


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


def smoothing_note(label_smoothing, classes) -> str:
    """Why a label-smoothed model's top probability stops near 1 - e + e/K (91% for e = 0.1, K = 10)."""
    e = label_smoothing
    top = 1 - e + e / classes
    return (f"Trained with label smoothing (e={e:g}): the target of the true class was 1 - e + e/{classes} = "
            f"{top:.0%}, not 100%,\nso a sure prediction reads about {top:.0%}: a top bar near {top:.0%} is the "
            "training target, not doubt.")


def prediction_figure(image, probs, class_names, true_label=None, source=None, label_smoothing=0.0):
    """The image, and every class's probability as a labelled bar. The predicted bar is green when it is the
    true class and red when it is not; the true class's bar is green and its name says '(true)'. With
    ``label_smoothing`` (the model's training), a footnote says why the top probability stops near 1 - e + e/K."""
    probs = np.asarray(probs)
    pred = int(probs.argmax())
    wrong = true_label is not None and pred != int(true_label)
    fig, (a1, a2) = _subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [1, 1.6]}, layout="constrained")
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
    if label_smoothing:
        fig.supxlabel(smoothing_note(label_smoothing, len(probs)), fontsize=8, color="dimgray")
    return fig


def prediction_bars(image, probs, class_names, path, true_label=None, source=None, label_smoothing=0.0):
    return _save(prediction_figure(image, probs, class_names, true_label, source, label_smoothing), path)


# -- dataset.png -------------------------------------------------------------------------------------------------------
def dataset_figure(images, labels, class_names, split):
    """Per-pixel mean and std images (with colour bars), the class balance of ``split``, value range and gaps."""
    x = np.asarray(images, dtype=np.float64).reshape(len(images), *_picture(images[0]).shape)
    fig, axes = _subplots(1, 3, figsize=(15, 4.3), layout="constrained")
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
