"""Tests for mammo_helpers.data.phantom_formats: a phantom cohort written as RSNA, CBIS-DDSM
and INbreast lay it out reads back through the package's own adapters."""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mammo_helpers.data import load_source
from mammo_helpers.data import phantom_formats as pf
from mammo_helpers.data.adapters import AdapterWarning
from mammo_helpers.data.examples import CBIS_MASS_HEADER, INBREAST_HEADER, RSNA_HEADER

#: the extra finding the fixture adds: a malignant calcification beside a benign mass
EXTRA_CALC = {"label": "calcification", "xmin": 20.0, "ymin": 10.0, "xmax": 26.0, "ymax": 17.0}
#: label -> phantom subtype -> the subtype the CBIS-DDSM adapter gives back (lower-cased
#: CBIS-DDSM words: mass margins, mass shapes of distortions and asymmetries, calc types)
CBIS_SUBTYPES = {
    "mass": {"circumscribed": "circumscribed", "obscured": "obscured",
             "microlobulated": "microlobulated", "indistinct": "ill_defined",
             "spiculated": "spiculated"},
    "calcification": {"punctate": "punctate", "amorphous": "amorphous",
                      "coarse_heterogeneous": "coarse", "fine_pleomorphic": "pleomorphic",
                      "fine_linear": "fine_linear_branching"},
    "architectural_distortion": {"distortion": "architectural_distortion"},
    "asymmetry": {"focal": "focal_asymmetric_density", "one_view": "focal_asymmetric_density",
                  "global": "asymmetric_breast_tissue"},
}  # fmt: skip
CBIS_ID = re.compile(r"(Mass|Calc)-(Training|Test)_(P_\d{5})_(LEFT|RIGHT)_(CC|MLO)")


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    """Eight phantom patients (32 images of 60 x 48 px); one benign-mass image gets a second,
    malignant calcification, so one image has two findings of two CBIS-DDSM families."""
    cohort = load_source(
        "phantom", n_patients=8, seed=0, spacing_mm=4.0, lesion_prevalence=0.8,
        modalities=("DM",), cache_dir=tmp_path_factory.mktemp("cache"), workers=1,
        progress=False,
    )  # fmt: skip
    findings = [list(f) for f in cohort["findings"]]
    kinds = [[(g["label"], g["malignant"]) for g in f] for f in findings]
    findings[kinds.index([("mass", False)])].append(
        {**EXTRA_CALC, "malignant": True, "subtype": "fine_linear"}
    )
    manifest = cohort.assign(findings=findings)
    every = [f for fs in findings for f in fs]
    # what the checks below need in order to be able to fail
    assert {f["label"] for f in every} == set(CBIS_SUBTYPES)
    assert {f["malignant"] for f in every} == {True, False}
    assert set(manifest["cancer"]) == {0, 1} and manifest["age"].nunique() == 8
    assert 0 < sum(not f for f in findings) < len(findings)
    assert manifest.groupby("patient_id").study_id.nunique().eq(1).all()
    return manifest


def _numbered(values, start: int) -> dict[str, str]:
    """The documented id contract: sorted distinct values numbered from ``start``."""
    return {v: str(start + k) for k, v in enumerate(sorted(set(values)))}


def _same_findings(ours, theirs, key) -> bool:
    """Equal ``key(finding)`` per finding and boxes within half a pixel (the round trip of
    whole-pixel boxes is exact), paired in box order."""
    box = ("xmin", "ymin", "xmax", "ymax")
    ours = sorted(ours, key=lambda f: [f[k] for k in box])
    theirs = sorted(theirs, key=lambda f: [f[k] for k in box])
    return len(ours) == len(theirs) and all(
        key(a) == key(b) and np.allclose([a[k] for k in box], [b[k] for k in box], atol=0.5)
        for a, b in zip(ours, theirs, strict=True)
    )


