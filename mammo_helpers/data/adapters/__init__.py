"""Adapters that turn public mammography datasets into the project manifest (notebook 00 data).

Each loader takes the dataset's top folder as distributed and returns a validated manifest
(``mammo_helpers.data.manifest.validate_manifest``) with absolute image paths, ``source`` set
to the dataset name, ``df.attrs["dropped"]`` (DataFrame: level 'image' | 'finding' | 'row' | 'value',
source_file, source_row = 0-based data row of that file, image_id, reason) and
``df.attrs["notes"]`` (counts of fixes that kept the data, e.g. clipped boxes); one
``AdapterWarning`` summarises both (none if nothing was dropped or fixed). Level 'value' marks a
cell that could not be read and was set to missing while its image was kept (one rule for every
adapter and column, see ``_common``). A missing folder or metadata file raises
``FileNotFoundError`` naming it (invisible whitespace in the path is pointed out); an empty or
header-only CSV and a missing column raise ``ValueError`` naming the file (and the column and
the columns it has). ``views`` (every loader and :func:`load_dataset`) chooses the view codes
kept: CC/MLO by default, ``None`` for every code in ``vocab.ALL_VIEWS`` (e.g. density on every
view). The loaders work on whole columns: the real VinDr-Mammo, RSNA and EMBED tables load in
seconds. The per-dataset rules are in each module's docstring.
"""

from __future__ import annotations

import os

from mammo_helpers.data.adapters._common import AdapterWarning
from mammo_helpers.data.adapters.cbis_ddsm import load_cbis_ddsm
from mammo_helpers.data.adapters.embed import load_embed
from mammo_helpers.data.adapters.inbreast import load_inbreast
from mammo_helpers.data.adapters.rsna import load_rsna
from mammo_helpers.data.adapters.vindr import load_vindr
from mammo_helpers.vocab import VIEWS

LOADERS = {
    "vindr": load_vindr,
    "cbis_ddsm": load_cbis_ddsm,
    "rsna": load_rsna,
    "embed": load_embed,
    "inbreast": load_inbreast,
}

__all__ = [
    "LOADERS",
    "AdapterWarning",
    "load_cbis_ddsm",
    "load_dataset",
    "load_embed",
    "load_inbreast",
    "load_rsna",
    "load_vindr",
]


def load_dataset(
    name: str,
    root: str | os.PathLike,
    *,
    views: tuple[str, ...] | None = VIEWS,
    **kwargs,
):
    """Manifest of dataset ``name`` ('vindr', 'cbis_ddsm', 'rsna', 'embed', 'inbreast').

    ``views``: the view codes kept (default CC/MLO; ``None``: every code in
    ``vocab.ALL_VIEWS``); other keyword arguments go to the dataset's loader.
    """
    key = str(name).lower().replace("-", "_")
    if key not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(LOADERS)}")
    return LOADERS[key](root, views=views, **kwargs)
