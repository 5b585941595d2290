"""The report's figures: each function takes plain arrays and returns a matplotlib Figure (Agg, no display).

Nothing here computes a metric; the numbers arrive from report.py, which takes them from evaluate().
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm, PowerNorm  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

SPLIT_COLORS = {"train": "#4c72b0", "val": "#dd8452", "test": "#55a868"}
HIGHLIGHT = ["#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]


def label(ch: str) -> str:
    """A class character as matplotlib text: '$' would start mathtext."""
    return ch.replace("$", r"\$")


def class_axis_size(num_classes: int, per_class: float = 0.2, minimum: float = 4.0) -> float:
    """Inches for an axis that carries one tick label per class (47 and 62 classes stay readable)."""
    return max(minimum, per_class * num_classes)


# ----------------------------------------------------------------------------------------------- data
def class_distribution(counts: dict[str, np.ndarray], classes: list[str]):
    """Grouped bars: images per class in each part, labelled with the characters."""
    c = len(classes)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.24 * c + 1.5), 3.4), layout="constrained")
    width = 0.8 / len(counts)
    for k, (part, n) in enumerate(counts.items()):
        ax.bar(np.arange(c) + (k - (len(counts) - 1) / 2) * width, n, width, label=f"{part} ({n.sum():,})",
               color=SPLIT_COLORS.get(part))
    ax.set_xticks(np.arange(c), [label(ch) for ch in classes], fontsize=8 if c > 30 else 10)
    ax.set_xlim(-0.6, c - 0.4)
    ax.set_ylim(0, 1.18 * max(int(n.max()) for n in counts.values()))  # room for the legend above the bars
    ax.set_ylabel("images")
    ax.set_title("Class distribution")
    ax.legend(fontsize=8, ncols=len(counts))
    return fig


def pixel_intensity(histograms: dict[str, np.ndarray], mean_image: np.ndarray):
    """Share of pixels at each value per part (log scale), and the mean training image."""
    fig, (ax, ax_img) = plt.subplots(1, 2, figsize=(9, 3.2), width_ratios=[3, 1], layout="constrained")
    for part, h in histograms.items():  # 0 (background) dwarfs the rest: its share goes into the legend
        share = h / h.sum()
        ax.step(np.arange(1, 256), share[1:], where="mid", label=f"{part} (value 0: {share[0]:.0%})",
                color=SPLIT_COLORS.get(part), lw=1.0)
    ax.set_yscale("log")
    ax.set_xlim(1, 255)
    ax.set_xlabel("pixel value 1..255 (0 = background, 255 = ink)")
    ax.set_ylabel("share of pixels")
    ax.set_title("Pixel-intensity distribution")
    ax.legend(fontsize=8)
    ax_img.imshow(mean_image, cmap="gray", vmin=0, vmax=255)
    ax_img.set_title("mean training image", fontsize=9)
    ax_img.axis("off")
    return fig


def mosaic(rows: list[np.ndarray], columns: int, pad: int = 2) -> np.ndarray:
    """Rows of uint8 28×28 images (each row up to `columns` images) -> one image with `pad` gaps."""
    h = len(rows) * (28 + pad) + pad
    w = columns * (28 + pad) + pad
    out = np.full((h, w), 60, dtype=np.uint8)  # grey gaps: distinct from the black background
    for r, images in enumerate(rows):
        for c, im in enumerate(images[:columns]):
            y, x = pad + r * (28 + pad), pad + c * (28 + pad)
            out[y:y + 28, x:x + 28] = im
    return out


def image_rows(rows: list[np.ndarray], row_labels: list[str], columns: int, title: str, inch_per_row=0.42):
    """A mosaic with one labelled row per entry (classes, confused pairs)."""
    grid = mosaic(rows, columns)
    fig, ax = plt.subplots(figsize=(0.42 * columns + 1.6, inch_per_row * len(rows) + 0.7), layout="constrained")
    ax.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_yticks(2 + np.arange(len(rows)) * 30 + 14, row_labels, fontsize=9)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title)
    return fig


# ----------------------------------------------------------------------------------------------- training
def training_curves(rows: list[dict], kept_epoch: int, panels: list, throughput: tuple[str, str]):
    """Per epoch: two panels of metrics, the learning rate (at epoch start) and throughput. A panel is (title,
    its series as (label, row key), the kept model's (label, value) starred at the kept epoch or None, log scale);
    a series's colour is its split's (the label's first word). Character and line runs draw theirs with it."""
    epoch = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), layout="constrained")
    for ax, (title, series, kept, log) in zip(axes[0], panels):
        for name, key in series:
            if any(key in r for r in rows):
                ax.plot(epoch, [r.get(key, np.nan) for r in rows], "o-", label=name,
                        color=SPLIT_COLORS.get(name.split()[0], "#555"))
        if kept is not None:
            ax.plot([kept_epoch], [kept[1]], "*", ms=16, color=SPLIT_COLORS["test"],
                    label=f"{kept[0]} (kept model): {kept[1]:.4f}")
        if log:
            ax.set_yscale("log")
        ax.set_title(title)
    lr = [r["lr"] for r in rows]
    axes[1, 0].plot(epoch, lr, "o-", color="#555")
    if min(lr) > 0 and max(lr) / min(lr) > 10:
        axes[1, 0].set_yscale("log")
    axes[1, 0].set_title("Learning rate (at epoch start)")
    key, unit = throughput
    axes[1, 1].plot(epoch, [r[key] for r in rows], "o-", color="#555")
    axes[1, 1].set_title(f"Training throughput ({unit})")
    axes[1, 1].set_ylim(bottom=0)
    for ax in axes.flat:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return fig


