"""Four-view exams (paper 04's *cases*), their targets and the case-level split (chapter 04).

Paper 04 (Wimmer et al., "Multi-task fusion", §II) works on *exams*: the four views L-CC,
L-MLO, R-CC, R-MLO of one patient's screening study (:data:`~mammo_helpers.vocab.FOUR_VIEWS`
order, the input order of every four-view model). This module turns an image manifest into
that table and draws the paper's split:

* :func:`exam_table`: one row per study with its four image ids and targets: the density
  superclass (fatty a+b / dense c+d, §II-B.1), *lesion* (any finding in any view, §II-C),
  *malignant* (any malignant finding), the lesion type and the pathology of Table II.
* :func:`lesion_class` / :func:`image_lesion_classes`: the four classes of the lesion
  localisation model L (:data:`~mammo_helpers.vocab.LESION_CLASSES`, §II-B.3).
* :func:`split_exams`: train / validation / test on case level (§III-A.3), grouped by
  patient and stratified by density superclass x lesion type x pathology; an official
  train/test split (CBIS-DDSM's) is kept and only the validation cases are drawn.
* :func:`table2` and :data:`PAPER_TABLE2`: Table II for our data and the paper's numbers.

Only the four standard views count: images of other views (ML, XCCL, ...) are ignored.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mammo_helpers.data import manifest as _manifest
from mammo_helpers.data import splits as _splits
from mammo_helpers.vocab import DENSITIES, FOUR_VIEWS, LESION_CLASSES, LESION_FAMILIES

#: The image id columns of an exam table, in FOUR_VIEWS order (L-CC, L-MLO, R-CC, R-MLO).
VIEW_COLUMNS: tuple[str, ...] = tuple(f"image_{side}_{view}" for side, view in FOUR_VIEWS)
#: Paper 04's density superclasses (§II-B.1): fatty = BI-RADS a+b, dense = c+d.
FATTY_DENSITIES: tuple[str, ...] = DENSITIES[:2]
DENSE_DENSITIES: tuple[str, ...] = DENSITIES[2:]
#: The values of an exam's ``lesion_type`` (by CBIS-DDSM family over all its findings).
LESION_TYPES: tuple[str, ...] = ("normal", "mass", "calcification", "mass+calcification")
#: The values of an exam's ``pathology``: malignant if any finding is, else benign if it has
#: a finding, else normal (Table II's pathology rows add up to the cases).
PATHOLOGIES: tuple[str, ...] = ("normal", "benign", "malignant")
#: Table II's column names for the split values train, val, test.
TABLE2_COLUMNS: dict[str, str] = {"train": "Train", "val": "Validation", "test": "Test"}

_EXAM_KEYS = ["patient_id", "study_id"]
_REQUIRED = ("patient_id", "study_id", "image_id", "laterality", "view", "density", "findings")
_CARRIED = ("site", "split")
_OFFICIAL_SPLITS = ("train", "test")
_EXAMS_HINT = " (pass the table of exam_table)"


# --------------------------------------------------------------------------- lesion classes
def lesion_class(finding: dict, where: str = "") -> str:
    """The localisation model's class of one finding (one of ``vocab.LESION_CLASSES``):
    its label's CBIS-DDSM family (``vocab.LESION_FAMILIES``) and its ``malignant`` flag.

    ``ValueError`` naming ``where`` (e.g. ``"image 'p1_L_CC'"``) and the label for a label
    without a family (lymph_node, skin_thickening, retraction) or an unknown pathology
    (``malignant`` None). Chapter 04.
    """
    prefix = f"{where}: " if where else ""
    if not isinstance(finding, dict):
        raise ValueError(f"{prefix}a finding must be a dict, got {type(finding).__name__}")
    label = finding.get("label")
    family = LESION_FAMILIES.get(label) if isinstance(label, str) else None
    if family is None:
        raise ValueError(
            f"{prefix}unknown lesion class {label!r}: paper 04's localisation model knows "
            f"masses and calcifications only; known: {', '.join(LESION_FAMILIES)}"
        )
    malignant = finding.get("malignant")
    if malignant is None:
        raise ValueError(
            f"{prefix}finding {label!r} has pathology unknown (malignant=None); the lesion "
            "classes need benign or malignant"
        )
    if not isinstance(malignant, bool | np.bool_):
        raise ValueError(f"{prefix}finding {label!r}: malignant={malignant!r} is not True/False")
    return f"{'malignant' if malignant else 'benign'}_{family}"


#: Class index of each lesion class, 0 left for the background: the detector's labels
#: (chapter 04) and End2End's patch classes (chapter 05, ``mh.models.end2end.PATCH_CLASSES``).
LESION_CLASS_INDEX: dict[str, int] = {name: i + 1 for i, name in enumerate(LESION_CLASSES)}


def lesion_class_index(finding: dict, where: str = "") -> int:
    """``LESION_CLASS_INDEX`` of the finding's :func:`lesion_class` (errors as there)."""
    return LESION_CLASS_INDEX[lesion_class(finding, where)]