def _quiet(name: str, dest: Path) -> pd.DataFrame:
    """``load_source(name, dest)`` with any AdapterWarning (a drop or a fix) an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", AdapterWarning)
        back = load_source(name, dest)
    assert back.attrs["dropped"].empty and not back.attrs["notes"]
    return back


# --------------------------------------------------------------------------- RSNA
def test_rsna_reads_back_every_image_with_cancer_and_age(phantom, tmp_path):
    dest = pf.phantom_as_rsna(phantom, tmp_path / "rsna")
    assert dest == (tmp_path / "rsna").absolute()
    table = pd.read_csv(dest / "train.csv")
    assert list(table.columns) == RSNA_HEADER
    assert all(pd.api.types.is_integer_dtype(table[c]) for c in ("patient_id", "image_id"))
    back = _quiet("rsna", dest)
    patients = _numbered(phantom.patient_id, 10_000)
    images = _numbered(phantom.image_id, 1_000_000_000)
    assert back.image_id.tolist() == [images[i] for i in phantom.image_id]
    assert back.patient_id.tolist() == [patients[p] for p in phantom.patient_id]
    for col in ("laterality", "view", "density"):
        assert back[col].tolist() == phantom[col].tolist(), col
    assert back.cancer.tolist() == phantom.cancer.astype(int).tolist()
    ages = back.groupby("patient_id").age.agg(["nunique", "first"])
    truth = phantom.groupby("patient_id").age.first().rename(index=patients)
    assert ages["nunique"].eq(1).all() and ages["first"].to_dict() == truth.to_dict()
    assert all(f == [] for f in back.findings)
    for path, source in zip(back.path, phantom.path, strict=True):
        assert Path(path).read_bytes() == Path(source).read_bytes()


# --------------------------------------------------------------------------- CBIS-DDSM
def test_cbis_ddsm_reads_back_images_with_findings_and_their_boxes(phantom, tmp_path):
    dest = pf.phantom_as_cbis_ddsm(phantom, tmp_path / "cbis", test_fraction=0.3, seed=0)
    assert list(pd.read_csv(dest / "mass_case_description_test_set.csv")) == CBIS_MASS_HEADER
    back = _quiet("cbis_ddsm", dest)
    patients = {f"P_{int(k) + 1:05d}": p for p, k in _numbered(phantom.patient_id, 0).items()}
    by_view = phantom.set_index(["patient_id", "laterality", "view"])
    family = {"Mass": ("mass", "asymmetry", "architectural_distortion"), "Calc": ("calcification",)}
    expected = {
        (fam, p, lat, view)
        for (p, lat, view), fs in by_view.findings.items()
        for fam, labels in family.items()
        if any(f["label"] in labels for f in fs)
    }
    seen = set()
    for row in back.itertuples():
        fam, part, pid, side, view = CBIS_ID.fullmatch(row.image_id).groups()
        key = (patients[pid], side[0], view)
        seen.add((fam, *key))
        src = by_view.loc[key]
        ours = [f for f in src.findings if f["label"] in family[fam]]
        assert (row.laterality, row.view) == (side[0], view)  # as the series name says
        assert (row.rows, row.cols, row.density) == (src.rows, src.cols, src.density)
        assert row.split == {"Training": "train"}.get(part, "test")
        assert row.cancer == int(any(f["malignant"] for f in ours)), row.image_id
        label = "mass" if fam == "Mass" else "calcification"
        as_cbis = [
            {**f, "label": label, "subtype": CBIS_SUBTYPES[f["label"]][f["subtype"]],
             "birads": "5" if f["malignant"] else "3"}
            for f in ours
        ]  # fmt: skip
        words = lambda f: (f["label"], f["malignant"], f["subtype"], f["birads"])  # noqa: E731
        assert _same_findings(row.findings, as_cbis, words), row.image_id
    assert seen == expected and len(back) == len(expected)
    assert len({k[1:] for k in expected}) < len(expected)  # one film in both families
    split = back.groupby("patient_id").split.agg(set)
    assert split.map(len).eq(1).all()  # no patient on both sides
    assert split.map(min).value_counts().to_dict() == {"train": 6, "test": 2}  # round(0.3 * 8)


def test_cbis_ddsm_split_is_seeded(phantom, tmp_path):
    def test_patients(seed):
        dest = tmp_path / str(len(list(tmp_path.iterdir())))
        folder = pf.phantom_as_cbis_ddsm(phantom, dest, test_fraction=0.5, seed=seed)
        csvs = [folder / f"{f}_case_description_test_set.csv" for f in ("mass", "calc")]
        return set(pd.concat(map(pd.read_csv, csvs)).patient_id)

    assert test_patients(1) == test_patients(1) != test_patients(2)


# --------------------------------------------------------------------------- INbreast
def test_inbreast_reads_back_every_image_with_outlines_and_birads(phantom, tmp_path):
    dest = pf.phantom_as_inbreast(phantom, tmp_path / "inbreast")
    assert list(pd.read_csv(dest / "INbreast.csv", sep=";")) == INBREAST_HEADER
    empty = sum(not f for f in phantom.findings)
    with pytest.warns(AdapterWarning, match=f"{empty} images without an XML outline file"):
        back = load_source("inbreast", dest)
    assert back.attrs["dropped"].empty
    assert back.attrs["notes"] == {"images without an XML outline file (no findings)": empty}
    names = _numbered(phantom.image_id, 20_000_001)
    assert back.image_id.tolist() == [names[i] for i in phantom.image_id]
    assert sorted(p.stem for p in (dest / "AllXML").iterdir()) == sorted(
        names[i] for i, f in zip(phantom.image_id, phantom.findings, strict=True) if f
    )  # fmt: skip
    for col in ("laterality", "view", "density", "rows", "cols"):
        assert back[col].tolist() == phantom[col].tolist(), col
    assert back.patient_id.tolist() == [
        hashlib.sha256(p.encode()).hexdigest()[:16] for p in phantom.patient_id
    ]
    assert back.study_id.tolist() == [f"{p}_201001" for p in back.patient_id]
    malignant = [any(f["malignant"] for f in fs) for fs in phantom.findings]
    assert back.birads_suspicious.tolist() == malignant
    has = [bool(f) for f in phantom.findings]
    assert back.birads.tolist() == [
        "5" if m else "2" if f else "1" for m, f in zip(malignant, has, strict=True)
    ]
    assert back.cancer.isna().all()
    for ours, theirs in zip(back.findings, phantom.findings, strict=True):
        assert _same_findings(ours, theirs, lambda f: f["label"])
        assert all(f["malignant"] is None for f in ours)


# --------------------------------------------------------------------------- all three
def test_several_studies_per_patient(phantom, tmp_path):
    later = phantom.copy()
    moved = (later.patient_id == later.patient_id.iloc[0]) & (later.laterality == "L")
    later["study_id"] = later.study_id.where(~moved, "S999-later")
    for convert, dataset in ((pf.phantom_as_rsna, "RSNA"), (pf.phantom_as_cbis_ddsm, "CBIS-DDSM")):
        with pytest.raises(ValueError, match=rf"patient '.*' has 2 studies; {dataset} has one"):
            convert(later, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with pytest.warns(AdapterWarning):
        back = load_source("inbreast", pf.phantom_as_inbreast(later, tmp_path / "inbreast"))
    first = back[back.patient_id == back.patient_id.iloc[0]]
    assert first.groupby("laterality").study_id.agg(set).to_dict() == {
        "L": {f"{first.patient_id.iloc[0]}_201101"},  # 'S999-later' sorts after 'S000-...'
        "R": {f"{first.patient_id.iloc[0]}_201001"},
    }


CONVERTERS = {
    "rsna": pf.phantom_as_rsna,
    "cbis_ddsm": pf.phantom_as_cbis_ddsm,
    "inbreast": pf.phantom_as_inbreast,
}


@pytest.mark.parametrize("name", CONVERTERS)
def test_occupied_dest_is_refused_and_an_interrupted_write_leaves_nothing(
    phantom, tmp_path, monkeypatch, name
):
    convert = CONVERTERS[name]
    dest = convert(phantom, tmp_path / "done")
    before = {p: p.stat().st_mtime_ns for p in dest.rglob("*")}
    with pytest.raises(FileExistsError, match=rf"phantom_as_{name}: dest .*done.* not an empty"):
        convert(phantom, dest)
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*")} == before
    calls, real = [], pf._link_or_copy

    def interrupted(source, target):
        calls.append(target)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(source, target)

    monkeypatch.setattr(pf, "_link_or_copy", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert(phantom, tmp_path / "cut")
    assert len(calls) == 3 and sorted(p.name for p in tmp_path.iterdir()) == ["done"]


@pytest.mark.parametrize("name", CONVERTERS)
def test_errors_name_the_converter(phantom, tmp_path, name):
    convert = CONVERTERS[name]
    with pytest.raises(ValueError, match=rf"^phantom_as_{name}: manifest lacks column.s. findings"):
        convert(phantom.drop(columns="findings"), tmp_path / "x")
    moved = phantom.assign(path=phantom.path.where(phantom.index != phantom.index[2], "gone.dcm"))
    with pytest.raises(FileNotFoundError, match=rf"^phantom_as_{name}: DICOM of image .*gone"):
        convert(moved, tmp_path / "x")
    node = [[{**f, "label": "lymph_node"} for f in fs] for fs in phantom.findings]
    first = next(i for i, f in zip(phantom.image_id, node, strict=True) if f)
    if name != "rsna":  # RSNA has no findings to write
        with pytest.raises(ValueError, match=f"finding 'lymph_node' of image '{first}'"):
            convert(phantom.assign(findings=node), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_rsna_and_cbis_ddsm_name_their_own_requirements(phantom, tmp_path):
    with pytest.raises(ValueError, match="^phantom_as_rsna: manifest lacks column.s. age"):
        pf.phantom_as_rsna(phantom.drop(columns="age"), tmp_path / "x")
    with pytest.raises(ValueError, match=r"^phantom_as_cbis_ddsm: test_fraction=1\.5 must be"):
        pf.phantom_as_cbis_ddsm(phantom, tmp_path / "x", test_fraction=1.5)
    with pytest.raises(ValueError, match="no finding for mass_case_description_test_set.csv, "
                       "calc_case_description_test_set.csv; the CBIS-DDSM adapter"):  # fmt: skip
        pf.phantom_as_cbis_ddsm(phantom, tmp_path / "x", test_fraction=0.0)
    assert not (tmp_path / "x").exists()