# ----------------------------------------------------------------------------------------------- confusion
def confusion(cm: np.ndarray, classes: list[str], normalized: bool):
    """Counts (log colour scale, so rare confusions show) or row-normalised (recall on the diagonal)."""
    c = len(classes)
    size = class_axis_size(c, 0.2, 4.5)
    fig, ax = plt.subplots(figsize=(size + 1.8, size + 0.9), layout="constrained")
    if normalized:
        values = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        im = ax.imshow(values, cmap="Blues", norm=PowerNorm(0.5, vmin=0, vmax=1))
        bar_label = "share of the true class (square-root colour scale)"
    else:
        values = cm
        im = ax.imshow(np.where(cm > 0, cm, np.nan), cmap="Blues", norm=LogNorm(vmin=1, vmax=max(2, cm.max())))
        bar_label = "images (log colour scale)"
    if c <= 20:  # numbers in the cells only while they fit
        for (i, j), v in np.ndenumerate(values):
            if cm[i, j]:
                text = f"{v:.2f}" if normalized else str(v)
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if (v > 0.5 * values.max()) else "black")
    ticks = [label(ch) for ch in classes]
    font = 7 if c > 30 else 9
    ax.set_xticks(range(c), ticks, fontsize=font)
    ax.set_yticks(range(c), ticks, fontsize=font)
    ax.tick_params(top=True, labeltop=True)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix, row-normalised" if normalized else "Confusion matrix, counts")
    fig.colorbar(im, ax=ax, shrink=0.6, label=bar_label)
    return fig


