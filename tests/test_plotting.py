import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mammo_helpers.plotting import LABEL_COLOURS, legend_handles, show_mammogram  # noqa: E402


def test_show_mammogram_draws_one_box_per_finding_with_the_label_colour():
    img = np.zeros((40, 30))
    findings = [
        {"label": "mass", "xmin": 2, "ymin": 3, "xmax": 10, "ymax": 12, "malignant": True},
        {"label": "calcification", "xmin": 5, "ymin": 5, "xmax": 8, "ymax": 9, "malignant": False},
    ]
    mask = np.zeros_like(img, bool)
    mask[4:10, 3:9] = True
    fig, ax = plt.subplots()
    show_mammogram(ax, img, findings, masks=[mask, None], title="t")
    rects = ax.patches
    assert len(rects) == 2
    assert rects[0].get_xy() == (2, 3) and rects[0].get_width() == 8 and rects[0].get_height() == 9
    assert rects[1].get_linestyle() == "--"
    assert matplotlib.colors.same_color(rects[0].get_edgecolor(), LABEL_COLOURS["mass"])
    assert ax.get_title() == "t"
    plt.close(fig)


def test_show_mammogram_rejects_a_volume():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="shape"):
        show_mammogram(ax, np.zeros((2, 3, 4, 5)))
    plt.close(fig)


def test_legend_has_every_label_plus_malignancy_styles():
    handles = legend_handles()
    assert [h.get_label() for h in handles][:-2] == list(LABEL_COLOURS)
    assert handles[-1].get_linestyle() == "--"
