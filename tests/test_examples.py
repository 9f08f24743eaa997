"""Tests for mammo_helpers.data.examples: the tiny example datasets in their real formats."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from mammo_helpers.data import examples
from mammo_helpers.data.adapters import AdapterWarning, load_dataset
from mammo_helpers.data.examples import build_all, code_hash, example_dataset

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
