import os

import pytest

from mammo_helpers.paths import (
    atomic_directory,
    atomic_write,
    default_cache_dir,
    ensure_writable_dir,
)


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MAMMO_DATA_DIR", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("MAMMO_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "mammo_helpers"


def test_atomic_write_leaves_nothing_when_the_block_fails(tmp_path):
    target = tmp_path / "a.txt"
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as fh:
            fh.write("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with atomic_write(target, "w") as fh:
        fh.write("whole")
    assert target.read_text() == "whole"


def test_atomic_directory_is_all_or_nothing(tmp_path):
    final = tmp_path / "cohort"
    with pytest.raises(KeyboardInterrupt):
        with atomic_directory(final) as tmp:
            (tmp / "part.dcm").write_text("x")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with atomic_directory(final) as tmp:
        (tmp / "ok").write_text("1")
    assert (final / "ok").read_text() == "1"
    with atomic_directory(final) as tmp:  # replaces the old folder only when complete
        (tmp / "new").write_text("2")
    assert sorted(p.name for p in final.iterdir()) == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["cohort"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_unwritable_folder_is_named(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(PermissionError, match="ro"):
        ensure_writable_dir(ro / "sub")


def test_a_file_in_the_way_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="MAMMO_DATA_DIR"):
        ensure_writable_dir(blocker / "sub")
