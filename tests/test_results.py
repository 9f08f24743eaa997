"""Tests for mammo_helpers.results: targets tables, the paper-vs-measured table, the recorder."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mammo_helpers import results  # noqa: E402
from mammo_helpers.results import (  # noqa: E402
    Recorder,
    Target,
    compare,
    load_targets,
    metric_value,
    parse_targets,
)

REPO = Path(__file__).resolve().parents[1]
HEADER = "name,description,reference,low,high,source,note\n"


def test_parse_targets_reads_numbers_metric_names_and_open_sides():
    text = HEADER + "a,A,1-2,1,2,x2020,\nb,B,below a,,a,y2021,n\n"
    a, b = parse_targets(text)
    assert a == Target("a", "A", "1-2", 1.0, 2.0, "x2020", "")
    assert b.low is None and b.high == "a" and b.note == "n"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("name,description\n", "header must be"),
        (HEADER + "a b,A,r,1,2,s,\n", "line 2: name 'a b' is not a metric name"),
        (HEADER + "a.,A,r,1,2,s,\n", "line 2: name 'a.' is not a metric name"),
        (HEADER + "a..b,A,r,1,2,s,\n", "line 2: name 'a..b' is not a metric name"),
        (HEADER + "a,A,r,1,2,s,\na,A,r,1,2,s,\n", "line 3: target 'a' appears twice"),
        (HEADER + "a,A,r,1,2,,\n", "line 2: target 'a' has no source"),
        (HEADER + "a,A,r,nan,2,s,\n", "bound 'nan' is not finite"),
        (HEADER + "a,A,r,1-2,,s,\n", "'1-2' is neither a number nor a metric name"),
    ],
)
def test_bad_targets_tables_name_the_line(text, pattern):
    with pytest.raises(ValueError, match=pattern):
        parse_targets(text, "t.csv")


def test_compare_status_against_hand_cases():
    targets = [
        Target("x", "", "", 1.0, 2.0, "s"),
        Target("y", "", "", 1.0, 2.0, "s"),
        Target("z", "", "", 1.0, 2.0, "s"),
        Target("w", "", "", None, "x", "s"),  # below another metric
        Target("v", "", "", "missing", None, "s"),
        Target("u", "", "", None, None, "s"),
        Target("t", "", "", 0.0, None, "s"),
    ]
    metrics = {"x": 1.5, "y": 0.5, "z": 2.5, "w": 1.6, "v": 3.0, "u": 7.0, "t": 0.0}
    table = compare(targets, metrics).set_index("target")
    assert table.status.to_dict() == {
        "x": "within",
        "y": "below",
        "z": "above",
        "w": "above",
        "v": "not measured",
        "u": "reference only",
        "t": "within",  # bounds are inclusive
    }
    assert table.loc["w", "band"] == "<= x" and table.loc["w", "band (values)"] == "<= 1.5"
    assert compare([Target("q", "", "", 0, 1, "s")], {}).status.iloc[0] == "not measured"
    assert (
        compare([Target("q", "", "", 0, 1, "s")], {"q": float("nan")}).status[0] == "not measured"
    )


def test_dotted_target_names_reach_into_nested_metrics():
    targets = parse_targets(HEADER + "auc.D,D,r,0.9,,s,\nauc.A,A,r,,auc.D,s,\nauc.E,E,r,0,1,s,\n")
    metrics = {"auc": {"A": 0.95, "D": 0.92}, "flat": 1.0}
    table = compare(targets, metrics).set_index("target")
    assert table.measured.iloc[:2].tolist() == [0.92, 0.95] and np.isnan(table.measured.iloc[2])
    assert table.status.tolist() == ["within", "above", "not measured"]
    assert metric_value(metrics, "auc.D") == 0.92 and metric_value(metrics, "flat.x") is None
    assert metric_value(metrics, "nope") is None and metric_value(metrics, "auc") == metrics["auc"]


def test_recorder_writes_figures_tables_and_metrics_atomically(tmp_path):
    rec = Recorder(
        tmp_path / "out", chapter="x", targets=[Target("a", "d", "r", 0, 1, "s")], seed=3
    )
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    assert rec.savefig(fig, "line") == tmp_path / "out" / "line.png"
    plt.close(fig)
    rec.log(
        a=np.float32(0.5), n=np.int64(3), nested={"k": np.array([1.0, 2.0])}, flag=np.bool_(True)
    )
    table = rec.compare()
    assert table.status.tolist() == ["within"]
    assert (tmp_path / "out" / "paper_vs_measured.csv").read_text().startswith("target,what,")
    path = rec.write(provenance={"seed": 3})
    doc = json.loads(path.read_text())
    assert doc["chapter"] == "x" and doc["seed"] == 3 and doc["figures"] == ["line.png"]
    assert doc["metrics"] == {"a": 0.5, "n": 3, "nested": {"k": [1.0, 2.0]}, "flag": True}
    assert doc["paper_vs_measured"][0]["status"] == "within"
    assert doc["provenance"] == {"seed": 3} and doc["wall_time_s"] >= 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "line.png",
        "metrics.json",
        "paper_vs_measured.csv",
    ]
    assert rec.unmet() == []
    rec.log(a=2.0)
    assert rec.unmet() == ["a"]


def test_recorder_resolves_out_dir_against_the_project_root(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    rec = Recorder("results/x", chapter="x", targets=[])
    assert rec.out_dir == REPO / "results" / "x"
    assert not (tmp_path / "results").exists()


def test_unstorable_metrics_are_named():
    rec = Recorder("results/x", chapter="x", targets=[])
    with pytest.raises(TypeError, match="object"):
        rec.log(bad=object())
    assert results.to_jsonable((1, np.float64(2.0))) == [1, 2.0]


def _bib_keys() -> set[str]:
    text = (REPO / "book" / "references.bib").read_text(encoding="utf-8")
    return set(re.findall(r"^@\w+\{([^,]+),", text, flags=re.M))


@pytest.mark.parametrize(
    "chapter", sorted(p.stem for p in (REPO / "mammo_helpers" / "targets").glob("*.csv"))
)
def test_every_shipped_targets_table_loads_and_cites_the_bibliography(chapter):
    targets = load_targets(chapter)
    assert targets
    keys = _bib_keys()
    for t in targets:
        for source in t.source.split(";"):
            assert source in keys, f"{chapter}: {t.name} cites {source!r}, not in references.bib"
    names = {t.name for t in targets}
    for t in targets:  # a bound naming a metric names one that is itself a target or measured
        for bound in (t.low, t.high):
            assert not isinstance(bound, str) or bound.isidentifier()
    assert (REPO / "notebooks" / f"{chapter}.ipynb").is_file(), names


def test_missing_targets_table_is_named():
    with pytest.raises(FileNotFoundError, match="no targets table for chapter '99_x'"):
        load_targets("99_x")


def test_undefined_values_are_written_as_null(tmp_path):
    assert results.to_jsonable([np.nan, np.float32("inf"), -math.inf, 1.5]) == [None] * 3 + [1.5]
    rec = Recorder(tmp_path / "out", chapter="x", targets=[])
    rec.log(auc=float("nan"), per={"a": np.float64("nan"), "b": 0.5})
    text = rec.write().read_text()
    assert "NaN" not in text
    doc = json.loads(text)
    assert doc["metrics"] == {"auc": None, "per": {"a": None, "b": 0.5}}