def _image_classes(df: pd.DataFrame) -> list[list[str]]:
    """The lesion classes of each row's findings (in finding order), raising per image."""
    out = []
    for image_id, cell in zip(df["image_id"], df["findings"], strict=True):
        where = f"image {image_id!r}"
        if not isinstance(cell, list):
            raise ValueError(f"{where}: findings must be a list ([] for none), got {cell!r}")
        out.append([lesion_class(f, where) for f in cell])
    return out


def image_lesion_classes(manifest: pd.DataFrame) -> pd.Series:
    """The lesion class of every finding of every image (index ``image_id``, a list per
    image in the order of its findings, so it pairs with the finding boxes; ``[]`` for a
    normal image): the detector's targets. All rows of the manifest count. Chapter 04."""
    _require_columns(manifest, ("image_id", "findings"), "image_lesion_classes")
    classes = _image_classes(manifest)
    index = pd.Index(manifest["image_id"], name="image_id")
    return pd.Series(classes, index=index, name="lesion_classes", dtype=object)


def dense_superclass(density) -> float:
    """Paper 04's density superclass as a number: 0.0 fatty (A, B), 1.0 dense (C, D), NaN
    when the density is missing; ``ValueError`` for anything else. Chapter 04."""
    if density is None or density is pd.NA or (isinstance(density, float) and math.isnan(density)):
        return math.nan
    if density in FATTY_DENSITIES:
        return 0.0
    if density in DENSE_DENSITIES:
        return 1.0
    raise ValueError(f"density must be one of {', '.join(DENSITIES)} or missing; got {density!r}")


# --------------------------------------------------------------------------- exam table
def _require_columns(df: pd.DataFrame, columns, caller: str, hint: str = "") -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{caller} expects a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{caller}: column(s) {', '.join(map(repr, missing))} missing{hint}")


def _study(study_id, patient_id) -> str:
    return f"study {study_id!r} (patient {patient_id!r})"


def _check_one_patient(df: pd.DataFrame) -> None:
    patients = df.groupby("study_id", sort=True)["patient_id"].unique()
    mixed = patients[patients.map(len) > 1]
    if len(mixed):
        study, ids = mixed.index[0], sorted(mixed.iloc[0])
        raise _manifest.ManifestError(
            f"exam {study!r} mixes patients {', '.join(map(repr, ids))}: a study_id must "
            f"belong to one patient ({len(mixed)} such study id(s))"
        )


def _check_one_image_per_view(four: pd.DataFrame) -> None:
    keys = _EXAM_KEYS + ["laterality", "view"]
    dup = four[four.duplicated(keys, keep=False)].sort_values(keys + ["image_id"])
    if len(dup):
        first = dup.iloc[0]
        same = dup[(dup[keys] == first[keys]).all(axis=1)]
        raise _manifest.ManifestError(
            f"{_study(first['study_id'], first['patient_id'])} has {len(same)} "
            f"{first['laterality']}-{first['view']} images: "
            f"{', '.join(map(repr, same['image_id']))}; an exam needs one image per view "
            "(keep one, e.g. drop a second copy of the same film)"
        )


