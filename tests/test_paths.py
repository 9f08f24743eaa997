import os
from pathlib import Path

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


# --------------------------------------------------------------- anchors and names
def test_project_root_is_found_from_any_working_directory(monkeypatch, tmp_path):
    from mammo_helpers import paths

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    assert paths.project_root() == repo
    assert paths.project_path("results/x") == repo / "results" / "x"
    assert paths.project_path(tmp_path) == tmp_path
    assert paths.display_path(repo / "results" / "x") == "results/x"
    assert paths.display_path(tmp_path / "y") == str(tmp_path / "y")
    monkeypatch.setenv("MAMMO_DATA_DIR", str(tmp_path / "cache"))
    assert paths.display_path(tmp_path / "cache" / "phantom-1") == "$CACHE_DIR/phantom-1"
    monkeypatch.setenv("MAMMO_PROJECT_ROOT", str(tmp_path))
    assert paths.project_root() == tmp_path


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("/data/vindr ", "leading or trailing whitespace"),
        ("/data/vin\u200bdr", "zero-width"),
        ("/data/vindr\t", "whitespace"),
        ("/data/vin\u00a0dr", "non-breaking"),
    ],
)
def test_invisible_characters_in_paths_are_shown(text, note):
    from mammo_helpers.paths import describe_path, existing_dir

    assert note in describe_path(text) and repr(text) in describe_path(text)
    with pytest.raises(FileNotFoundError, match="DATA_DIR") as info:
        existing_dir(text, "VinDr-Mammo dataset", "DATA_DIR")
    assert repr(text) in str(info.value) and note in str(info.value)
    assert describe_path("/data/vindr") == "'/data/vindr'"


def test_existing_dir_names_files_and_empty_values(tmp_path):
    from mammo_helpers.paths import existing_dir

    (tmp_path / "f").write_text("x")
    with pytest.raises(FileNotFoundError, match="is a file, not a folder"):
        existing_dir(tmp_path / "f", "dataset")
    with pytest.raises(FileNotFoundError, match="no folder given; set DATA_DIR"):
        existing_dir("  ", "dataset", "DATA_DIR")
    assert existing_dir(tmp_path, "dataset") == tmp_path


def test_cache_dir_parameter(monkeypatch, tmp_path):
    from mammo_helpers.paths import cache_dir

    monkeypatch.setenv("MAMMO_DATA_DIR", str(tmp_path))
    assert cache_dir(None) == tmp_path
    assert cache_dir(tmp_path / "c") == tmp_path / "c"
    with pytest.raises(ValueError, match="CACHE_DIR.*whitespace"):
        cache_dir(str(tmp_path) + " ")


# --------------------------------------------------------------- killed and racing builds
def _host():
    import re
    import socket

    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def test_stale_partials_of_dead_processes_are_removed_live_ones_kept(tmp_path):
    import subprocess
    import sys
    import time

    from mammo_helpers import paths

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = tmp_path / f".a.partial-{_host()}-999999999-0123abcd"
        live = tmp_path / f".b.partial-{_host()}-{sleeper.pid}-0123abcd"
        old_foreign = tmp_path / ".c.partial-otherhost-12-0123abcd"
        new_foreign = tmp_path / ".d.partial-otherhost-13-0123abcd"
        unrelated = tmp_path / ".e.partial-notours"
        for folder in (dead, live, old_foreign, new_foreign, unrelated):
            folder.mkdir()
        age = paths.FOREIGN_PARTIAL_AGE_S + 60
        os.utime(old_foreign, (time.time() - age, time.time() - age))
        removed = paths.clean_stale_partials(tmp_path)
        assert sorted(removed) == sorted([dead, old_foreign])
        assert live.exists() and new_foreign.exists() and unrelated.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_half_written_files_of_dead_writers_are_removed_in_subfolders(tmp_path):
    from mammo_helpers import paths

    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    dead = sub / f".r.pkl.partial-{_host()}-999999999-0123abcd"
    live = sub / f".s.pkl.partial-{_host()}-{os.getpid()}-0123abcd"
    result = sub / "r.pkl"
    for path in (dead, live, result):
        path.write_bytes(b"x")
    assert paths.clean_stale_partials(tmp_path) == []  # not recursive: the top level only
    assert paths.clean_stale_partials(tmp_path, recursive=True) == [dead]
    assert live.exists() and result.exists() and not dead.exists()


def test_atomic_write_names_its_temporary_file_after_its_process(tmp_path):
    with atomic_write(tmp_path / "x.bin") as fh:
        (tmp,) = [p for p in tmp_path.iterdir() if p.name.startswith(".x.bin.partial-")]
        assert f"-{os.getpid()}-" in tmp.name
        fh.write(b"1")
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_publishing_when_another_builder_won_the_race(tmp_path, monkeypatch):
    """If the final folder appears while this build runs, replace=False keeps the other
    one, replace=True replaces it; neither raises 'Directory not empty'."""
    final = tmp_path / "cohort"
    for replace, kept in ((False, "theirs"), (True, "ours")):
        with atomic_directory(final, replace=replace) as tmp:
            (tmp / "ours").write_text("1")
            final.mkdir(exist_ok=True)  # the racing builder publishes first
            for p in final.iterdir():
                p.unlink()
            (final / "theirs").write_text("2")
        assert [p.name for p in final.iterdir()] == [kept]
        assert [p.name for p in tmp_path.iterdir()] == ["cohort"]


def test_sigterm_inside_the_block_raises_and_cleans_up(tmp_path):
    import signal

    from mammo_helpers.paths import Terminated, sigterm_as_interrupt

    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated):
        with sigterm_as_interrupt(), atomic_directory(tmp_path / "x") as tmp:
            (tmp / "part").write_text("x")
            os.kill(os.getpid(), signal.SIGTERM)
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is previous