# ----------------------------------------------------------------------------------------------- curves
def one_vs_rest(curves: list[tuple[np.ndarray, np.ndarray]], scores: np.ndarray, classes: list[str],
                averages: dict[str, tuple[np.ndarray, np.ndarray, float]], kind: str):
    """ROC (kind='roc', x=FPR on a log scale) or precision-recall (kind='pr') curves, one per class in grey,
    the five worst classes by `scores` (AUC or average precision) in colour, and the averages in black."""
    fig, ax = plt.subplots(figsize=(7.5, 5.5), layout="constrained")
    finite = np.isfinite(scores)
    order = np.argsort(np.where(finite, scores, np.inf))
    worst = [int(i) for i in order[:min(5, int(finite.sum()))]]
    metric = "AUC" if kind == "roc" else "AP"
    if kind == "roc":  # FPR 0 has no place on a log axis: draw it at the axis' left edge
        curves = [(None, None) if x is None else (np.maximum(x, 1e-4), y) for x, y in curves]
        averages = {k: (np.maximum(x, 1e-4), y, s) for k, (x, y, s) in averages.items()}
    for i, (x, y) in enumerate(curves):
        if x is not None and i not in worst:
            ax.plot(x, y, color="#bbbbbb", lw=0.7)
    ax.plot([], [], color="#bbbbbb", lw=0.7, label=f"each class ({len(classes)})")
    for colour, i in zip(HIGHLIGHT, worst):
        x, y = curves[i]
        ax.plot(x, y, color=colour, lw=1.6, label=f"worst: '{label(classes[i])}' {metric} {scores[i]:.4f}")
    for style, (name, (x, y, score)) in zip(("-", "--"), averages.items()):
        ax.plot(x, y, style, color="black", lw=1.6, label=f"{name} {metric} {score:.4f}")
    if kind == "roc":
        ax.set_xscale("log")
        ax.set_xlim(1e-4, 1)
        ax.set_xlabel("false positive rate (log scale)")
        ax.set_ylabel("true positive rate")
        ax.set_title("ROC, one class vs the rest")
    else:
        ax.set_xlim(0, 1)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title("Precision-recall, one class vs the rest")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right" if kind == "roc" else "lower left")
    return fig


