"""Figures shared by the chapters: one style (:func:`setup`), mammograms with finding boxes and
lesion outlines, heat maps over mammograms (attributions, CorRELAX maps), ROC curves,
confusion tables and training curves.

Used by chapter 00 (cohort gallery, preprocessing steps, observer ROC, learnability) and by
chapters 01-05.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

#: Figure resolution of every chapter (screen and saved PNGs).
DPI = 110

LABEL_COLOURS = {
    "mass": "tab:red",
    "calcification": "tab:orange",
    "architectural_distortion": "tab:purple",
    "asymmetry": "tab:cyan",
    "lymph_node": "tab:green",
    "skin_thickening": "tab:olive",
    "retraction": "tab:pink",
}


def show_mammogram(ax, image, findings: Iterable[dict] = (), *, masks=None, title=None):
    """Draw ``image`` (grey, bright = dense) with its finding boxes and optional mask outlines.

    ``findings`` are manifest finding dicts (pixel boxes); ``masks`` an optional list of
    boolean arrays drawn as contours in the colour of the matching finding.
    """
    from matplotlib.patches import Rectangle

    image = np.asarray(image)
    if image.ndim != 2 and not (image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"expected a 2-D or (H, W, 3) image, got shape {image.shape}")
    ax.imshow(image, cmap="gray", interpolation="lanczos")
    findings = list(findings)
    for k, f in enumerate(findings):
        colour = LABEL_COLOURS.get(f["label"], "yellow")
        ax.add_patch(
            Rectangle(
                (f["xmin"], f["ymin"]),
                f["xmax"] - f["xmin"],
                f["ymax"] - f["ymin"],
                fill=False,
                edgecolor=colour,
                linewidth=1.2,
                linestyle="-" if f.get("malignant") else "--",
            )
        )
        if masks is not None and k < len(masks) and masks[k] is not None:
            ax.contour(np.asarray(masks[k], float), levels=[0.5], colors=[colour], linewidths=0.7)
    if title:
        ax.set_title(title, fontsize=8)
    ax.set_axis_off()
    return ax


def legend_handles(labels: Iterable[str] | None = None):
    """Legend entries for the finding colours (solid = malignant, dashed = benign)."""
    from matplotlib.lines import Line2D

    labels = list(labels) if labels is not None else list(LABEL_COLOURS)
    handles = [Line2D([], [], color=LABEL_COLOURS[name], label=name) for name in labels]
    handles.append(Line2D([], [], color="k", linestyle="-", label="malignant"))
    handles.append(Line2D([], [], color="k", linestyle="--", label="benign"))
    return handles


def setup(dpi: int = DPI, *, context: str = "notebook") -> None:
    """One look for every chapter: seaborn's white grid, ``dpi`` on screen and in PNGs."""
    import matplotlib as mpl
    import seaborn as sns

    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 30 <= dpi <= 600:
        raise ValueError(f"dpi must be an integer in 30..600, got {dpi!r}")
    sns.set_theme(style="whitegrid", context=context)
    mpl.rcParams.update(
        {
            "figure.dpi": dpi,
            "savefig.dpi": dpi,
            "savefig.bbox": "tight",
            "image.interpolation": "lanczos",
            "axes.titlesize": "medium",
        }
    )


