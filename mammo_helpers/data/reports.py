"""Free-text reports for the phantom's images: the image-report corpus on which chapter 01
pre-trains its offline CLIP stand-in, standing in for BiomedCLIP's PubMed image-caption
pairs.

Each report names the modality, view, side and site and describes the tissue in words
that vary from report to report and follow the BI-RADS lexicon, as radiologists write
it; it never contains one of the paper's four prompts (``mh.vocab.DENSITY_PROMPTS``)
verbatim, so zero-shot classification with those prompts is a test of transfer, not of
recall. The wording is drawn with a seed: the same manifest and seed give the same texts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mammo_helpers.vocab import DENSITIES

__all__ = ["TISSUE_PHRASES", "density_reports"]

#: Ways of describing each density class's tissue (A, B, C, D).
TISSUE_PHRASES: dict[str, tuple[str, ...]] = {
    "A": (
        "the breast is almost entirely fatty",
        "predominantly fatty tissue with very little glandular tissue",
        "fatty replaced parenchyma",
        "the tissue is almost all fat",
        "mostly adipose, fatty breast tissue",
    ),
    "B": (
        "there are scattered areas of fibroglandular tissue",
        "a few scattered islands of fibroglandular density in fat",
        "mostly fatty tissue with scattered fibroglandular elements",
        "scattered fibroglandular densities",
        "fibroglandular tissue scattered through fat",
    ),
    "C": (
        "the breast tissue is heterogeneously dense, which may obscure small masses",
        "heterogeneously dense parenchyma",
        "patchy, heterogeneous dense glandular tissue",
        "moderately dense, heterogeneous fibroglandular tissue",
        "heterogeneously dense fibroglandular tissue",
    ),
    "D": (
        "the breast is extremely dense, which lowers the sensitivity of mammography",
        "extremely dense fibroglandular tissue",
        "the tissue is almost entirely dense",
        "uniformly very dense glandular tissue",
        "extremely dense parenchyma",
    ),
}
_MODALITY = {
    "DM": ("digital mammogram", "full-field digital mammography"),
    "s2D": ("synthesized 2D image", "synthetic 2D mammogram"),
    "DBT": ("tomosynthesis slice", "DBT central slice"),
}
_VIEW = {"CC": ("craniocaudal", "CC"), "MLO": ("mediolateral oblique", "MLO")}
_SIDE = {"L": "left", "R": "right"}
_FINDINGS = {
    False: ("No suspicious finding.", "No mass or calcification.", "Nothing suspicious."),
    True: ("A finding is marked.", "There is a finding to review.", "One lesion is annotated."),
}
_TEMPLATES = (
    "{modality}, {view} view of the {side} breast ({site}). {Tissue}. {findings}",
    "{Side} {view} {modality} from {site}: {tissue}. {findings}",
    "{site}, {side} breast, {view}. {Modality} shows {tissue}. {findings}",
)


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _report(row, rng) -> str:
    tissue = _pick(rng, TISSUE_PHRASES[row.density])
    modality = _pick(rng, _MODALITY[row.modality])
    side = _SIDE[row.laterality]
    return _pick(rng, _TEMPLATES).format(
        modality=modality,
        Modality=modality[0].upper() + modality[1:],
        view=_pick(rng, _VIEW[row.view]),
        side=side,
        Side=side.capitalize(),
        site=str(row.site).replace("_", " "),
        tissue=tissue,
        Tissue=tissue[0].upper() + tissue[1:],
        findings=_pick(rng, _FINDINGS[bool(len(row.findings))]),
    )


def density_reports(manifest: pd.DataFrame, *, seed: int = 0) -> list[str]:
    """One report per manifest row, described by its reader density (column ``density``).
    Rows need modality, view, laterality, site, density and findings. Chapter 01."""
    need = ["modality", "view", "laterality", "site", "density", "findings"]
    missing = [c for c in need if c not in manifest.columns]
    if missing:
        raise ValueError(f"density_reports: the manifest lacks column(s) {', '.join(missing)}")
    bad = ~manifest["density"].isin(DENSITIES)
    if bad.any():
        first = manifest.index[bad.to_numpy()][0]
        raise ValueError(
            f"density_reports: {int(bad.sum())} row(s) have no density A-D "
            f"(first: row {first}, {manifest.loc[first, 'density']!r}); drop them first"
        )
    rng = np.random.default_rng(seed)
    return [_report(row, rng) for row in manifest.itertuples(index=False)]