def reliability(bin_confidence: np.ndarray, bin_accuracy: np.ndarray, bin_count: np.ndarray, edges: np.ndarray,
                ece: float):
    """Accuracy against confidence per bin, the gap shaded, and how many predictions fall in each bin."""
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(6, 6.2), height_ratios=[3, 1], sharex=True, layout="constrained")
    centers, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    filled = bin_count > 0
    ax.bar(centers[filled], bin_accuracy[filled], width[filled], color="#4c72b0", edgecolor="white",
           label="accuracy")
    ax.bar(centers[filled], bin_confidence[filled] - bin_accuracy[filled], width[filled],  # either direction
           bottom=bin_accuracy[filled], facecolor="none", edgecolor="#d62728", hatch="///", lw=0.8,
           label="gap between accuracy and mean confidence")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability diagram — expected calibration error {ece:.4f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper left")
    ax_n.bar(centers, bin_count, width, color="#888", edgecolor="white")
    ax_n.set_yscale("log")
    ax_n.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax_n.yaxis.set_minor_formatter(NullFormatter())
    ax_n.set_xlabel("confidence (highest predicted probability)")
    ax_n.set_ylabel("predictions")
    return fig


# ----------------------------------------------------------------------------------------------- images
# Galleries are drawn as one image with text on it, not one axes per tile: a hundred axes take seconds to lay out.
TILE, GAP, BAND = 28, 3, 11  # tile size, gap between tiles, caption band above each tile (pixels)


def colored(img: np.ndarray, cmap: str = "gray", vmin: float | None = None, vmax: float | None = None):
    """A 2-D array -> RGB in [0, 1] through a colormap, resized (nearest) to TILE×TILE."""
    h, w = img.shape
    img = img[np.arange(TILE) * h // TILE][:, np.arange(TILE) * w // TILE].astype(np.float64)
    lo = img.min() if vmin is None else vmin
    hi = img.max() if vmax is None else vmax
    return plt.get_cmap(cmap)(np.clip((img - lo) / max(hi - lo, 1e-12), 0, 1))[..., :3]


def gray(img_u8: np.ndarray) -> np.ndarray:
    return colored(img_u8, "gray", 0, 255)


def overlay(img_u8: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """A heat map in [0, 1] blended over the grey image."""
    return (1 - alpha) * gray(img_u8) + alpha * colored(heat, "jet", 0, 1)


def tiles(grid: list[list[np.ndarray | None]], titles: list[list[str]], title: str,
          row_labels: list[str] | None = None, inch: float = 0.8):
    """Rows of RGB tiles (None = empty), a caption above each, optional labels left of the rows."""
    n_rows, n_cols = len(grid), max(len(r) for r in grid)
    cell_w, cell_h = TILE + GAP, TILE + GAP + BAND
    canvas = np.ones((n_rows * cell_h + GAP, n_cols * cell_w + GAP, 3))
    for r, row in enumerate(grid):
        for c, tile in enumerate(row):
            if tile is not None:
                y, x = r * cell_h + BAND + GAP, c * cell_w + GAP
                canvas[y:y + TILE, x:x + TILE] = tile
    left = 1.3 if row_labels else 0.1
    top = 0.35  # inches for the title
    fig = plt.figure(figsize=(inch * n_cols * cell_w / TILE + left, inch * n_rows * cell_h / TILE + top))
    ax = fig.add_axes((left / fig.get_figwidth(), 0.01, 1 - (left + 0.05) / fig.get_figwidth(),
                       1 - top / fig.get_figheight() - 0.01))
    ax.imshow(canvas, interpolation="nearest", aspect="equal")
    for r, row in enumerate(titles):
        for c, text in enumerate(row):
            if text:
                ax.text(c * cell_w + GAP + TILE / 2, r * cell_h + GAP + BAND / 2 + 1, text, ha="center",
                        va="center", fontsize=6.5)
    ax.set_xticks([])
    ax.set_yticks([r * cell_h + GAP + BAND + TILE / 2 for r in range(n_rows)] if row_labels else [],
                  row_labels or [], fontsize=8)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.suptitle(title, fontsize=10, y=0.995, va="top")
    return fig


def wrap(items: list, columns: int) -> list[list]:
    return [items[i:i + columns] for i in range(0, len(items), columns)] or [[]]


def image_grid(images: list[np.ndarray], titles: list[str], columns: int, title: str):
    """uint8 images with a caption each (the error gallery)."""
    return tiles(wrap([gray(im) for im in images], columns), wrap(titles, columns), title)


def filters(kernels: np.ndarray, layer: str):
    """First-layer filters (out×in×k×k, averaged over inputs) on one symmetric colour scale."""
    weights = kernels.mean(1)
    limit = float(np.abs(weights).max()) or 1.0
    images = [colored(w, "RdBu_r", -limit, limit) for w in weights]
    columns = min(16, len(images))
    return tiles(wrap(images, columns), wrap([str(i) for i in range(len(images))], columns),
                 f"First-layer filters ({layer}, {kernels.shape[2]}×{kernels.shape[3]}; red positive, blue negative)")


def activation_maps(inputs: list[np.ndarray], input_titles: list[str], maps: np.ndarray, channels: list[list[int]],
                    layer: str, total_channels: int):
    """One row per input: the image, then the chosen channels of one convolution layer's output."""
    n, k, h, w = maps.shape
    grid = [[gray(inputs[r])] + [colored(maps[r, c], "viridis", min(0.0, maps[r, c].min()))
                                 for c in range(k)] for r in range(n)]
    titles = [[input_titles[r]] + [f"ch {ch}" for ch in channels[r]] for r in range(n)]
    which = "all channels" if k == total_channels else f"the {k} strongest of {total_channels} channels per input"
    return tiles(grid, titles, f"{layer}: {which} ({h}×{w}, each scaled to its own maximum)")


def attributions(groups: list[tuple[str, list[np.ndarray], list[np.ndarray], list[np.ndarray], list[str]]]):
    """Per group (correct / wrong): a row of inputs, their saliency maps and their Grad-CAM overlays."""
    grid, titles, labels = [], [], []
    for name, images, saliency, cams, captions in groups:
        grid += [[gray(im) for im in images], [colored(s, "hot", 0, 1) for s in saliency],
                 [overlay(im, cam) for im, cam in zip(images, cams)]]
        titles += [captions, [], []]
        labels += [f"{name}: input", "saliency", "Grad-CAM"]
    return tiles(grid, titles, "What the model looks at for its predicted class", row_labels=labels)
