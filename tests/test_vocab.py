"""Tests for mammo_helpers.vocab: the shared words and their checks."""

from __future__ import annotations

import pytest

from mammo_helpers import vocab


def test_four_view_orders_hold_the_same_four_views():
    expected = {(lat, view) for lat in vocab.LATERALITIES for view in vocab.VIEWS}
    assert set(vocab.FOUR_VIEWS) == expected == set(vocab.HANGING_ORDER)
    assert len(vocab.FOUR_VIEWS) == len(vocab.HANGING_ORDER) == 4
    # paper 04 §III-A model order, and the radiologist's hanging order of its Fig. 1
    assert vocab.FOUR_VIEWS[0] == ("L", "CC") and vocab.FOUR_VIEWS[1] == ("L", "MLO")
    assert vocab.HANGING_ORDER[:2] == (("R", "CC"), ("L", "CC"))


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (vocab.check_laterality, "L", "left"),
        (vocab.check_view, "MLO", "ML"),
    ],
)
def test_checks_accept_the_vocabulary_and_name_the_argument(check, good, bad):
    assert check(good) == good
    with pytest.raises(ValueError, match=r"side must be one of .*got 'left'|view must be"):
        check(bad, "side" if bad == "left" else "view")
    with pytest.raises(ValueError, match="got None"):
        check(None)