def _one_value(four: pd.DataFrame, column: str, what: str) -> pd.Series:
    """The single non-missing value of ``column`` per study (NaN if none), else an error."""
    values = four.dropna(subset=[column]).groupby(_EXAM_KEYS, sort=True)[column].unique()
    bad = values[values.map(len) > 1]
    if len(bad):
        (study_key, found) = next(iter(bad.items()))
        shown = ", ".join(map(repr, sorted(map(str, found))))
        raise _manifest.ManifestError(
            f"{_study(study_key[1], study_key[0])}: its views disagree on {what} ({shown}); an "
            f"exam has one {what}"
        )
    return values.map(lambda v: v[0])


def _exam_targets(four: pd.DataFrame) -> pd.DataFrame:
    """lesion, malignant, lesion_type, pathology, n_findings per study."""
    classes = _image_classes(four)
    frame = four[_EXAM_KEYS].copy()
    frame["n"] = [len(c) for c in classes]
    frame["malignant"] = [any(c.startswith("malignant") for c in cs) for cs in classes]
    frame["mass"] = [any(c.endswith("_mass") for c in cs) for cs in classes]
    frame["calcification"] = [any(c.endswith("_calcification") for c in cs) for cs in classes]
    per = frame.groupby(_EXAM_KEYS, sort=True).agg(
        n_findings=("n", "sum"),
        malignant=("malignant", "any"),
        mass=("mass", "any"),
        calcification=("calcification", "any"),
    )
    out = pd.DataFrame(index=per.index)
    out["lesion"] = (per["n_findings"] > 0).astype("int64")
    out["malignant"] = per["malignant"].astype("int64")
    kind = np.select(
        [per["mass"] & per["calcification"], per["mass"], per["calcification"]],
        ["mass+calcification", "mass", "calcification"],
        "normal",
    )
    out["lesion_type"] = pd.array(kind, dtype="str")
    pathology = np.where(out["malignant"] == 1, "malignant", "benign")
    out["pathology"] = pd.array(np.where(out["lesion"] == 1, pathology, "normal"), dtype="str")
    out["n_findings"] = per["n_findings"].astype("int64")
    return out


def _empty_exams(carried: list[str]) -> pd.DataFrame:
    columns = (
        _EXAM_KEYS
        + list(VIEW_COLUMNS)
        + ["density", "dense", "lesion", "malignant", "lesion_type", "pathology", "n_findings"]
        + carried
    )
    out = pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    for col in ("lesion", "malignant", "n_findings"):
        out[col] = out[col].astype("int64")
    out["dense"] = out["dense"].astype("float64")
    return out


