"""mammo_helpers.preprocess.rois: ROIs of a tiny phantom cohort, their findings and lesion
masks in ROI coordinates, checked against the stored image and mask files."""

import cv2
import numpy as np
import pytest

import mammo_helpers as mh
from mammo_helpers.data.cohort import build_cohort
from mammo_helpers.data.phantom import PhantomConfig


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    cfg = PhantomConfig(seed=3, spacing_mm=0.6, lesion_prevalence=1.0)
    folder = tmp_path_factory.mktemp("rois")
    return build_cohort(2, cfg, cache_dir=folder, workers=1, progress=False)


def test_rois_hold_the_breast_and_the_findings_in_roi_pixels(cohort):
    manifest = cohort.manifest
    rois = mh.preprocess.rois.load_rois(manifest)
    assert list(rois) == manifest.image_id.tolist()
    with_findings = manifest[manifest.findings.map(len) > 0]
    assert len(with_findings)
    for row in with_findings.itertuples():
        roi = rois[row.image_id]
        x0, y0, x1, y1 = roi.transform.crop_box
        assert roi.image.shape == (y1 - y0, x1 - x0, 3) and roi.image.dtype == np.float32
        assert roi.breast.shape == roi.hw and roi.breast.mean() > 0.3
        for f_img, f_roi in zip(row.findings, roi.findings, strict=True):
            assert f_roi["xmin"] == pytest.approx(f_img["xmin"] - x0)
            assert f_roi["ymax"] == pytest.approx(f_img["ymax"] - y0)
            full = cv2.imread(str(cohort.root / f_img["mask_path"]), cv2.IMREAD_UNCHANGED) > 0
            mask = roi.lesion_masks[f_img["label"]]
            assert mask.shape == roi.hw
            assert (full[y0:y1, x0:x1] <= mask).all()  # the union holds each lesion
            ys, xs = np.nonzero(full[y0:y1, x0:x1])
            assert xs.min() >= f_roi["xmin"] - 1 and ys.max() <= f_roi["ymax"] + 1
        label = roi.findings[0]["label"]
        assert len(roi.boxes(label)) == sum(f["label"] == label for f in roi.findings)
        assert roi.labels == list(dict.fromkeys(f["label"] for f in roi.findings))


def test_missing_mask_file_is_named(cohort, tmp_path):
    row = next(r for r in cohort.manifest.itertuples() if r.findings)
    with pytest.raises(FileNotFoundError, match="lesion mask .* is missing"):
        mh.preprocess.rois.load_roi(row, cohort_root=tmp_path)
    roi = mh.preprocess.rois.load_roi(row)  # no cohort root: no masks, findings kept
    assert roi.lesion_masks == {} and len(roi.findings) == len(row.findings)
