"""A manifest's images through a preprocessing pipeline, as one array, with class labels.

:func:`load_images` reads every image of a manifest (DICOM, VOI LUT applied) and keeps the
pipeline's model input; :func:`class_labels` turns a label column into class indices and
drops the images without a label, with a count. Chapter 01 (density); later chapters that
train on whole images.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

__all__ = ["class_labels", "load_images", "MissingLabelWarning"]


class MissingLabelWarning(UserWarning):
    """Images without a label were dropped."""


def load_images(
    manifest: pd.DataFrame,
    pipeline: Callable,
    *,
    progress: bool = True,
    desc: str = "images",
) -> np.ndarray:
    """``pipeline(pixels).output`` for every row of ``manifest`` (its ``path`` column), in
    row order, stacked as float32. A file that cannot be read is named with its image id."""
    from tqdm.auto import tqdm

    from mammo_helpers.io import DicomError, read_dicom

    out = []
    for rec in tqdm(manifest.itertuples(), total=len(manifest), desc=desc, disable=not progress):
        try:
            pixels = read_dicom(rec.path).pixels
        except (DicomError, OSError) as exc:
            raise type(exc)(f"image {rec.image_id!r} ({rec.path}): {exc}") from exc
        out.append(np.asarray(pipeline(pixels).output, dtype=np.float32))
    if not out:
        raise ValueError("load_images: the manifest has no row")
    return np.stack(out)


def class_labels(
    manifest: pd.DataFrame, column: str, classes: Sequence[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """``(kept, labels)``: the rows of ``manifest`` whose ``column`` holds a label, and the
    labels as indices into ``classes``. Rows without a label (empty or missing) are dropped
    and counted in a :class:`MissingLabelWarning` (and in ``kept.attrs["dropped_unlabelled"]``);
    a value that is not one of ``classes`` is an error naming the image and the value."""
    if column not in manifest.columns:
        raise KeyError(f"the manifest has no {column!r} column (columns: {list(manifest.columns)})")
    values = manifest[column]
    missing = values.isna() | values.astype(str).str.strip().eq("")
    unknown = ~missing & ~values.isin(list(classes))
    if unknown.any():
        rec = manifest[unknown].iloc[0]
        raise ValueError(
            f"image {rec.get('image_id', rec.name)!r}: {column} {rec[column]!r} is not one of "
            f"{list(classes)} ({int(unknown.sum())} such row(s))"
        )
    if missing.any():
        warnings.warn(
            f"{int(missing.sum())} of {len(manifest)} images have no {column} label and are "
            "left out",
            MissingLabelWarning,
            stacklevel=2,
        )
    kept = manifest[~missing].reset_index(drop=True)
    kept.attrs = {**manifest.attrs, "dropped_unlabelled": int(missing.sum())}
    index = {c: i for i, c in enumerate(classes)}
    return kept, kept[column].map(index).to_numpy(dtype=np.int64)
