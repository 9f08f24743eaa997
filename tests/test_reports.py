"""mammo_helpers.data.reports: reports follow each row's density, view, side and site, vary
in wording, never contain one of paper 01's prompts verbatim, and are seeded."""

import itertools

import pandas as pd
import pytest

import mammo_helpers as mh

reports = mh.data.reports


def _manifest(n=40):
    rows = []
    for i, (density, view, side, modality) in enumerate(
        itertools.islice(
            itertools.cycle(itertools.product("ABCD", ("CC", "MLO"), "LR", ("DM", "s2D", "DBT"))),
            n,
        )
    ):
        rows.append(
            {
                "modality": modality,
                "view": view,
                "laterality": side,
                "site": f"site_{'AB'[i % 2]}",
                "density": density,
                "findings": [{"label": "mass"}] if i % 5 == 0 else [],
            }
        )
    return pd.DataFrame(rows)


def test_no_phrase_or_template_contains_a_prompt_verbatim():
    prompts = mh.vocab.DENSITY_PROMPTS
    assert len(prompts) == len(mh.vocab.DENSITIES) == 4
    for phrase in itertools.chain.from_iterable(reports.TISSUE_PHRASES.values()):
        assert not any(p in phrase.lower() for p in prompts), phrase
    texts = reports.density_reports(_manifest(400), seed=3)
    assert not any(p in t.lower() for t in texts for p in prompts)


def test_reports_describe_their_row():
    df = _manifest()
    texts = reports.density_reports(df, seed=0)
    assert len(texts) == len(df)
    for row, text in zip(df.itertuples(), texts, strict=True):
        lower = text.lower()
        assert any(p.lower() in lower for p in reports.TISSUE_PHRASES[row.density])
        for other in set("ABCD") - {row.density}:
            assert not any(p.lower() in lower for p in reports.TISSUE_PHRASES[other])
        assert {"L": "left", "R": "right"}[row.laterality] in lower
        assert row.site.replace("_", " ") in text
        assert ("mediolateral oblique" in lower or "mlo" in lower) == (row.view == "MLO")


def test_wording_varies_and_the_seed_fixes_it():
    df = _manifest(200)
    a, b = reports.density_reports(df, seed=1), reports.density_reports(df, seed=1)
    assert a == b and a != reports.density_reports(df, seed=2)
    density_a = [t for t, d in zip(a, df.density, strict=True) if d == "A"]
    used = {p for p in reports.TISSUE_PHRASES["A"] for t in density_a if p.lower() in t.lower()}
    assert len(used) >= 4 and len(set(a)) > 150


def test_rows_without_density_or_columns_are_named():
    df = _manifest(6)
    df.loc[3, "density"] = None
    with pytest.raises(ValueError, match=r"1 row\(s\) have no density A-D \(first: row 3, nan\)"):
        reports.density_reports(df)
    with pytest.raises(ValueError, match="lacks column.* site"):
        reports.density_reports(_manifest(4).drop(columns="site"))
