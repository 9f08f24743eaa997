"""mh.tasks: the per-task result store and running tasks serially or on dask clusters."""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mammo_helpers import tasks
from mammo_helpers.paths import _side_name
from mammo_helpers.tasks import TaskFailedError, TaskKey, TaskStore, run_tasks

SETTINGS = {"n_masks": 8, "sigma": 0.5, "views": ["CC", "MLO"]}
METHOD = "correlax"
MODEL = "model-abc123"
WAIT_S = 60.0  # no cluster test may block longer than this
CLUSTER = dict(
    n_workers=2,
    threads_per_worker=1,
    processes=True,
    dashboard_address=None,
    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # not the default port 8787
)


def key(item_id: str, settings=None) -> TaskKey:
    return TaskKey(METHOD, SETTINGS if settings is None else settings, MODEL, item_id)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def temp_files(root: Path) -> list[Path]:
    return [p for p in files_under(root) if p.name.startswith(".")]


# --------------------------------------------------------------------------- task functions
# module level, so dask workers (other processes) can import them
def square(payload, offset=0.0):
    return np.asarray(payload, dtype=np.float64) ** 2 + offset


def slow_square(payload, delay=0.3):
    time.sleep(delay)
    return payload * payload


def fail_on_three(payload):
    if payload == 3:
        raise ValueError("item three is broken")
    return payload + 100


def count_and_square(payload, calls_dir):
    """Leaves one file per call in ``calls_dir`` (workers are other processes)."""
    name = f"{payload}-{os.getpid()}-{time.monotonic_ns()}"
    Path(calls_dir, name).write_text("")
    return payload * payload


def apply_model(image, model):
    """The model's output, through a forward hook (as the attribution methods count their
    forward passes): a module rebuilt by Dask's torch serialiser refused hooks."""
    import torch

    seen = []
    handle = model.register_forward_hook(lambda module, args, out: seen.append(out.shape))
    with torch.no_grad():
        out = model(torch.from_numpy(image)[None]).numpy()
    handle.remove()
    assert len(seen) == 1
    return out


class Unpickled:
    """Writes a file each time it is unpickled: counts how often ``shared`` is sent."""

    def __init__(self, folder: str):
        self.folder = folder

    def __reduce__(self):
        return (_rebuild, (self.folder,))


def _rebuild(folder: str) -> Unpickled:
    Path(folder, f"{os.getpid()}-{time.monotonic_ns()}").write_text("")
    return Unpickled(folder)


def with_token(payload, token):
    return payload + 1


def fails_once(payload, marks_dir):
    """Raises on the first call for each payload (a flaky file system, say)."""
    mark = Path(marks_dir, str(payload))
    if not mark.exists():
        mark.write_text("")
        raise OSError(f"transient failure on {payload}")
    return -payload


def seeded_model():
    import torch

    torch.manual_seed(0)
    return (
        torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(4, 2, 5, padding=2),
            torch.nn.AdaptiveAvgPool2d(4),
        )
        .to(memory_format=torch.channels_last)
        .eval()
    )  # as mh.devices.prepare_model leaves it