def exam_table(manifest: pd.DataFrame, *, drop_incomplete: bool = False) -> pd.DataFrame:
    """One row per study (paper 04's *exam* or *case*), sorted by patient and study.

    Columns: ``patient_id``, ``study_id``, the image ids of the four views
    (:data:`VIEW_COLUMNS`: ``image_L_CC``, ``image_L_MLO``, ``image_R_CC``,
    ``image_R_MLO``), ``density`` (A-D or NaN), ``dense`` (1.0 for C/D, 0.0 for A/B, NaN
    unknown: :func:`dense_superclass`), ``lesion`` (1 if any view has a finding),
    ``malignant`` (1 if any finding is malignant), ``lesion_type`` (:data:`LESION_TYPES`,
    by the CBIS-DDSM family of the findings), ``pathology`` (:data:`PATHOLOGIES`),
    ``n_findings``, then ``site`` and ``split`` when the manifest has them.

    Only the FOUR_VIEWS images count. Every finding is classified by :func:`lesion_class`
    (a label without a family or an unknown pathology raises, naming the image). Raises
    ``ManifestError`` naming the study for a study_id shared by two patients, a view with
    two images, views that disagree on density, site or split, and a study lacking one of
    the four views (:func:`~mammo_helpers.data.manifest.require_four_views`) unless
    ``drop_incomplete=True``: then those studies are dropped and
    ``attrs["dropped_incomplete"]`` counts them (0 when none). The manifest's ``attrs``
    (``source``, ...) are kept. Chapter 04.
    """
    _require_columns(manifest, _REQUIRED, "exam_table")
    carried = [c for c in _CARRIED if c in manifest.columns]
    _check_one_patient(manifest)
    missing = _manifest.check_four_views(manifest)
    dropped = len(missing[_EXAM_KEYS].drop_duplicates())
    if dropped and not drop_incomplete:
        _manifest.require_four_views(manifest)
    incomplete = pd.MultiIndex.from_frame(manifest[_EXAM_KEYS]).isin(
        pd.MultiIndex.from_frame(missing[_EXAM_KEYS])
    )
    views = pd.MultiIndex.from_frame(manifest[["laterality", "view"]]).isin(list(FOUR_VIEWS))
    four = manifest.loc[views & ~incomplete]
    if four.empty:
        out = _empty_exams(carried)
    else:
        _check_one_image_per_view(four)
        images = four.pivot(index=_EXAM_KEYS, columns=["laterality", "view"], values="image_id")
        out = images[list(FOUR_VIEWS)].set_axis(list(VIEW_COLUMNS), axis=1)
        out["density"] = _one_value(four, "density", "density").reindex(out.index)
        out["dense"] = [dense_superclass(d) for d in out["density"]]
        out = out.join(_exam_targets(four))
        for col in carried:
            out[col] = _one_value(four, col, col).reindex(out.index)
        out = out.reset_index()
        for col in _EXAM_KEYS + list(VIEW_COLUMNS) + ["density"] + carried:
            out[col] = out[col].astype("str")
    out.columns.name = None
    out.attrs = dict(manifest.attrs)
    out.attrs["dropped_incomplete"] = int(dropped)
    return out


def exam_images(exams: pd.DataFrame) -> pd.DataFrame:
    """The exams in long form for per-view models: one row per (study, view) with columns
    study_id, patient_id, laterality, view, image_id; exams in table order, views in
    FOUR_VIEWS order (L-CC, L-MLO, R-CC, R-MLO). Chapter 04."""
    _require_columns(exams, _EXAM_KEYS + list(VIEW_COLUMNS), "exam_images", _EXAMS_HINT)
    n = len(exams)
    ids = exams[list(VIEW_COLUMNS)].to_numpy(dtype=object)
    return pd.DataFrame(
        {
            "study_id": np.repeat(exams["study_id"].to_numpy(dtype=object), len(FOUR_VIEWS)),
            "patient_id": np.repeat(exams["patient_id"].to_numpy(dtype=object), len(FOUR_VIEWS)),
            "laterality": [side for _ in range(n) for side, _ in FOUR_VIEWS],
            "view": [view for _ in range(n) for _, view in FOUR_VIEWS],
            "image_id": ids.reshape(-1),
        }
    )


# --------------------------------------------------------------------------- targets
_SOURCE_HINTS = {
    "cbis_ddsm": (
        "CBIS-DDSM only holds images with lesions and no complete four-view exams. Use the "
        "original DDSM normals, another dataset or the phantom."
    ),
}


def _count_classes(exams: pd.DataFrame, column: str, caller: str) -> tuple[int, int]:
    _require_columns(exams, (column,), caller, _EXAMS_HINT)
    values = exams[column]
    return int((values == 0).sum()), int((values == 1).sum())


def _missing_class(target: str, what: str, source: str, exams: pd.DataFrame) -> ValueError:
    source = source or str(exams.attrs.get("source", ""))
    data = f"this data ({source})" if source else "this data"
    dropped = int(exams.attrs.get("dropped_incomplete", 0))
    note = f" ({dropped} studies without all four views were dropped)" if dropped else ""
    hint = _SOURCE_HINTS.get(source, "Use another dataset or the phantom.")
    return ValueError(
        f"the {target} target needs {what}; {data} has none in its {len(exams)} "
        f"exam(s){note}: {hint}"
    )


