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


def test_setup_sets_one_style_and_checks_dpi():
    from mammo_helpers.plotting import setup

    setup(dpi=90)
    assert matplotlib.rcParams["figure.dpi"] == 90 and matplotlib.rcParams["savefig.dpi"] == 90
    setup()
    assert matplotlib.rcParams["figure.dpi"] == 110
    for bad in (0, 90.5, True, 10_000):
        with pytest.raises(ValueError, match="dpi"):
            setup(dpi=bad)


def test_plot_roc_draws_sklearn_curve_and_returns_its_auc():
    from sklearn.metrics import roc_auc_score, roc_curve

    from mammo_helpers.plotting import plot_roc

    rng = np.random.default_rng(0)
    y = np.r_[np.ones(40), np.zeros(60)]
    s = y + rng.normal(0, 1, 100)
    fig, ax = plt.subplots()
    auc = plot_roc(ax, y, s, label="test")
    assert auc == pytest.approx(roc_auc_score(y, s))
    fpr, tpr, _ = roc_curve(y, s)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), fpr)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), tpr)
    assert ax.get_legend().get_texts()[0].get_text() == f"test: AUC {auc:.2f}"
    with pytest.raises(ValueError, match="both classes"):
        plot_roc(ax, np.ones(5), np.arange(5.0))
    with pytest.raises(ValueError, match="equal length"):
        plot_roc(ax, y, s[:-1])
    plt.close(fig)


def test_show_heatmap_overlays_a_map_of_the_image_size():
    from mammo_helpers.plotting import show_heatmap

    img = np.zeros((20, 10))
    heat = np.arange(200.0).reshape(20, 10)
    heat[0, 0] = np.nan
    fig, ax = plt.subplots()
    finding = {"label": "mass", "xmin": 1, "ymin": 1, "xmax": 4, "ymax": 5, "malignant": True}
    artist = show_heatmap(ax, img, heat, findings=[finding], vmin=0, vmax=199)
    assert artist.get_array().mask[0, 0] and artist.get_clim() == (0, 199)
    assert len(ax.patches) == 1 and len(fig.axes) == 2  # the map's colour bar
    with pytest.raises(ValueError, match=r"heatmap has shape \(3, 3\)"):
        show_heatmap(ax, img, np.zeros((3, 3)))
    plt.close(fig)


def test_exam_grid_shows_one_exam_per_class_in_hanging_order(tmp_path):
    import os
    import warnings

    from mammo_helpers.data.adapters import AdapterWarning, load_dataset
    from mammo_helpers.data.examples import example_dataset
    from mammo_helpers.plotting import exam_grid

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AdapterWarning)
        manifest = load_dataset("vindr", example_dataset("vindr", tmp_path / "vindr"))
    complete = manifest.groupby("study_id").path.agg(lambda p: all(map(os.path.isfile, p)))
    manifest = manifest[manifest.study_id.map(complete)]  # the example lacks some DICOMs
    classes = sorted(manifest.density.dropna().unique())
    fig = exam_grid(manifest, classes=[*classes, "Z"], figsize=(4, 4))
    axes = np.asarray(fig.axes).reshape(len(classes) + 1, 4)
    for row, value in enumerate(classes):
        study = manifest[manifest.density == value].study_id.unique()[0]
        shown = [ax.get_title() for ax in axes[row] if ax.get_title()]
        expected = manifest[manifest.study_id == study]
        assert len(shown) == len(expected) and all(t.startswith(f"{value} · ") for t in shown)
    assert all(not ax.get_title() for ax in axes[-1])  # no exam of class Z: empty row
    with pytest.raises(ValueError, match="no column 'colour'"):
        exam_grid(manifest, by="colour")
    plt.close(fig)


def test_pipeline_panels_move_the_boxes_with_each_step():
    from mammo_helpers.boxes import BoxTransform
    from mammo_helpers.plotting import pipeline_panels

    finding = {"label": "mass", "xmin": 10, "ymin": 20, "xmax": 30, "ymax": 40, "malignant": True}
    flip = BoxTransform((100, 50), crop_box=(0, 10, 50, 90), flip=True, out_hw=(40, 25))
    fig = pipeline_panels(
        [("original", np.zeros((100, 50)), None), ("flipped", np.zeros((40, 25, 3)), flip)],
        [finding],
    )
    first, second = (ax.patches[0] for ax in fig.axes)
    assert first.get_xy() == (10, 20)
    (expected,), _ = flip([[10, 20, 30, 40]])
    assert second.get_xy() == pytest.approx((expected[0], expected[1]))
    plt.close(fig)


def test_exam_grid_skips_exams_with_missing_files(tmp_path):
    import pandas as pd

    from mammo_helpers.plotting import exam_grid

    missing = pd.DataFrame(
        {"study_id": ["s"], "density": ["A"], "path": [str(tmp_path / "gone.dcm")],
         "laterality": ["L"], "view": ["CC"], "site": ["x"], "modality": ["DM"], "findings": [[]]}
    )  # fmt: skip
    fig = exam_grid(missing, classes=["A"], figsize=(4, 1))
    assert not any(ax.get_title() for ax in fig.axes)
    plt.close(fig)


def test_plot_confusion_shows_row_shares_and_counts():
    import pandas as pd

    from mammo_helpers.plotting import plot_confusion

    table = pd.DataFrame([[8, 2, 0], [1, 3, 0], [0, 0, 0]], index=list("ABC"), columns=list("ABC"))
    fig, ax = plt.subplots()
    shares = plot_confusion(ax, table, title="t")
    np.testing.assert_allclose(shares, [[0.8, 0.2, 0], [0.25, 0.75, 0], [0, 0, 0]])
    texts = [t.get_text() for t in ax.texts]
    assert texts[0] == "8\n80%" and texts[3] == "1\n25%" and texts[8] == "0\n0%"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A", "B", "C"]
    np.testing.assert_allclose(ax.images[0].get_array(), shares)
    assert ax.images[0].get_interpolation() == "nearest"  # one flat colour per cell
    with pytest.raises(ValueError, match="square"):
        plot_confusion(ax, np.ones((2, 3)))
    plt.close(fig)


def test_plot_history_draws_each_metric_by_epoch_and_marks_the_best():
    from mammo_helpers.plotting import plot_history
    from mammo_helpers.training import History

    history = History(
        [{"epoch": e, "loss": 1 / (e + 1), "val_auc": 0.5 + 0.1 * e} for e in range(4)],
        best_epoch=2,
    )
    fig, ax = plt.subplots()
    plot_history(ax, history, ("loss", "val_auc"))
    assert [list(line.get_ydata()) for line in ax.lines[:2]] == [
        [1.0, 0.5, 1 / 3, 0.25],
        [0.5, 0.6, 0.7, 0.8],
    ]
    assert list(ax.lines[2].get_xdata()) == [2, 2]
    with pytest.raises(KeyError, match="no \\['val_loss'\\]"):
        plot_history(ax, history, ("val_loss",))
    plt.close(fig)
