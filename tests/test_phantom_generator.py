import numpy as np
import pytest

from mammo_helpers.data.phantom import PhantomConfig, density_from_pd, render_view, sample_patient

CFG = PhantomConfig(seed=7, resolution_scale=12.0, lesion_prevalence=1.0)


def test_same_seed_same_pixels_other_seed_other_pixels():
    p = sample_patient(CFG, 0)
    a = render_view(CFG, p, "L", "CC")
    b = render_view(CFG, sample_patient(CFG, 0), "L", "CC")
    assert np.array_equal(a.stored, b.stored)
    other = PhantomConfig(seed=8, resolution_scale=12.0, lesion_prevalence=1.0)
    c = render_view(other, sample_patient(other, 0), "L", "CC")
    assert a.stored.shape != c.stored.shape or not np.array_equal(a.stored, c.stored)


def test_right_breast_sits_on_the_right_and_boxes_contain_their_masks():
    for i in range(4):
        p = sample_patient(CFG, i)
        for lat in "LR":
            im = render_view(CFG, p, lat, "MLO")
            cols = np.flatnonzero(im.breast_mask.any(axis=0))
            width = im.breast_mask.shape[1]
            if lat == "L":
                assert cols[0] == 0
            else:
                assert cols[-1] == width - 1
            for f in im.findings:
                rr, cc = np.nonzero(f["mask"])
                assert f["xmin"] == cc.min() and f["xmax"] == cc.max() + 1
                assert f["ymin"] == rr.min() and f["ymax"] == rr.max() + 1
                assert f["lesion_id"].startswith(lat)
                assert f["label"] in {
                    "mass",
                    "calcification",
                    "architectural_distortion",
                    "asymmetry",
                }


def test_masses_are_harder_to_see_in_dense_breasts():
    # the same mass in the same breast: its signal falls as glandular tissue replaces fat
    cfg = PhantomConfig(
        seed=1, resolution_scale=10.0, lesion_prevalence=1.0, lesion_mix=(1.0, 0.0, 0.0, 0.0)
    )
    compared = 0
    for i in range(3):
        p = sample_patient(cfg, i)
        signals = []
        for vgf in (0.05, 0.3, 0.6):
            p.vgf = {"L": vgf, "R": vgf}
            im = render_view(cfg, p, "L", "CC", modality="DM")
            signals.append(np.mean([f["contrast"] for f in im.findings]) if im.findings else None)
        if None in signals:
            continue
        assert signals[0] > signals[1] > signals[2] > 0
        compared += 1
    assert compared >= 2


def test_reader_cut_points():
    assert [density_from_pd(x) for x in (1, 20, 50, 90)] == list("ABCD")


def test_bad_config_and_view_are_rejected_with_names():
    with pytest.raises(ValueError, match="unknown site"):
        PhantomConfig(sites=("nowhere",), site_weights=(1.0,))
    with pytest.raises(ValueError, match="site_weights"):
        PhantomConfig(site_weights=(1.0,))
    with pytest.raises(ValueError, match="view"):
        render_view(CFG, sample_patient(CFG, 0), "L", "ML")