def require_lesion_target(exams: pd.DataFrame, source: str = "") -> None:
    """``ValueError`` unless ``exams`` hold normal exams (``lesion == 0``) and lesion exams;
    the message names the missing class and ``source`` (default ``exams.attrs["source"]``).
    Chapter 04."""
    normal, lesion = _count_classes(exams, "lesion", "require_lesion_target")
    if normal == 0:
        what = "normal exams (no finding in any of the four views)"
        raise _missing_class("lesion", what, source, exams)
    if lesion == 0:
        what = "lesion exams (a finding in at least one view)"
        raise _missing_class("lesion", what, source, exams)


def require_malignancy_target(exams: pd.DataFrame, source: str = "") -> None:
    """``ValueError`` unless ``exams`` hold malignant exams and exams without a malignant
    finding (the malignancy target, §II-C). Chapter 04."""
    benign, malignant = _count_classes(exams, "malignant", "require_malignancy_target")
    if malignant == 0:
        what = "malignant exams (a malignant finding in some view)"
        raise _missing_class("malignancy", what, source, exams)
    if benign == 0:
        what = "exams without a malignant finding (normal or benign)"
        raise _missing_class("malignancy", what, source, exams)


# --------------------------------------------------------------------------- split
def _stratum_levels(exams: pd.DataFrame) -> list[pd.Series]:
    """Per exam, the stratum keys from fine to coarse."""
    dense = exams["dense"].map(lambda d: "?" if pd.isna(d) else str(int(d)))
    lesion = exams["lesion_type"].astype(str)
    pathology = exams["pathology"].astype(str)
    return [
        "dense=" + dense + "|" + lesion + "|" + pathology,
        lesion + "|" + pathology,
        pathology,
    ]


def split_strata(exams: pd.DataFrame, min_patients: int) -> pd.Series:
    """The stratum of each exam used by :func:`split_exams` (Series aligned to
    ``exams.index``): density superclass x lesion type x pathology (paper 04 §III-A.3).

    A stratum with fewer than ``min_patients`` patients is too rare to split; its patients
    fall back to a coarser key among the patients left over: lesion type x pathology, then
    pathology only. Patients still left join the largest stratum of their pathology (else
    one ``"rare"`` stratum, or the largest stratum when that is too small as well). A
    patient with several exams takes the most frequent key of its exams
    (``splits.patient_strata``), so all its exams share one stratum. Chapter 04.
    """
    _require_columns(
        exams, ("patient_id", "dense", "lesion_type", "pathology"), "split_strata", _EXAMS_HINT
    )
    key = exams["patient_id"].astype(str)
    left = pd.Index(sorted(key.unique()))
    chosen = pd.Series(dtype=object)
    for level, values in enumerate(_stratum_levels(exams)):
        per = _splits.patient_strata(pd.DataFrame({"patient_id": key, "s": values}), "s")
        ok = per.loc[left][per.loc[left].map(per.loc[left].value_counts()) >= min_patients]
        chosen = pd.concat([chosen, f"{level}:" + ok])
        left = left.difference(ok.index)
    if len(left):
        chosen = pd.concat([chosen, _leftovers(per, chosen, left, min_patients)])
    return pd.Series(key.map(chosen).to_numpy(), index=exams.index, name="stratum", dtype=object)


def _leftovers(pathology: pd.Series, chosen: pd.Series, left: pd.Index, min_patients: int):
    """Strata for the patients in ``left``, whose pathology is too rare to split alone."""
    out = pd.Series("rare", index=left, dtype=object)
    for value in sorted(set(pathology.loc[left])):
        same = chosen[pathology.loc[chosen.index].to_numpy() == value]
        if len(same):
            mine = left[pathology.loc[left].to_numpy() == value]
            out.loc[mine] = same.value_counts().sort_index().idxmax()
    rare = out == "rare"
    if 0 < rare.sum() < min_patients and len(chosen):
        out[rare] = chosen.value_counts().sort_index().idxmax()
    return out


