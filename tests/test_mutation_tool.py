"""tools/mutation.py: the sampled kill rate and its Wilson interval (hand-computed)."""

import importlib.util
import math
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "mutation_tool", Path(__file__).resolve().parents[1] / "tools" / "mutation.py"
)
mutation = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mutation)


def _wilson(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_sampled_kill_rate_counts_only_the_sample_and_skips_skipped():
    statuses = {f"m{i}": "killed" for i in range(8)}
    statuses |= {"t": "timeout", "s": "survived", "k1": "skipped", "k2": "skipped"}
    statuses |= {"other": "survived", "unrun": "not checked"}  # not in the sample
    statuses |= {"lost": "not checked"}  # sampled, but mutmut never ran it
    names = [n for n in statuses if n not in ("other", "unrun")]
    stats = mutation._sampled_stats(statuses, names)
    assert (stats["total"], stats["sampled"], stats["skipped"]) == (15, 13, 2)
    assert stats["tested"] == 10  # 13 - 2 skipped - 1 not checked
    assert stats["kill_rate"] == 0.9  # (8 killed + 1 timeout) / 10
    low, high = _wilson(9, 10)
    assert stats["kill_rate_ci95"] == [pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4)]
    assert stats["survived_names"] == ["s"]


def test_every_target_names_files_and_tests_that_exist():
    root = Path(__file__).resolve().parents[1]
    for paths, tests in mutation.TARGETS.values():
        assert all((root / p).exists() for p in paths)
        assert all(list(root.glob(t)) for t in tests)


def test_a_sample_that_never_ran_is_an_error_not_a_zero_rate():
    with pytest.raises(SystemExit, match="no sampled mutant was tested"):
        mutation._sampled_stats({"a": "not checked", "b": "skipped"}, ["a", "b"])
