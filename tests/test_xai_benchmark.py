"""mammo_helpers.xai.benchmark: the structure and the error columns of the three
comparisons on a tiny model (the seconds are measured, never asserted)."""

import numpy as np
import pytest
import torch
from torch import nn

import mammo_helpers as mh

bench = mh.xai.benchmark


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2))
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        h = self.body(x).flatten(1)
        return h, self.head(h)


def _windows(n=3):
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def test_throughput_and_loop_comparison_report_rates_and_agreement():
    bank = mh.xai.relax.MaskBank(20, 4, 0.5, 8)
    a = bench.throughput_ratio(Tiny(), _windows(), bank, batch_size=16, repeats=1)
    assert a["ratio"] == pytest.approx(a["masked_per_s"] / a["forward_per_s"])
    assert a["forward_per_s"] > 0
    b = bench.loop_comparison(Tiny(), _windows(), bank, batch_size=16, repeats=1)
    assert b["speedup"] == pytest.approx(b["loop_s_per_window"] / b["engine_s_per_window"])
    assert b["max_abs_delta_r"] <= 1e-5


def test_error_vs_time_rows_and_the_speedup_at_a_target():
    rows = bench.error_vs_time(
        Tiny(), _windows(), cells=4, p=0.5, batch_size=32, reference_masks=256,
        mask_counts=(16, 128), tolerances=(0.05,), min_masks=32,
    )  # fmt: skip
    assert [r["method"] for r in rows] == ["engine", "engine", "adaptive 0.05", "paper loop"]
    errors = {r["masks"]: r["mean_abs_error"] for r in rows if r["method"] == "engine"}
    assert errors[128] < errors[16]  # more masks, smaller error against the reference
    assert all(r["mean_abs_error"] > 0 for r in rows)  # independent seeds: never exact
    assert all(r["p95_abs_error"] >= r["mean_abs_error"] * 0.5 for r in rows)
    result = bench.speedup_at_error(rows, target=1.0)
    fastest = min(rows[:-1], key=lambda r: r["s_per_window"])
    assert result["best"] == fastest
    assert result["speedup"] == pytest.approx(rows[-1]["s_per_window"] / fastest["s_per_window"])
    none = bench.speedup_at_error(rows, target=0.0)
    assert none["best"] is None and none["speedup"] is None
    assert np.isfinite([r["s_per_window"] for r in rows]).all()