def _min_patients(*fractions: float) -> int:
    """Patients a stratum needs so that each of the StratifiedGroupKFold folds that
    ``splits.train_val_test_split`` draws a part of ``fraction`` from can hold one of them
    (e.g. 20 for 0.15 = 3 of 20 folds): a rarer stratum lands in the part by chance."""
    folds = [_splits._fold_fraction(f)[1] for f in fractions if f > 0]
    return max([3, *folds])


def _given_split(exams: pd.DataFrame) -> pd.Series | None:
    """The exams' official split (train/test, NaN = not given), or None when absent."""
    if "split" not in exams.columns or exams["split"].isna().all():
        return None
    given = exams["split"].astype(object).where(exams["split"].notna(), None)
    bad = given.dropna()[~given.dropna().isin(_OFFICIAL_SPLITS)]
    if len(bad):
        at = bad.index[0]
        who = f"study {exams.at[at, 'study_id']!r}" if "study_id" in exams else f"exam {at!r}"
        raise ValueError(
            f"split_exams: {who} has split {bad.iloc[0]!r}; an existing "
            "split column may only hold 'train' and 'test' (the validation exams are drawn "
            "here): drop the column to split anew"
        )
    frame = pd.DataFrame({"patient_id": exams["patient_id"], "split": given})
    _splits.check_no_leakage(frame)
    per_patient = frame.dropna().groupby("patient_id")["split"].first()
    return exams["patient_id"].map(per_patient)  # a patient's unlabelled exams join it


def _draw(exams: pd.DataFrame, val: float, test: float, seed: int) -> pd.Series:
    """train/val/test of ``exams`` by ``splits.train_val_test_split`` on their strata (not
    stratified when all patients share one stratum)."""
    strata = split_strata(exams, _min_patients(test, val / (1 - test)))
    frame = pd.DataFrame({"patient_id": exams["patient_id"].astype(str), "stratum": strata})
    stratify = "stratum" if strata.nunique() > 1 else None
    return _splits.train_val_test_split(frame, val=val, test=test, stratify=stratify, seed=seed)


def split_exams(
    exams: pd.DataFrame, *, val: float = 0.12, test: float = 0.2, seed: int = 0
) -> pd.Series:
    """'train' / 'val' / 'test' per exam (Series aligned to ``exams.index``), paper 04
    §III-A.3: on case level, all exams of a patient in one split, stratified by density
    superclass x lesion type x pathology (:func:`split_strata`; rare strata are merged
    into coarser ones).

    Without a ``split`` column (or one that is all missing), ``val`` and ``test`` are
    fractions of the patients (``splits.train_val_test_split``). With one holding
    ``train``/``test`` (CBIS-DDSM's official split) it is honoured: test exams stay test,
    exams without a split (e.g. added normals) go to train/test by ``test`` first, as the
    paper distributes DDSM's normals, and ``val`` is then the fraction of the train
    patients that become validation. Ends with ``splits.check_no_leakage``. Chapter 04.
    """
    _require_columns(exams, ("patient_id",), "split_exams", _EXAMS_HINT)
    seed = _splits._check_seed(seed, "split_exams")
    val = _splits._check_fraction(val, "val", "split_exams")
    test = _splits._check_fraction(test, "test", "split_exams")
    given = _given_split(exams)
    if given is None:
        split = _draw(exams, val, test, seed)
    else:
        split = given.astype(object)
        todo = split.isna()
        if todo.any():
            split[todo] = _draw(exams[todo], 0.0, test, seed)
        train = split == "train"
        if val > 0:
            split[train] = _draw(exams[train], val, 0.0, seed)
    split = pd.Series(split.to_numpy(dtype=object), index=exams.index, name="split", dtype="str")
    _splits.check_no_leakage(pd.DataFrame({"patient_id": exams["patient_id"], "split": split}))
    return split


