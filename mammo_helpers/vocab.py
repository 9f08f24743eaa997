"""The words every module agrees on: lateralities, views, the four-view orders, modalities,
density classes, finding labels and paper 04's lesion classes (one definition each).

Used by the manifest schema, the DICOM reader/writer, the dataset adapters, the phantom,
the preprocessing pipelines and every chapter (00-05).
"""

from __future__ import annotations

LATERALITIES: tuple[str, ...] = ("L", "R")
#: The two standard screening views (craniocaudal, mediolateral oblique).
VIEWS: tuple[str, ...] = ("CC", "MLO")
#: Every mammographic view a manifest may hold when an adapter is asked to keep more than the
#: two standard ones (ACR/DICOM view codes): mediolateral, lateromedial, lateromedial oblique,
#: superolateral-inferomedial oblique, exaggerated CC (lateral / medial), from below,
#: cleavage, axillary tail.
ALL_VIEWS: tuple[str, ...] = VIEWS + ("ML", "LM", "LMO", "SIO", "XCCL", "XCCM", "FB", "CV", "AT")
#: The views of a screening exam in the order of a four-view model's inputs, as paper 04
#: (Wimmer et al., §III-A) writes the set: L-CC, L-MLO, R-CC, R-MLO.
FOUR_VIEWS: tuple[tuple[str, str], ...] = (("L", "CC"), ("L", "MLO"), ("R", "CC"), ("R", "MLO"))
#: The same views as a radiologist hangs them (paper 04, Fig. 1): R-CC, L-CC, R-MLO, L-MLO.
HANGING_ORDER: tuple[tuple[str, str], ...] = (
    ("R", "CC"),
    ("L", "CC"),
    ("R", "MLO"),
    ("L", "MLO"),
)
MODALITIES: tuple[str, ...] = ("DM", "s2D", "DBT")
#: BI-RADS breast density classes (A fatty ... D extremely dense).
DENSITIES: tuple[str, ...] = ("A", "B", "C", "D")
#: The four text prompts of paper 01 (Cavalcante et al., §2.2), verbatim, in DENSITIES order.
DENSITY_PROMPTS: tuple[str, ...] = (
    "fatty or almost entirely fatty breasts",
    "scattered areas of fibroglandular density",
    "heterogeneously dense breasts",
    "extremely dense breasts",
)
FINDING_LABELS: tuple[str, ...] = (
    "mass",
    "calcification",
    "asymmetry",
    "architectural_distortion",
    "lymph_node",
    "skin_thickening",
    "retraction",
)
#: The four classes of paper 04's lesion localisation model L (Wimmer et al., §II-B.3), in
#: this order: a lesion's CBIS-DDSM family (``LESION_FAMILIES``) and its pathology.
LESION_CLASSES: tuple[str, ...] = (
    "benign_calcification",
    "malignant_calcification",
    "benign_mass",
    "malignant_mass",
)
#: The CBIS-DDSM family (mass or calcification) of a finding label. CBIS-DDSM files
#: architectural distortions and (focal) asymmetries as mass shapes in its mass CSVs
#: ("ARCHITECTURAL_DISTORTION", "ASYMMETRIC_BREAST_TISSUE", "FOCAL_ASYMMETRIC_DENSITY"), so
#: they count as masses. The other labels (lymph_node, skin_thickening, retraction) have no
#: family: paper 04's models do not know them.
LESION_FAMILIES: dict[str, str] = {
    "mass": "mass",
    "calcification": "calcification",
    "architectural_distortion": "mass",
    "asymmetry": "mass",
}


def check_choice(value, choices: tuple[str, ...], name: str) -> str:
    """``value`` if it is one of ``choices``; otherwise ``ValueError`` naming ``name``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def check_laterality(value, name: str = "laterality") -> str:
    """'L' or 'R', else ``ValueError`` naming the argument."""
    return check_choice(value, LATERALITIES, name)


def check_view(value, name: str = "view") -> str:
    """'CC' or 'MLO', else ``ValueError`` naming the argument."""
    return check_choice(value, VIEWS, name)
