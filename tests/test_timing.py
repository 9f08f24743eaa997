"""mammo_helpers.timing: the median of the repeats after the warm-up calls, and stages that
add up (with a fake clock, so nothing here depends on the machine being quiet)."""

import pytest

import mammo_helpers as mh


@pytest.fixture
def clock(monkeypatch):
    """time.perf_counter advancing by the durations the test queues."""
    state = {"now": 0.0, "steps": []}

    def perf_counter():
        if state["steps"]:
            state["now"] += state["steps"].pop(0)
        return state["now"]

    monkeypatch.setattr(mh.timing.time, "perf_counter", perf_counter)
    return state


def test_median_of_repeats_after_warmup(clock):
    calls = []
    # each timed call reads the clock twice: start (+0) and end (+duration)
    clock["steps"] = [0, 5.0, 0, 1.0, 0, 3.0]
    seconds = mh.timing.median_seconds(lambda: calls.append(1), repeats=3, warmup=2)
    assert seconds == 3.0 and len(calls) == 5


@pytest.mark.parametrize("kwargs", [{"repeats": 0}, {"warmup": -1}, {"repeats": 1.5}])
def test_bad_counts_are_named(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        mh.timing.median_seconds(lambda: None, **kwargs)


def test_stages_add_up_and_survive_errors(clock):
    stages = mh.timing.Stages()
    clock["steps"] = [0, 2.0, 0, 0.5, 0, 1.0]
    with stages("train"):
        pass
    with stages("train"):
        pass
    with pytest.raises(RuntimeError), stages("maps"):
        raise RuntimeError("boom")
    assert dict(stages) == {"train": 2.5, "maps": 1.0}
    assert "train: 2.5 s" in repr(stages)


def test_timed_returns_the_value_and_its_seconds(clock):
    clock["steps"] = [0, 2.5]
    assert mh.timing.timed(lambda: "done") == ("done", 2.5)