# --------------------------------------------------------------------------- Table II
def _table2_index() -> pd.MultiIndex:
    rows = [("Density", d.lower()) for d in DENSITIES]
    rows += [("Lesion", v) for v in ("normal", "mass", "calcification")]
    rows += [("Pathology", v) for v in PATHOLOGIES]
    return pd.MultiIndex.from_tuples(rows, names=["group", "value"])


def _paper_table2() -> pd.DataFrame:
    counts = [  # Train, Validation, Test (paper 04, Table II)
        (207, 40, 50),
        (567, 108, 176),
        (448, 86, 134),
        (289, 56, 93),
        (481, 107, 105),
        (583, 93, 201),
        (485, 96, 150),
        (481, 107, 105),
        (522, 98, 199),
        (508, 85, 149),
    ]
    out = pd.DataFrame(counts, index=_table2_index(), columns=list(TABLE2_COLUMNS.values()))
    out["Total"] = out.sum(axis=1)
    return out


#: Paper 04's Table II (1511 / 290 / 453 train / validation / test cases of 2254). Its
#: lesion rows add up to more than the cases (1549 in train): a case with a mass and a
#: calcification is counted in both rows, as :func:`table2` does.
PAPER_TABLE2: pd.DataFrame = _paper_table2()


def table2(exams: pd.DataFrame, split) -> pd.DataFrame:
    """Paper 04's Table II for our exams: cases per density (a-d), lesion type (normal,
    mass, calcification) and pathology (normal, benign, malignant) in the Train,
    Validation and Test splits, and their Total (layout of :data:`PAPER_TABLE2`).

    ``split`` is :func:`split_exams`'s Series (or the name of a column of ``exams``). An
    exam with a mass and a calcification counts in both lesion rows, as in the paper; an
    exam without density is in no density row. Chapter 04.
    """
    _require_columns(exams, ("density", "lesion_type", "pathology"), "table2", _EXAMS_HINT)
    split = exams[split] if isinstance(split, str) else split
    if isinstance(split, pd.Series):
        if not split.index.equals(exams.index):
            raise ValueError("table2: split must be aligned to exams.index (split_exams' Series)")
        split = split.to_numpy(dtype=object)
    split = np.asarray(split, dtype=object)
    if split.shape != (len(exams),):
        raise ValueError(f"table2: {split.shape[0]} split values for {len(exams)} exams")
    bad = sorted({str(s) for s in split} - set(TABLE2_COLUMNS))
    if bad:
        raise ValueError(f"table2: split values {bad} are not train, val or test")
    density = exams["density"].astype(object).to_numpy()
    kind = exams["lesion_type"].astype(str).to_numpy()
    pathology = exams["pathology"].astype(str).to_numpy()
    members = {("Density", d.lower()): density == d for d in DENSITIES}  # row -> exam mask
    members[("Lesion", "normal")] = kind == "normal"
    for family in ("mass", "calcification"):
        members[("Lesion", family)] = np.isin(kind, [family, "mass+calcification"])
    for value in PATHOLOGIES:
        members[("Pathology", value)] = pathology == value
    out = pd.DataFrame(0, index=_table2_index(), columns=list(TABLE2_COLUMNS.values()))
    for row, mask in members.items():
        for name, title in TABLE2_COLUMNS.items():
            out.loc[row, title] = int((mask & (split == name)).sum())
    out["Total"] = out.sum(axis=1)
    return out


__all__ = [
    "DENSE_DENSITIES",
    "FATTY_DENSITIES",
    "LESION_CLASSES",
    "LESION_CLASS_INDEX",
    "LESION_TYPES",
    "PAPER_TABLE2",
    "PATHOLOGIES",
    "TABLE2_COLUMNS",
    "VIEW_COLUMNS",
    "dense_superclass",
    "exam_images",
    "exam_table",
    "image_lesion_classes",
    "lesion_class",
    "lesion_class_index",
    "require_lesion_target",
    "require_malignancy_target",
    "split_exams",
    "split_strata",
    "table2",
]