def plot_roc(ax, y_true, scores, *, label: str | None = None, chance: bool = True, **line):
    """ROC curve of binary labels and scores on ``ax``, labelled with its AUC.

    The curve and the AUC come from scikit-learn (``roc_curve``, ``roc_auc_score``); returns
    the AUC. Extra keyword arguments go to ``ax.plot``.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"y_true {y.shape} and scores {s.shape} must be 1-D of equal length")
    if len(np.unique(y)) != 2:
        raise ValueError(f"an ROC curve needs both classes; y_true holds {np.unique(y).tolist()}")
    fpr, tpr, _ = roc_curve(y, s)
    auc = float(roc_auc_score(y, s))
    text = f"AUC {auc:.2f}" if label is None else f"{label}: AUC {auc:.2f}"
    ax.plot(fpr, tpr, label=text, **line)
    if chance:
        ax.plot([0, 1], [0, 1], ":", color="0.5", lw=0.8)
    ax.set(
        xlabel="false-positive fraction", ylabel="true-positive fraction", xlim=(0, 1), ylim=(0, 1)
    )
    ax.legend(loc="lower right", fontsize="small")
    return auc


def show_heatmap(
    ax,
    image,
    heatmap,
    *,
    findings: Iterable[dict] = (),
    alpha: float = 0.45,
    cmap: str = "inferno",
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    colorbar: bool = True,
):
    """A map (attribution, correlation, prediction) over a mammogram, with finding boxes.

    ``heatmap`` must have the image's (rows, cols); pixels where it is NaN are left
    uncoloured. Returns the image artist of the map (for a shared colour bar).
    """
    image = np.asarray(image)
    heat = np.asarray(heatmap, dtype=float)
    if heat.shape != image.shape[:2]:
        raise ValueError(f"heatmap has shape {heat.shape}, the image {image.shape[:2]}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    show_mammogram(ax, image, findings, title=title)
    artist = ax.imshow(
        np.ma.masked_invalid(heat),
        cmap=cmap,
        alpha=alpha,
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
    )
    if colorbar:
        ax.figure.colorbar(artist, ax=ax, fraction=0.046, pad=0.02)
    return artist


def _first_complete_study(manifest, by: str, value) -> list:
    """Rows of the first study of class ``value`` whose image files are all on disk."""
    import os

    rows = manifest[manifest[by] == value]
    for _, study in rows.groupby("study_id", sort=False):
        if all(os.path.isfile(p) for p in study.path):
            return [rec for _, rec in study.iterrows()]
    return []


def exam_grid(manifest, classes=("A", "B", "C", "D"), *, by: str = "density", figsize=(10, 13)):
    """One exam per class of ``by`` (rows) in the radiologist's hanging order (columns),
    read from its DICOM files with :func:`mammo_helpers.io.read_dicom` (chapter 00).

    The exam shown is the first one of its class whose files are all present (a partly
    downloaded dataset still gets a figure); a class without one stays empty.
    """
    import matplotlib.pyplot as plt

    from mammo_helpers.io import read_dicom
    from mammo_helpers.vocab import HANGING_ORDER

    if by not in manifest.columns:
        raise ValueError(f"exam_grid: the manifest has no column {by!r}")
    fig, axes = plt.subplots(len(classes), 4, figsize=figsize, squeeze=False)
    for row, value in enumerate(classes):
        views = {(r.laterality, r.view): r for r in _first_complete_study(manifest, by, value)}
        for col, key in enumerate(HANGING_ORDER):
            ax = axes[row, col]
            ax.set_axis_off()
            rec = views.get(key)
            if rec is None:
                continue
            title = f"{value} · {''.join(key)} · {rec.site} {rec.modality}"
            show_mammogram(ax, read_dicom(rec.path).pixels, rec.findings, title=title)
    fig.tight_layout()
    return fig


def pipeline_panels(panels, findings, *, figsize=(15, 4.5)):
    """The same image at several preprocessing steps, its finding boxes moved along.

    ``panels`` is a list of ``(title, image, box_transform)``; ``box_transform`` is None for
    the original image (chapter 00: the pipelines of papers 02, 03 and 05 side by side).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=figsize, squeeze=False)
    for ax, (title, image, transform) in zip(axes[0], panels, strict=True):
        image = np.asarray(image, dtype=float)
        if image.ndim == 3:  # CLAHE fusion shown as RGB
            image = image / max(float(image.max()), 1e-6)
        moved = list(findings) if transform is None else transform.findings(list(findings))
        show_mammogram(ax, image, moved, title=title)
    fig.tight_layout()
    return fig


def plot_confusion(ax, table, *, title: str | None = None):
    """A confusion table (true class in rows, predicted in columns, e.g.
    :func:`mammo_helpers.metrics.confusion`) as a heat map of row shares (recall per true
    class), each cell labelled with its count and share. Returns the row shares. Chapter 01
    and the classifiers of chapters 02-05."""
    counts = np.asarray(table, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or (counts < 0).any():
        raise ValueError(f"a confusion table is square and non-negative, got shape {counts.shape}")
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    labels = [str(v) for v in getattr(table, "index", range(len(counts)))]
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    ax.grid(False)
    for (i, j), n in np.ndenumerate(counts):
        colour = "white" if shares[i, j] > 0.6 else "black"
        ax.text(j, i, f"{int(n)}\n{shares[i, j]:.0%}", ha="center", va="center", color=colour)
    ticks = range(len(labels))
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return shares


def plot_history(ax, history, metrics=("loss",), *, best_epoch: int | None = None):
    """Per-epoch curves of a training :class:`mammo_helpers.training.History` (or its
    ``frame()``): one line per name in ``metrics``, the best epoch marked. Chapters 00-05."""
    frame = history.frame() if hasattr(history, "frame") else history
    missing = [m for m in metrics if m not in frame.columns]
    if missing:
        raise KeyError(f"history has no {missing}; it has {list(frame.columns)}")
    for name in metrics:
        ax.plot(frame["epoch"], frame[name], marker=".", label=name)
    best = getattr(history, "best_epoch", None) if best_epoch is None else best_epoch
    if best is not None:
        ax.axvline(best, ls="--", color="0.5", lw=0.8, label=f"best epoch {best}")
    ax.set(xlabel="epoch")
    ax.legend(fontsize="small")
