"""Figures shared by the notebooks: mammograms with finding boxes and lesion outlines.

Used by notebook 00 (cohort gallery, preprocessing steps) and later chapters.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

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
