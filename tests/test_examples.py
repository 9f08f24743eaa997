"""Tests for mammo_helpers.data.examples: the tiny example datasets in their real formats."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mammo_helpers.data import examples, load_source
from mammo_helpers.data.adapters import AdapterWarning, load_dataset
from mammo_helpers.data.cohort import build_cohort
from mammo_helpers.data.examples import build_all, code_hash, example_dataset, phantom_as_vindr
from mammo_helpers.data.phantom import PhantomConfig
from mammo_helpers.io import read_dicom

GOLDEN = Path(__file__).parent / "fixtures" / "datasets"
NAMES = ("vindr", "cbis_ddsm", "rsna", "embed", "inbreast")


def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def test_builder_reproduces_committed_fixtures(tmp_path):
    out = build_all(tmp_path / "datasets")
    built, committed = _files(out), _files(GOLDEN)
    assert built == committed
    assert len([p for p in built if p.suffix in (".csv", ".xml")]) == 13
    assert len([p for p in built if p.suffix in (".dcm", ".dicom")]) == 41
    for rel in built:  # every file, DICOMs included, byte for byte
        assert (out / rel).read_bytes() == (GOLDEN / rel).read_bytes(), rel
    assert sum((GOLDEN / p).stat().st_size for p in committed) < 1_000_000


@pytest.mark.parametrize("name", NAMES)
def test_example_into_dest_is_the_golden_copy_and_loads(tmp_path, name):
    folder = example_dataset(name, tmp_path / "here")
    assert folder == (tmp_path / "here").absolute()
    assert _files(folder) == _files(GOLDEN / name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AdapterWarning)
        df = load_dataset(name, folder)
    assert len(df) >= 4 and (df["source"] == name).all()


def test_default_folder_is_cached_by_name_and_code_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMMO_DATA_DIR", str(tmp_path / "cache"))
    folder = example_dataset("RSNA")
    assert folder == tmp_path / "cache" / "examples" / f"rsna-{code_hash()}"
    assert (folder / "train.csv").read_bytes() == (GOLDEN / "rsna" / "train.csv").read_bytes()

    def fail(root):
        raise AssertionError("the cached example should have been reused")

    monkeypatch.setitem(examples.BUILDERS, "rsna", fail)
    assert example_dataset("rsna") == folder
    assert [p.name for p in (tmp_path / "cache" / "examples").iterdir()] == [folder.name]


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMMO_DATA_DIR", str(tmp_path / "cache"))

    def half(root):
        (root / "train.csv").write_text("site_id\n")
        raise KeyboardInterrupt

    monkeypatch.setitem(examples.BUILDERS, "rsna", half)
    with pytest.raises(KeyboardInterrupt):
        example_dataset("rsna")
    assert list((tmp_path / "cache" / "examples").iterdir()) == []


def test_bad_name_and_occupied_dest_are_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'ddsm'; choose one of vindr, cbis_ddsm"):
        example_dataset("ddsm", tmp_path / "x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="exists and is not an empty folder"):
        example_dataset("vindr", tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    assert (example_dataset("vindr", tmp_path / "empty") / "finding_annotations.csv").is_file()


def test_code_hash_changes_with_the_builder(monkeypatch, tmp_path):
    copy = tmp_path / "examples.py"
    copy.write_bytes(Path(examples.__file__).read_bytes() + b"\n# changed\n")
    before = code_hash()
    monkeypatch.setattr(examples, "__file__", str(copy))
    assert code_hash() != before and len(before) == 12


# --------------------------------------------------------------------------- phantom as VinDr
@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    """Three phantom patients with lesions; the first image's findings are removed, so the
    VinDr copy has a 'No Finding' row."""
    cfg = PhantomConfig(seed=1, spacing_mm=0.8, lesion_prevalence=1.0)
    cohort = build_cohort(
        3, cfg, cache_dir=tmp_path_factory.mktemp("phantom"), workers=1, progress=False
    )
    manifest = cohort.manifest.copy()
    manifest.at[manifest.index[0], "findings"] = []
    return manifest


def _finding_set(findings) -> list[tuple]:
    return sorted((f["label"], f["xmin"], f["ymin"], f["xmax"], f["ymax"]) for f in findings)


def test_phantom_as_vindr_reads_back_through_the_vindr_adapter(phantom, tmp_path):
    dest = phantom_as_vindr(phantom, tmp_path / "vindr", seed=4)
    assert dest == (tmp_path / "vindr").absolute()
    back = load_source("vindr", dest)  # no AdapterWarning: nothing dropped or clipped
    assert back.attrs["dropped"].empty and not back.attrs["notes"]
    assert back.image_id.tolist() == phantom.image_id.tolist()
    src = phantom.set_index("image_id")
    for row in back.itertuples():
        assert row.path == str(dest / "images" / row.study_id / f"{row.image_id}.dicom")
        assert (row.laterality, row.view) == (
            src.at[row.image_id, "laterality"],
            src.view[row.image_id],
        )
        assert row.density == src.at[row.image_id, "density"]
        assert (row.rows, row.cols) == (src.at[row.image_id, "rows"], src.at[row.image_id, "cols"])
        theirs, ours = _finding_set(src.at[row.image_id, "findings"]), _finding_set(row.findings)
        assert [f[0] for f in ours] == [f[0] for f in theirs]
        assert np.allclose([f[1:] for f in ours], [f[1:] for f in theirs], atol=1.0)
    # the same pixels (and header) as the phantom's DICOM: a hard link on one file system
    first = back.iloc[1]
    assert Path(first.path).samefile(src.at[first.image_id, "path"])
    a, b = read_dicom(first.path), read_dicom(src.at[first.image_id, "path"])
    assert np.array_equal(a.pixels, b.pixels) and a.pixel_spacing_mm == b.pixel_spacing_mm
    # a patient-level split with both values
    split = dict(zip(back.image_id, back.split, strict=True))
    per_patient = phantom.groupby("patient_id").image_id.agg(lambda ids: {split[i] for i in ids})
    assert all(len(s) == 1 for s in per_patient)
    assert set(back.split) == {"train", "test"}


def test_phantom_as_vindr_writes_vindr_spellings(phantom, tmp_path):
    dest = phantom_as_vindr(phantom, tmp_path / "vindr", test_fraction=0.4, seed=0)
    breast = pd.read_csv(dest / "breast-level_annotations.csv")
    finding = pd.read_csv(dest / "finding_annotations.csv")
    assert list(breast.columns) == examples.VINDR_BREAST_HEADER
    assert list(finding.columns) == examples.VINDR_FINDING_HEADER
    assert set(breast.split) == {"training", "test"}
    assert breast.breast_density.str.fullmatch(r"DENSITY [A-D]").all()
    assert breast.breast_birads.str.fullmatch(r"BI-RADS [1-6]").all()
    assert breast.series_id.str.fullmatch(r"[0-9a-f]{32}").all()
    none = finding[finding.finding_categories == "['No Finding']"]
    assert none.image_id.tolist() == [phantom.image_id.iloc[0]]
    assert none[["finding_birads", "xmin", "ymin", "xmax", "ymax"]].isna().all(axis=None)
    boxed = finding.drop(none.index)
    assert boxed.finding_birads.isin(["BI-RADS 3", "BI-RADS 5"]).all()
    names = {n for cell in boxed.finding_categories for n in ast.literal_eval(cell)}
    assert names <= set(examples.VINDR_CATEGORIES.values())
    assert "Suspicious Calcification" in names and "Mass" in names
    assert sorted(p.name for p in dest.iterdir()) == [
        "breast-level_annotations.csv",
        "finding_annotations.csv",
        "images",
    ]


def test_phantom_as_vindr_split_is_seeded_and_sized(phantom, tmp_path):
    def split(**kwargs) -> dict:
        folder = phantom_as_vindr(phantom, tmp_path / f"v{len(list(tmp_path.iterdir()))}", **kwargs)
        breast = pd.read_csv(folder / "breast-level_annotations.csv")
        return dict(zip(breast.study_id, breast.split, strict=False))

    assert split(seed=7) == split(seed=7)
    assert list(split(seed=7).values()).count("test") == 1  # round(0.2 * 3) -> 1 of 3 studies
    assert set(split(test_fraction=0.0).values()) == {"training"}
    assert set(split(test_fraction=1.0).values()) == {"test"}
    assert list(split(test_fraction=0.99).values()).count("training") == 1  # one left to train


def test_phantom_as_vindr_copies_when_it_cannot_link(phantom, tmp_path, monkeypatch):
    def no_link(source, target):
        raise OSError("cross-device link")

    monkeypatch.setattr(examples.os, "link", no_link)
    dest = phantom_as_vindr(phantom, tmp_path / "vindr")
    row = phantom.iloc[0]
    copy = dest / "images" / row.study_id / f"{row.image_id}.dicom"
    assert not copy.samefile(row.path) and copy.read_bytes() == Path(row.path).read_bytes()


def test_phantom_as_vindr_interrupted_leaves_nothing(phantom, tmp_path, monkeypatch):
    calls, real = [], examples._link_or_copy

    def interrupted(source, target):
        calls.append(target)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(source, target)

    monkeypatch.setattr(examples, "_link_or_copy", interrupted)
    with pytest.raises(KeyboardInterrupt):
        phantom_as_vindr(phantom, tmp_path / "vindr")
    assert list(tmp_path.iterdir()) == []


def test_phantom_as_vindr_errors_name_the_problem(phantom, tmp_path):
    cases = [
        ({"test_fraction": 1.5}, ValueError, r"test_fraction=1\.5 must be in \[0, 1\]"),
        ({"test_fraction": "0.2"}, ValueError, "test_fraction must be a number"),
        ({"seed": -1}, ValueError, "seed must be an integer"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            phantom_as_vindr(phantom, tmp_path / "x", **kwargs)
    with pytest.raises(ValueError, match="manifest lacks column.s. findings"):
        phantom_as_vindr(phantom.drop(columns="findings"), tmp_path / "x")
    twice = pd.concat([phantom.iloc[:1], phantom.iloc[:1]])
    with pytest.raises(ValueError, match=f"image_id '{phantom.image_id.iloc[0]}' appears twice"):
        phantom_as_vindr(twice, tmp_path / "x")
    moved = phantom.copy()
    moved.at[moved.index[2], "path"] = str(tmp_path / "gone.dcm")
    with pytest.raises(FileNotFoundError, match=r"DICOM of image .* not found: .*gone\.dcm"):
        phantom_as_vindr(moved, tmp_path / "x")
    odd = phantom.copy()
    odd.at[odd.index[0], "findings"] = [{**phantom.findings.iloc[1][0], "label": "retraction"}]
    with pytest.raises(ValueError, match="finding 'retraction' .subtype .* no VinDr-Mammo"):
        phantom_as_vindr(odd, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="dest .* exists and is not an empty folder"):
        phantom_as_vindr(phantom, tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
