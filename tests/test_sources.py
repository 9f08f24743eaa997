"""Tests for mammo_helpers.data.sources: the one data switch (load_source)."""

from __future__ import annotations

import os
import shutil
import stat
import warnings
from pathlib import Path

import pytest

import mammo_helpers as mh
from mammo_helpers.data.cohort import build_cohort
from mammo_helpers.data.phantom import PhantomConfig
from mammo_helpers.data.sources import SOURCES, describe_source, load_source

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "datasets"


def snapshot(root: Path) -> dict:
    """Every file and folder under ``root`` with its size and modification time."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.stat()
        out[path.relative_to(root).as_posix()] = (
            stat.S_ISDIR(st.st_mode),
            st.st_size,
            st.st_mtime_ns,
        )
    return out


@pytest.fixture
def read_only_vindr(tmp_path):
    root = tmp_path / "vindr"
    shutil.copytree(FIXTURES / "vindr", root)
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    yield root
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_package_exposes_the_switch_and_the_manifest_module():
    assert mh.data.load_source is load_source
    assert mh.data.manifest.validate_manifest is not None  # reachable as an attribute
    assert "phantom" in SOURCES and "vindr" in SOURCES


def test_real_dataset_is_read_and_nothing_is_written_there(read_only_vindr, tmp_path):
    """The README's example: DATA_SOURCE vindr with DATA_DIR pointing at the dataset."""
    before = snapshot(read_only_vindr)
    cache = tmp_path / "cache"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mh.data.adapters.AdapterWarning)
        df = load_source("vindr", read_only_vindr, cache_dir=cache)
    assert snapshot(read_only_vindr) == before
    assert not cache.exists()  # a real dataset needs no cache
    assert df.attrs["source"] == "vindr" and df.attrs["data_dir"] == str(read_only_vindr)
    assert all(Path(p).is_relative_to(read_only_vindr) for p in df.path)
    assert "vindr: " in describe_source(df) and "images of" in describe_source(df)


def test_n_patients_draws_whole_patients_deterministically(read_only_vindr):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mh.data.adapters.AdapterWarning)
        full = load_source("vindr", read_only_vindr)
        one = load_source("vindr", read_only_vindr, n_patients=1, seed=3)
        again = load_source("vindr", read_only_vindr, n_patients=1, seed=3)
    assert full.patient_id.nunique() >= 2
    assert one.patient_id.nunique() == 1
    assert one.image_id.tolist() == again.image_id.tolist()
    # all images of the chosen patient are kept
    chosen = one.patient_id.iloc[0]
    assert len(one) == int((full.patient_id == chosen).sum())


def test_phantom_is_built_in_the_cache_and_reused(tmp_path):
    df = load_source(
        "phantom", n_patients=1, seed=3, cache_dir=tmp_path, resolution_scale=12.0, workers=1,
        progress=False,
    )  # fmt: skip
    assert df.attrs["source"] == "phantom"
    root = Path(df.attrs["cohort_root"])
    assert root.parent == tmp_path and len(df) == 4
    expected = build_cohort(1, PhantomConfig(seed=3, resolution_scale=12.0), cache_dir=tmp_path)
    assert expected.root == root
    # an existing cohort folder can be opened read-only as DATA_DIR
    before = snapshot(root)
    again = load_source("phantom", root)
    assert again.image_id.tolist() == df.image_id.tolist() and snapshot(root) == before


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (lambda: load_source("kaggle"), ValueError, "DATA_SOURCE 'kaggle' is not one of phantom"),
        (lambda: load_source("vindr"), ValueError, "needs DATA_DIR"),
        (lambda: load_source("vindr", "/no/such/folder"), FileNotFoundError, "DATA_DIR.*not found"),
        (lambda: load_source("phantom"), ValueError, "N_PATIENTS must be set"),
        (lambda: load_source("phantom", n_patients=0), ValueError, "N_PATIENTS must be >= 1"),
        (lambda: load_source("phantom", n_patients=1, seed=-1), ValueError, "SEED"),
        (lambda: load_source("phantom", n_patients=1, seed=1.5), ValueError, "SEED"),
        (lambda: load_source("phantom", n_patients=1, colour=1), TypeError, "colour"),
    ],
)
def test_bad_choices_are_named(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_invisible_whitespace_in_data_dir_is_shown(tmp_path):
    folder = tmp_path / "vindr"
    shutil.copytree(FIXTURES / "vindr", folder)
    with pytest.raises(FileNotFoundError) as info:
        load_source("vindr", str(folder) + " ")
    message = str(info.value)
    assert repr(str(folder) + " ") in message and "whitespace" in message
    os.chmod(folder, 0o755)