@pytest.fixture(scope="module")
def client():
    """A two-worker cluster shared by the tests that do not kill workers."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(**CLUSTER) as cluster,
        Client(cluster, set_as_default=False) as c,
    ):
        yield c


# --------------------------------------------------------------------------- the store
def test_layout_settings_file_and_round_trip(tmp_path):
    store = TaskStore(tmp_path / "tasks")
    value = {"map": np.arange(6.0).reshape(2, 3), "score": 0.25}
    path = store.save(key("img_001"), value)
    assert path == store.path(key("img_001"))
    rel = path.relative_to(tmp_path / "tasks").parts
    assert rel[0] == METHOD and rel[2] == MODEL and rel[3] == "img_001.pkl"
    assert re.fullmatch(r"[0-9a-f]{16}", rel[1])
    settings_file = tmp_path / "tasks" / METHOD / rel[1] / "settings.json"
    assert json.loads(settings_file.read_text()) == SETTINGS
    assert list(json.loads(settings_file.read_text())) == sorted(SETTINGS)
    loaded = store.load(key("img_001"))
    assert np.array_equal(loaded["map"], value["map"]) and loaded["score"] == 0.25
    assert store.has(key("img_001")) and not store.has(key("img_002"))
    # same settings in another order: same folder; other settings: another folder
    reordered = dict(reversed(list(SETTINGS.items())))
    assert store.path(key("x", reordered)) == store.path(key("x"))
    assert store.path(key("x", {**SETTINGS, "sigma": 1.0})).parent != store.path(key("x")).parent
    assert store.done(METHOD, SETTINGS, MODEL, ["img_001", "img_002"]) == {"img_001"}
    assert files_under(tmp_path / "tasks") == sorted([path, settings_file])


def test_odd_item_ids_round_trip_without_collisions(tmp_path):
    store = TaskStore(tmp_path)
    ids = ["a/b", "a b", "a_b", "a\\b", "..", ".hidden", "é", "x" * 300, "x" * 301]
    for n, item_id in enumerate(ids):
        store.save(key(item_id), n)
    folder = store.folder(METHOD, SETTINGS, MODEL)
    assert len(list(folder.glob("*.pkl"))) == len(ids)
    for n, item_id in enumerate(ids):
        path = store.path(key(item_id))
        assert path.parent == folder and not path.name.startswith(".")
        assert len(path.name) < 200
        assert store.load(key(item_id)) == n
    assert store.done(METHOD, SETTINGS, MODEL, ids + ["a-b"]) == set(ids)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("item_id", "", "item_id"),
        ("method", "a/b", "method"),
        ("method", "", "method"),
        ("model_hash", "..", "model_hash"),
        ("model_hash", "x/y", "model_hash"),
        ("settings", {"ok": 1, "bad": object()}, "'bad'"),
        ("settings", {"nan": float("nan")}, "'nan'"),
    ],
)
def test_bad_keys_are_named(tmp_path, field, value, named):
    store = TaskStore(tmp_path)
    bad = key("img")._replace(**{field: value})
    with pytest.raises(ValueError, match=re.escape(named)):
        store.save(bad, 1)
    assert files_under(tmp_path) == []


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    store = TaskStore(tmp_path)
    store.save(key("old"), "complete")

    def broken_dump(obj, fh, *args, **kwargs):
        fh.write(b"\x80\x05half a pickle")
        raise OSError("disk full")

    monkeypatch.setattr(pickle, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        store.save(key("new"), list(range(1000)))
    with pytest.raises(OSError, match="disk full"):
        store.save(key("old"), "replacement")
    monkeypatch.undo()
    assert not store.has(key("new"))
    assert store.load(key("old")) == "complete"
    assert temp_files(tmp_path) == []


def test_stale_partials_of_dead_writers_are_cleaned(tmp_path):
    folder = tmp_path / METHOD / "digest" / MODEL
    folder.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = _side_name(folder / "a.pkl", "partial")  # this process: still writing
    stale = live.with_name(live.name.replace(f"-{os.getpid()}-", f"-{dead.pid}-"))
    foreign_old = live.with_name(re.sub(r"partial-[^-]+-", "partial-otherhost-", live.name))
    foreign_new = foreign_old.with_name(foreign_old.name[:-8] + "0" * 8)
    for p in (live, stale, foreign_old, foreign_new):
        p.write_bytes(b"partial")
    os.utime(foreign_old, (time.time() - 2 * 86400,) * 2)
    TaskStore(tmp_path)
    assert not stale.exists() and not foreign_old.exists()
    assert live.exists() and foreign_new.exists()


def test_unwritable_root_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PermissionError, match="TASK_DIR") as err:
        TaskStore(blocker / "tasks")
    assert str(blocker / "tasks") in str(err.value)


def test_read_only_root_is_named(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        try:
            (ro / "probe").write_text("")
        except OSError:
            pass
        else:
            pytest.skip("running as root: chmod does not prevent writing")
        with pytest.raises(PermissionError, match="TASK_DIR") as err:
            TaskStore(ro / "tasks", parameter="TASK_DIR")
        assert str(ro / "tasks") in str(err.value)
    finally:
        ro.chmod(0o700)


def test_damaged_result_is_named(tmp_path):
    store = TaskStore(tmp_path)
    path = store.save(key("img"), np.zeros(100))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(tasks.DamagedResultError, match=re.escape(str(path))):
        store.load(key("img"))
    with pytest.raises(FileNotFoundError, match="missing"):
        store.load(key("missing"))


# --------------------------------------------------------------------------- running
def test_serial_rerun_skips_finished_items(tmp_path, capsys):
    store = TaskStore(tmp_path / "store")
    calls = []

    def fn(payload, offset):
        calls.append(payload)
        return square(payload, offset)

    items = {f"img{n}": float(n) for n in range(4)}
    opts = dict(store=store, method=METHOD, settings=SETTINGS, model_hash=MODEL)
    first = run_tasks(fn, items, scheduler="serial", shared={"offset": 1.0}, **opts)
    assert first == {f"img{n}": n * n + 1.0 for n in range(4)}
    assert list(first) == list(items) and calls == [0.0, 1.0, 2.0, 3.0]
    assert capsys.readouterr().out == ""
    again = run_tasks(fn, items, scheduler="serial", shared={"offset": 1.0}, **opts)
    assert again == first and len(calls) == 4
    more = {"img9": 9.0, **items}  # one new item, first in order
    result = run_tasks(fn, more, scheduler="serial", shared={"offset": 1.0}, **opts)
    assert calls[4:] == [9.0] and list(result) == list(more) and result["img9"] == 82.0
    capsys.readouterr()
    run_tasks(fn, {**more, "img10": 10.0}, scheduler="serial", shared={"offset": 0}, **opts)
    assert re.search(r"6/6", capsys.readouterr().err)  # the bar counts skipped items as done


def test_serial_and_local_cluster_give_identical_arrays(tmp_path):
    rng = np.random.default_rng(7)
    images = {f"img{n:02d}": rng.normal(size=(1, 24, 24)).astype(np.float32) for n in range(6)}
    opts = dict(method="gradcam", settings={"layer": 2}, model_hash=MODEL, progress=False)
    shared = {"model": seeded_model()}
    serial = run_tasks(
        apply_model, images, store=TaskStore(tmp_path / "s"), scheduler="serial",
        shared=shared, **opts,
    )  # fmt: skip
    local = run_tasks(
        apply_model, images, store=TaskStore(tmp_path / "c"), scheduler="local", n_workers=2,
        shared=shared, **opts,
    )  # fmt: skip
    assert list(local) == list(images)
    for item_id in images:
        assert local[item_id].dtype == np.float32 and local[item_id].shape == (1, 2, 4, 4)
        assert local[item_id].tobytes() == serial[item_id].tobytes()
    assert temp_files(tmp_path) == []


def test_cluster_rerun_skips_and_shared_is_sent_once_per_worker(tmp_path, client):
    calls, unpickled = tmp_path / "calls", tmp_path / "unpickled"
    calls.mkdir()
    unpickled.mkdir()
    store = TaskStore(tmp_path / "store")
    items = {f"img{n}": n for n in range(8)}
    opts = dict(store=store, method=METHOD, settings=SETTINGS, model_hash=MODEL, progress=False)
    result = run_tasks(
        count_and_square, items, scheduler=client, shared={"calls_dir": str(calls)}, **opts
    )
    assert result == {f"img{n}": n * n for n in range(8)}
    assert len(list(calls.iterdir())) == 8
    run_tasks(count_and_square, items, scheduler=client, shared={"calls_dir": str(calls)}, **opts)
    assert len(list(calls.iterdir())) == 8
    more = {**items, "img8": 8}
    result = run_tasks(
        count_and_square, more, scheduler=client, shared={"calls_dir": str(calls)}, **opts
    )
    assert result["img8"] == 64 and sorted(p.name.split("-")[0] for p in calls.iterdir()) == [
        str(n) for n in range(9)
    ]
    assert client.status == "running"  # a client we pass is not closed
    # ``shared`` travels once per worker, not once per task
    items = {f"t{n}": n for n in range(8)}
    out = run_tasks(
        with_token, items, scheduler=client, shared={"token": Unpickled(str(unpickled))}, **opts
    )
    assert out == {f"t{n}": n + 1 for n in range(8)}
    assert 1 <= len(list(unpickled.iterdir())) <= 2


def test_failed_task_names_the_item_and_keeps_the_others(tmp_path, client):
    store = TaskStore(tmp_path)
    items = {f"img{n}": n for n in range(6)}
    opts = dict(store=store, method="lime", settings={}, model_hash=MODEL, progress=False)
    for scheduler in ("serial", client):
        with pytest.raises(TaskFailedError, match="'img3'") as err:
            run_tasks(fail_on_three, items, scheduler=scheduler, retries=1, **opts)
        assert "'lime'" in str(err.value)
        assert isinstance(err.value.__cause__, ValueError)
        assert "item three is broken" in str(err.value.__cause__)
        assert set(err.value.failures) == {"img3"}
        assert store.done("lime", {}, MODEL, items) == set(items) - {"img3"}
        assert store.load(TaskKey("lime", {}, MODEL, "img5")) == 105
        assert temp_files(tmp_path) == []


def test_retries_rerun_a_task_that_raised(tmp_path, client):
    items = {f"img{n}": n for n in range(4)}
    for n, scheduler in enumerate(("serial", client)):
        store = TaskStore(tmp_path / f"store{n}")
        marks = tmp_path / f"marks{n}"
        marks.mkdir()
        opts = dict(store=store, method=METHOD, settings=SETTINGS, model_hash=MODEL)
        shared = {"marks_dir": str(marks)}
        with pytest.raises(TaskFailedError, match="transient failure"):
            run_tasks(fails_once, items, scheduler=scheduler, retries=0, shared=shared, **opts)
        for mark in marks.iterdir():
            mark.unlink()
        out = run_tasks(fails_once, items, scheduler=scheduler, retries=1, shared=shared, **opts)
        assert out == {f"img{n}": -n for n in range(4)}


def test_killed_worker_loses_nothing(tmp_path):
    from distributed import Client, LocalCluster

    store = TaskStore(tmp_path)
    items = {f"img{n:02d}": n for n in range(16)}
    opts = dict(store=store, method=METHOD, settings=SETTINGS, model_hash=MODEL, progress=False)
    outcome: dict = {}
    with (
        LocalCluster(**CLUSTER) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):

        def background():
            try:
                outcome["result"] = run_tasks(
                    slow_square, items, scheduler=client, shared={"delay": 0.3}, **opts
                )
            except BaseException as exc:  # reported by the assertions below
                outcome["error"] = exc

        thread = threading.Thread(target=background, daemon=True)
        thread.start()
        deadline = time.monotonic() + WAIT_S
        while len(store.done(METHOD, SETTINGS, MODEL, items)) < 2:
            assert time.monotonic() < deadline, "no result appeared"
            time.sleep(0.05)
        victim = sorted(client.run(os.getpid).values())[0]
        os.kill(victim, signal.SIGKILL)
        thread.join(WAIT_S)
        assert not thread.is_alive(), "run_tasks did not finish after a worker was killed"
        assert victim not in client.run(os.getpid).values()  # it did die mid-run
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"] == {item_id: n * n for item_id, n in items.items()}
    folder = store.folder(METHOD, SETTINGS, MODEL)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{i}.pkl" for i in items)
    assert temp_files(tmp_path) == []
    for item_id, n in items.items():
        assert store.load(key(item_id)) == n * n


def test_unreachable_scheduler_fails_fast_and_writes_nothing(tmp_path):
    store = TaskStore(tmp_path)
    start = time.monotonic()
    with pytest.raises(ConnectionError, match="DASK_SCHEDULER") as err:
        run_tasks(
            square, {"a": 1.0}, store=store, method=METHOD, settings=SETTINGS,
            model_hash=MODEL, scheduler="tcp://127.0.0.1:9", progress=False,
        )  # fmt: skip
    assert time.monotonic() - start < 15
    assert "tcp://127.0.0.1:9" in str(err.value)
    assert files_under(tmp_path) == []


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"scheduler": "threads"}, "DASK_SCHEDULER"),
        ({"scheduler": 4}, "DASK_SCHEDULER"),
        ({"scheduler": " local"}, "DASK_SCHEDULER"),
        ({"n_workers": 0}, "N_WORKERS"),
        ({"n_workers": 2.0}, "N_WORKERS"),
        ({"n_workers": True}, "N_WORKERS"),
        ({"items": [("a", 1), ("a", 2)]}, "duplicate"),
        ({"items": {1: 1}}, "string"),
        ({"items": {"": 1}}, "item_id"),
        ({"retries": -1}, "retries"),
        ({"shared": [1]}, "shared"),
        ({"method": "x/y"}, "method"),
    ],
)
def test_bad_arguments_are_named(tmp_path, changes, named):
    args = dict(
        items={"a": 1.0}, store=TaskStore(tmp_path), method=METHOD, settings=SETTINGS,
        model_hash=MODEL, scheduler="serial", progress=False,
    )  # fmt: skip
    args.update(changes)
    items = args.pop("items")
    with pytest.raises(ValueError, match=named):
        run_tasks(square, items, **args)
    assert files_under(tmp_path) == []


def test_duplicate_ids_of_a_series_are_refused(tmp_path):
    pd = pytest.importorskip("pandas")
    items = pd.Series([1.0, 2.0], index=["a", "a"])
    with pytest.raises(ValueError, match="duplicate item id 'a'"):
        run_tasks(
            square, items, store=TaskStore(tmp_path), method=METHOD, settings=SETTINGS,
            model_hash=MODEL, scheduler="serial", progress=False,
        )  # fmt: skip


def test_client_gives_a_local_cluster_of_one_thread_workers_and_refuses_serial():
    with tasks.client("local", 2) as opened:
        threads = opened.nthreads()
        assert len(threads) == 2 and set(threads.values()) == {1}
    assert opened.status == "closed"
    with pytest.raises(ValueError, match="DASK_SCHEDULER 'serial' has no cluster"):
        with tasks.client("serial"):
            pass
    with pytest.raises(ValueError, match="N_WORKERS"):
        with tasks.client("local", 0):
            pass
