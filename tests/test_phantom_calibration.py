"""Every calibration constant is documented with what it was tuned against."""

import re
from pathlib import Path

from mammo_helpers.data.phantom import calibration
from mammo_helpers.data.phantom.calibration import CALIBRATION, calibration_table

PHANTOM = Path(calibration.__file__).parent


def _constants() -> dict:
    return {
        name: value
        for name, value in vars(calibration).items()
        if re.fullmatch(r"[A-Z][A-Z0-9_]+", name) and name != "CALIBRATION"
    }


def test_every_constant_has_exactly_one_row():
    names = [c.name for c in CALIBRATION]
    assert len(set(names)) == len(names), "a constant is listed twice"
    assert set(names) == set(_constants()), "constants and table differ"


def test_every_row_says_what_it_sets_and_what_it_was_tuned_against():
    for c in CALIBRATION:
        assert c.sets and c.target and c.unit, c.name
        # a measured target needs a source; a modelling choice says so
        assert c.source or c.target.startswith("chosen"), c.name


def test_the_table_has_one_row_per_constant_for_chapter_00():
    table = calibration_table()
    assert list(table.index) == [c.name for c in CALIBRATION]
    assert {"value", "unit", "tuned against", "source", "measured by"} <= set(table.columns)


def test_no_phantom_module_cites_a_file_outside_the_repository():
    offenders = [
        str(p.relative_to(PHANTOM))
        for p in PHANTOM.rglob("*.py")
        if re.search(r"notes/\w+\.md|phantom\.md", p.read_text())
    ]
    assert not offenders


def test_every_measured_by_entry_names_a_validation_check_or_a_cohort_table():
    from mammo_helpers.data.phantom import validation

    for c in CALIBRATION:
        for part in filter(None, (x.strip() for x in c.check.split(","))):
            if part.startswith("cohort "):
                continue  # measured on the cohort's manifest or findings
            assert callable(getattr(validation, part, None)), (c.name, part)
    assert sum(bool(c.check) for c in CALIBRATION) >= 10
