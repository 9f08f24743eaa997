"""Benchmark of the five dataset adapters on generated metadata of the real datasets' size.

Not part of the test-suite (the name does not start with ``test_``); run it on demand::

    python tests/bench_adapters.py                 # all five, 3 repeats, real sizes
    python tests/bench_adapters.py --only vindr,rsna --repeat 5
    python tests/bench_adapters.py --scale 0.1     # smaller tables (a quick look)
    python tests/bench_adapters.py --legacy        # also the row-loop adapters, interleaved

Sizes (``--scale 1``):

* VinDr-Mammo: 20,000 breast-level rows (5,000 studies x 4 views) and 20,486 finding rows
  (18,232 'No Finding' rows, 2,254 boxes) with the real vocabularies, label counts, image
  sizes and the 20 + 1 + 19 boxes that stick out of the image;
* RSNA: 54,706 rows of 11,913 patients, including the 38 AT/LM/ML/LMO views;
* EMBED Open Data: 480,323 metadata rows (2D and C-view, a few spot/magnification, special
  views and screen-saves) and one clinical row per exam plus one per extra finding;
* CBIS-DDSM: the four case-description CSVs (1,318 + 378 mass and 1,546 + 326 calc rows,
  3,103 full images) with a tiny DICOM for every full image, ROI mask and crop (hard links to
  a few templates, so the run measures the adapter and its header/mask reads, not megapixels);
* INbreast: 410 images of 115 patients, 343 XML outline files, tiny DICOMs.

VinDr, RSNA and EMBED are read with ``require_files=False`` (no image is touched); CBIS-DDSM
and INbreast must read DICOM headers and ROI masks. Rows/s counts every metadata row read.
The generators are also used by ``tests/test_adapters_legacy.py`` (small tables with injected
bad rows), so they take a size and a seed and are deterministic.
"""

from __future__ import annotations

import argparse
import csv
import os
import plistlib
import statistics
import sys
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from mammo_helpers.io import write_dicom

# --------------------------------------------------------------------------- helpers


def _hex(rng: np.random.Generator, n: int, width: int = 32) -> np.ndarray:
    """``n`` distinct lower-case hex strings of ``width`` characters."""
    out: set[str] = set()
    while len(out) < n:
        raw = rng.integers(0, 16, size=(n - len(out), width))
        out.update("".join("0123456789abcdef"[d] for d in row) for row in raw)
    return np.array(sorted(out))[rng.permutation(n)]


def _unique_ints(rng: np.random.Generator, lo: int, hi: int, n: int) -> np.ndarray:
    """``n`` distinct integers in ``[lo, hi)`` in random order."""
    out = np.unique(rng.integers(lo, hi, size=n + n // 10 + 10))
    while len(out) < n:
        out = np.unique(np.concatenate([out, rng.integers(lo, hi, size=n)]))
    return rng.permutation(out)[:n]


def _write_csv(path: Path, frame: pd.DataFrame, sep: str = ",") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, sep=sep, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)


def _choice(rng, values, counts, n):
    p = np.asarray(counts, dtype=float)
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=n, p=p / p.sum())]


def _template(path: Path, pixels: np.ndarray, **kw) -> Path:
    defaults = {
        "pixel_spacing_mm": 0.07,
        "laterality": "L",
        "view": "CC",
        "patient_id": "p",
        "study_id": "s",
        "image_id": path.stem,
    }
    write_dicom(path, pixels, **(defaults | kw))
    return path


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        dst.write_bytes(src.read_bytes())


# --------------------------------------------------------------------------- VinDr-Mammo
VINDR_LABEL_COUNTS = {  # label counts of finding_annotations.csv (PhysioNet 1.0.0)
    "Mass": 1226,
    "Suspicious Calcification": 543,
    "Focal Asymmetry": 269,
    "Architectural Distortion": 119,
    "Asymmetry": 97,
    "Skin Thickening": 57,
    "Suspicious Lymph Node": 57,
    "Nipple Retraction": 37,
    "Global Asymmetry": 26,
    "Skin Retraction": 18,
}
VINDR_NO_BIRADS = {
    "Skin Thickening",
    "Suspicious Lymph Node",
    "Nipple Retraction",
    "Skin Retraction",
}


def make_vindr(root: Path, *, n_studies: int = 5000, n_boxes: int | None = None, seed: int = 0):
    """VinDr-Mammo metadata of ``n_studies`` studies (4 images each); returns ``root``."""
    rng = np.random.default_rng(seed)
    n_img = 4 * n_studies
    n_boxes = round(2254 * n_img / 20000) if n_boxes is None else n_boxes
    studies = _hex(rng, n_studies)
    series = _hex(rng, n_studies)
    images = _hex(rng, n_img)
    lat = np.tile(["L", "L", "R", "R"], n_studies)
    view = np.tile(["CC", "MLO", "CC", "MLO"], n_studies)
    size_kind = rng.choice(3, size=n_studies, p=[15244 / 20000, 3796 / 20000, 960 / 20000])
    heights = np.array([3518, 2812, 3580])[size_kind].repeat(4)
    widths = np.array([2800, 2012, 2702])[size_kind].repeat(4)
    birads = _choice(rng, [1, 2, 3, 4, 5], [13406, 4676, 930, 762, 226], n_img)
    density = _choice(rng, list("ABCD"), [100, 1908, 15292, 2700], n_studies).repeat(4)
    split = np.where(rng.permutation(n_studies) < round(0.8 * n_studies), "training", "test")
    breast = pd.DataFrame(
        {
            "study_id": studies.repeat(4),
            "series_id": series.repeat(4),
            "image_id": images,
            "laterality": lat,
            "view_position": view,
            "height": heights,
            "width": widths,
            "breast_birads": [f"BI-RADS {b}" for b in birads],
            "breast_density": [f"DENSITY {d}" for d in density],
            "split": split.repeat(4),
        }
    )
    # boxes on ~78 % as many images as boxes (1,768 images carry the 2,254 boxes)
    n_with = max(1, round(n_boxes * 1768 / 2254)) if n_boxes else 0
    with_box = np.sort(rng.choice(n_img, size=n_with, replace=False)) if n_with else []
    box_img = np.sort(np.concatenate([with_box, rng.choice(with_box, n_boxes - n_with)]))
    labels = _choice(rng, list(VINDR_LABEL_COUNTS), list(VINDR_LABEL_COUNTS.values()), n_boxes)
    second = rng.random(n_boxes) < 195 / 2254
    cats = [
        f"['{a}', 'Mass']" if s and a != "Mass" else f"['{a}']"
        for a, s in zip(labels, second, strict=True)
    ]
    w, h = widths[box_img], heights[box_img]
    bw = np.clip(rng.lognormal(np.log(228), 0.5, n_boxes), 20, 1500)
    bh = np.clip(rng.lognormal(np.log(244), 0.5, n_boxes), 20, 1500)
    x0 = rng.uniform(0, w - bw)
    y0 = rng.uniform(0, h - bh)
    x1, y1 = x0 + bw, y0 + bh
    # the real data quality: 20 boxes past the right edge, 1 past the bottom, 19 negative
    k = rng.permutation(n_boxes)
    n_right, n_bottom, n_neg = (round(v * n_boxes / 2254) for v in (20, 1, 19))
    right = k[:n_right]
    x1[right] = w[right] + rng.uniform(1, 40, n_right)
    bottom = k[n_right : n_right + n_bottom]
    y1[bottom] = h[bottom] + 5
    neg = k[n_right + n_bottom : n_right + n_bottom + n_neg]
    x0[neg] = -rng.uniform(1, 20, n_neg)
    f_birads = [None if a in VINDR_NO_BIRADS else f"BI-RADS {rng.integers(3, 6)}" for a in labels]
    boxes = pd.DataFrame(
        {
            "row": box_img,
            "finding_categories": cats,
            "finding_birads": f_birads,
            "xmin": np.round(x0, 2),
            "ymin": np.round(y0, 2),
            "xmax": np.round(x1, 2),
            "ymax": np.round(y1, 2),
        }
    )
    empty = np.setdiff1d(np.arange(n_img), box_img)
    none = pd.DataFrame(
        {"row": empty, "finding_categories": "['No Finding']", "finding_birads": None}
    )
    rows = pd.concat([boxes, none]).sort_values("row", kind="stable")
    base = breast.iloc[rows["row"].to_numpy()].reset_index(drop=True)
    finding = pd.concat(
        [
            base.drop(columns="split"),
            rows.drop(columns="row").reset_index(drop=True),
            base[["split"]],
        ],
        axis=1,
    )
    _write_csv(root / "breast-level_annotations.csv", breast)
    _write_csv(root / "finding_annotations.csv", finding)
    return root


# --------------------------------------------------------------------------- RSNA
def make_rsna(root: Path, *, n_rows: int = 54706, seed: int = 0) -> Path:
    """RSNA ``train.csv`` with ``n_rows`` images (real view, site and label mix)."""
    rng = np.random.default_rng(seed)
    n_pat = max(1, round(n_rows * 11913 / 54706))
    extra = n_rows - 4 * n_pat
    counts = np.full(n_pat, 4)
    if extra > 0:
        np.add.at(counts, rng.integers(0, n_pat, extra), 1)
    patients = np.sort(_unique_ints(rng, 10000, 66000, n_pat))
    pid = patients.repeat(counts)[:n_rows]
    n = len(pid)
    base_views = [("L", "CC"), ("L", "MLO"), ("R", "CC"), ("R", "MLO")]
    pos = np.concatenate([np.arange(c) for c in counts])[:n]
    lv = [base_views[p % 4] for p in pos]
    lat = np.array([a for a, _ in lv], dtype=object)
    view = np.array([b for _, b in lv], dtype=object)
    odd = rng.choice(n, size=round(38 * n / 54706), replace=False)
    view[odd] = _choice(rng, ["AT", "LM", "ML", "LMO"], [19, 10, 8, 1], len(odd))
    site_p = rng.choice([1, 2], size=n_pat, p=[0.54, 0.46])
    site = site_p.repeat(counts)[:n]
    age = rng.integers(26, 90, n_pat).astype(float).repeat(counts)[:n]
    age[rng.choice(n, size=round(37 * n / 54706), replace=False)] = np.nan
    cancer = (rng.random(n) < 1158 / 54706).astype(int)
    density = np.where(site == 1, _choice(rng, list("ABCD"), [3105, 12651, 12175, 1539], n), None)
    birads = np.where(
        site == 1, _choice(rng, ["0.0", "1.0", "2.0", None], [10, 60, 25, 5], n), None
    )
    frame = pd.DataFrame(
        {
            "site_id": site,
            "patient_id": pid,
            "image_id": _unique_ints(rng, 10**5, 2 * 10**9, n),
            "laterality": lat,
            "view": view,
            "age": [None if np.isnan(a) else f"{a:.1f}" for a in age],
            "cancer": cancer,
            "biopsy": np.maximum(cancer, rng.random(n) < 0.05).astype(int),
            "invasive": (cancer & (rng.random(n) < 0.7)).astype(int),
            "BIRADS": birads,
            "implant": (rng.random(n) < 0.03).astype(int),
            "density": density,
            "machine_id": _choice(rng, [21, 29, 48, 49, 93, 170, 190, 197, 210, 216], [1] * 10, n),
            "difficult_negative_case": np.where(rng.random(n) < 0.13, "True", "False"),
        }
    )
    _write_csv(root / "train.csv", frame)
    return root


# --------------------------------------------------------------------------- EMBED
_EMBED_NAS = "/mnt/NAS2/mammo/anon_dicom"


def make_embed(root: Path, *, n_images: int = 480_323, seed: int = 0) -> Path:
    """EMBED Open Data tables with about ``n_images`` metadata rows (tables/ layout)."""
    rng = np.random.default_rng(seed)
    per_exam = 6.7
    n_exam = max(1, round(n_images / per_exam))
    n_pat = max(1, round(n_exam / 3.1))
    empi = _unique_ints(rng, 10**7, 10**8, n_pat)
    exam_pat = np.sort(rng.integers(0, n_pat, n_exam))
    acc = _unique_ints(rng, 10**15, 10**16, n_exam)
    cohort = np.where(exam_pat % 2 == 0, "cohort_1", "cohort_2")
    # images per exam: 4 x 2D, sometimes 4 x C-view, a few extra views
    n_per = np.full(n_exam, 4) + 4 * (rng.random(n_exam) < 0.45) + rng.poisson(0.9, n_exam)
    scale = n_images / n_per.sum()
    if scale < 1:  # trim so the total matches n_images exactly
        n_per = np.maximum(1, np.floor(n_per * scale)).astype(int)
    n_per[-1] += n_images - n_per.sum()
    n_per = np.maximum(n_per, 1)
    exam_of = np.arange(n_exam).repeat(n_per)
    n = len(exam_of)
    pos = np.concatenate([np.arange(k) for k in n_per])
    std = [("L", "CC"), ("L", "MLO"), ("R", "CC"), ("R", "MLO")]
    lat = np.array([std[p % 4][0] for p in pos], dtype=object)
    view = np.array([std[p % 4][1] for p in pos], dtype=object)
    kind = np.where((pos >= 4) & (pos < 8), "cview", "2D").astype(object)
    extra = pos >= 8
    view[extra] = _choice(rng, ["XCCL", "ML", "LM", "CC", "MLO"], [30, 20, 5, 20, 25], extra.sum())
    spot = np.where(extra & (rng.random(n) < 0.4), "1.0", None)
    kind[rng.random(n) < 0.004] = "ROI_SSC"
    sop = np.array([f"1.2.826.0.1.3680043.8.498.{10**10 + i}" for i in range(n)], dtype=object)
    path = [
        f"{_EMBED_NAS}/{c}/{e}/{a}/{s}.dcm"
        for c, e, a, s in zip(
            cohort[exam_of], empi[exam_pat][exam_of], acc[exam_of], sop, strict=True
        )
    ]
    has_roi = rng.random(n) < 0.03
    y0 = rng.integers(0, 3500, n)
    x0 = rng.integers(0, 2800, n)
    roi = np.where(
        has_roi,
        [f"[[{a}, {b}, {a + 250}, {b + 220}]]" for a, b in zip(y0, x0, strict=True)],
        "[]",
    )
    rows_px = np.where(rng.random(n_exam) < 0.8, 4096, 2294)[exam_of]
    cols_px = np.where(rows_px == 4096, 3328, 1914)
    metadata = pd.DataFrame(
        {
            "empi_anon": empi[exam_pat][exam_of],
            "acc_anon": acc[exam_of],
            "anon_dicom_path": path,
            "study_date_anon": "2017-05-01",
            "StudyDescription": "MG Screening Bilateral w/CAD",
            "SeriesDescription": [f"{a} {b}" for a, b in zip(lat, view, strict=True)],
            "FinalImageType": kind,
            "ImageLateralityFinal": lat,
            "ViewPosition": view,
            "spot_mag": spot,
            "Manufacturer": np.where(rng.random(n) < 0.92, "HOLOGIC, Inc.", "GE MEDICAL SYSTEMS"),
            "Rows": rows_px,
            "Columns": cols_px,
            "num_roi": has_roi.astype(int),
            "ROI_coords": roi,
            "match_level": np.where(has_roi, "[['1']]", None),
        }
    )
    # clinical: one row per exam, plus a finding row on exams with an ROI image
    roi_exams = np.unique(exam_of[has_roi])
    extra_rows = roi_exams[rng.random(len(roi_exams)) < 0.6]
    c_exam = np.sort(np.concatenate([np.arange(n_exam), extra_rows]))
    m = len(c_exam)
    finding = np.isin(c_exam, roi_exams)
    side = np.where(finding, _choice(rng, ["L", "R", "B"], [45, 45, 10], m), None)
    shape = np.where(
        finding & (rng.random(m) < 0.6), _choice(rng, list("GROXNYDLTBSFVQA"), [1] * 15, m), None
    )
    calc = np.where(finding & (shape == None), _choice(rng, list("AKPLF"), [1] * 5, m), None)  # noqa: E711
    severity = np.where(finding & (rng.random(m) < 0.5), rng.integers(0, 6, m).astype(str), None)
    clinical = pd.DataFrame(
        {
            "empi_anon": empi[exam_pat][c_exam],
            "acc_anon": acc[c_exam],
            "study_date_anon": "2017-05-01",
            "desc": np.where(rng.random(m) < 0.7, "MG Screening Bilateral w/CAD", "MG Diagnostic"),
            "tissueden": _choice(rng, ["1", "2", "3", "4", "5", None], [10, 40, 38, 10, 0.1, 2], m),
            "asses": _choice(rng, list("ANBPSMK"), [10, 60, 20, 4, 3, 2, 1], m),
            "numfind": 1,
            "side": side,
            "massshape": shape,
            "massmargin": np.where(shape != None, _choice(rng, list("DUMIS"), [1] * 5, m), None),  # noqa: E711
            "massdens": None,
            "calcfind": calc,
            "calcdistri": None,
            "calcnumber": None,
            "bside": side,
            "path_severity": severity,
            "age_at_study": [f"{a:.1f}" for a in rng.uniform(35, 85, m)],
        }
    )
    _write_csv(root / "tables" / "EMBED_OpenData_metadata.csv", metadata)
    _write_csv(root / "tables" / "EMBED_OpenData_clinical.csv", clinical)
    return root


# --------------------------------------------------------------------------- CBIS-DDSM
CBIS_SIZES = {  # abnormality rows, full images per CSV (TCIA CBIS-DDSM)
    ("mass", "train"): (1318, 1231),
    ("mass", "test"): (378, 361),
    ("calc", "train"): (1546, 1227),
    ("calc", "test"): (326, 284),
}
_CBIS_HEADER = [
    "patient_id",
    "{density}",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "{a}",
    "{b}",
    "assessment",
    "pathology",
    "subtlety",
    "image file path",
    "cropped image file path",
    "ROI mask file path",
]


def make_cbis_ddsm(root: Path, *, scale: float = 1.0, seed: int = 0) -> Path:
    """CBIS-DDSM CSVs plus hard-linked tiny DICOMs for every full image, mask and crop."""
    rng = np.random.default_rng(seed)
    tpl = root / "_templates"
    full_tpl = _template(tpl / "full.dcm", np.full((64, 48), 900, np.uint16), pixel_spacing_mm=None)
    crop_tpl = _template(tpl / "crop.dcm", np.full((20, 16), 700, np.uint16), bits_stored=12)
    masks = []
    for k in range(8):
        m = np.zeros((64, 48), np.uint16)
        m[4 + 3 * k : 20 + 3 * k, 2 + 2 * k : 18 + 2 * k] = 255
        masks.append(_template(tpl / f"mask{k}.dcm", m, bits_stored=8))
    names = {
        ("mass", "train"): ("Mass-Training", "mass_case_description_train_set.csv"),
        ("mass", "test"): ("Mass-Test", "mass_case_description_test_set.csv"),
        ("calc", "train"): ("Calc-Training", "calc_case_description_train_set.csv"),
        ("calc", "test"): ("Calc-Test", "calc_case_description_test_set.csv"),
    }
    patient = 1
    for (family, split), (n_rows, n_images) in CBIS_SIZES.items():
        n_rows, n_images = max(1, round(n_rows * scale)), max(1, round(n_images * scale))
        prefix, csv_name = names[(family, split)]
        per_image = np.ones(n_images, int)
        np.add.at(per_image, rng.integers(0, n_images, n_rows - n_images), 1)
        rows = []
        for i, k in enumerate(per_image):
            side, view = ("LEFT", "RIGHT")[i % 2], ("CC", "MLO")[(i // 2) % 2]
            pid = f"P_{patient:05d}"
            patient += i % 4 == 3
            series = f"{prefix}_{pid}_{side}_{view}"
            key = zlib.crc32(series.encode())
            full = f"{series}/1.3.6.1.4.1.9590.100.1.2.1{key}/1.3.6.1.4.1.9590.100.1.2.2{key}/000000.dcm"
            _link(full_tpl, root / full)
            for a in range(1, k + 1):
                roi_dir = f"{series}_{a}/1.3.6.1.4.1.9590.100.1.2.3{key}{a}/1.3.6.1.4.1.9590.100.1.2.4{key}{a}"
                _link(masks[(i + a) % 8], root / roi_dir / "000000.dcm")
                _link(crop_tpl, root / roi_dir / "000001.dcm")
                if family == "mass":
                    kind, a_val, b_val = "mass", "IRREGULAR", "SPICULATED"
                else:
                    kind, a_val, b_val = "calcification", "PLEOMORPHIC", "CLUSTERED"
                rows.append(
                    [
                        pid,
                        int(rng.integers(1, 5)),
                        side,
                        view,
                        a,
                        kind,
                        a_val,
                        b_val,
                        int(rng.integers(0, 6)),
                        _choice(
                            rng, ["MALIGNANT", "BENIGN", "BENIGN_WITHOUT_CALLBACK"], [4, 4, 1], 1
                        )[0],
                        int(rng.integers(1, 6)),
                        full,
                        f"{roi_dir}/000001.dcm",
                        f"{roi_dir}/000000.dcm\n",
                    ]
                )
        density = "breast_density" if family == "mass" else "breast density"
        a_col, b_col = (
            ("mass shape", "mass margins")
            if family == "mass"
            else ("calc type", "calc distribution")
        )
        header = [h.format(density=density, a=a_col, b=b_col) for h in _CBIS_HEADER]
        _write_csv(root / csv_name, pd.DataFrame(rows, columns=header))
    return root


# --------------------------------------------------------------------------- INbreast
def make_inbreast(root: Path, *, n_images: int = 410, seed: int = 0) -> Path:
    """INbreast.csv, AllDICOMs (hard-linked tiny DICOMs) and AllXML for ``n_images``."""
    rng = np.random.default_rng(seed)
    tpl = _template(root / "_templates" / "full.dcm", np.full((64, 48), 900, np.uint16))
    n_pat = max(1, round(n_images * 115 / 410))
    hashes = _hex(rng, n_pat, 16)
    rows = []
    for i in range(n_images):
        h = hashes[i * n_pat // n_images]
        lat, view = ("L", "R")[(i // 2) % 2], ("CC", "MLO")[i % 2]
        name = str(20586908 + 26 * i)
        rows.append(["removed", "removed", lat, view, "200908", name, str(rng.integers(1, 5)), "2"])
        file_view = "ML" if view == "MLO" else "CC"
        _link(tpl, root / "AllDICOMs" / f"{name}_{h}_MG_{lat}_{file_view}_ANON.dcm")
        if rng.random() < 343 / 410:
            rois = []
            for k in range(int(rng.integers(1, 6))):
                cx, cy = rng.uniform(5, 43), rng.uniform(5, 59)
                pts = [(cx, cy)] if k % 2 else [(cx - 3, cy - 2), (cx + 4, cy), (cx, cy + 3)]
                rois.append(
                    {
                        "Name": ("Calcification", "Mass", "Cluster")[k % 3],
                        "NumberOfPoints": len(pts),
                        "Point_px": [f"({x:.6f}, {y:.6f})" for x, y in pts],
                    }
                )
            plist = {"Images": [{"ImageIndex": 0, "NumberOfROIs": len(rois), "ROIs": rois}]}
            xml = root / "AllXML" / f"{name}.xml"
            xml.parent.mkdir(parents=True, exist_ok=True)
            xml.write_bytes(plistlib.dumps(plist, fmt=plistlib.FMT_XML, sort_keys=True))
    header = ["Patient ID", "Patient age", "Laterality", "View", "Acquisition date", "File Name"]
    _write_csv(root / "INbreast.csv", pd.DataFrame(rows, columns=[*header, "ACR", "Bi-Rads"]), ";")
    return root


# --------------------------------------------------------------------------- timing
MAKERS: dict[str, Callable] = {
    "vindr": lambda root, s: make_vindr(root, n_studies=max(1, round(5000 * s))),
    "rsna": lambda root, s: make_rsna(root, n_rows=max(8, round(54706 * s))),
    "embed": lambda root, s: make_embed(root, n_images=max(20, round(480_323 * s))),
    "cbis_ddsm": lambda root, s: make_cbis_ddsm(root, scale=s),
    "inbreast": lambda root, s: make_inbreast(root, n_images=max(4, round(410 * s))),
}


def count_rows(name: str, root: Path) -> int:
    """Metadata rows an adapter reads for dataset ``name`` under ``root``."""
    files = {
        "vindr": ["breast-level_annotations.csv", "finding_annotations.csv"],
        "rsna": ["train.csv"],
        "embed": ["tables/EMBED_OpenData_metadata.csv", "tables/EMBED_OpenData_clinical.csv"],
        "cbis_ddsm": [
            f"{a}_case_description_{s}_set.csv" for a in ("mass", "calc") for s in ("train", "test")
        ],
        "inbreast": ["INbreast.csv"],
    }[name]
    sep = ";" if name == "inbreast" else ","
    return sum(len(pd.read_csv(root / f, sep=sep, dtype=str)) for f in files)


def _once(load: Callable, name: str, root: Path) -> tuple[float, int]:
    kwargs = {} if name in ("cbis_ddsm", "inbreast") else {"require_files": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        df = load(root, **kwargs)
        return time.perf_counter() - start, len(df)


def time_adapter(name: str, root: Path, repeat: int, legacy: bool = False) -> list[dict]:
    """Best and median seconds (and rows/s) of ``repeat`` loads of ``root``; with ``legacy``
    the row-loop adapters of ``test_adapters_legacy.py`` are timed too, alternating with the
    current ones so that both see the same machine load."""
    from mammo_helpers.data.adapters import LOADERS

    loaders = {"current": LOADERS[name]}
    if legacy:
        from test_adapters_legacy import LEGACY

        loaders = {"legacy": LEGACY[name], **loaders}
    times: dict[str, list[float]] = {k: [] for k in loaders}
    images = {}
    for _ in range(repeat):
        for kind, load in loaders.items():
            seconds, images[kind] = _once(load, name, root)
            times[kind].append(seconds)
    rows = count_rows(name, root)
    out = []
    for kind, values in times.items():
        best, median = min(values), statistics.median(values)
        out.append(
            {
                "adapter": name,
                "code": kind,
                "rows": rows,
                "images": images[kind],
                "best_s": round(best, 3),
                "median_s": round(median, 3),
                "best_rows_per_s": round(rows / best),
                "median_rows_per_s": round(rows / median),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", default=",".join(MAKERS), help="comma-separated adapters")
    parser.add_argument("--repeat", type=int, default=3, help="loads per adapter (>= 1)")
    parser.add_argument("--scale", type=float, default=1.0, help="table size vs the real one")
    parser.add_argument("--data", type=Path, default=None, help="keep the tables in this folder")
    parser.add_argument("--legacy", action="store_true", help="also time the row-loop adapters")
    args = parser.parse_args(argv)
    if args.repeat < 1 or not args.scale > 0:
        parser.error("--repeat must be >= 1 and --scale > 0")
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(MAKERS))
    if unknown:
        parser.error(
            f"--only: unknown adapter(s) {', '.join(unknown)}; choose from {', '.join(MAKERS)}"
        )
    with tempfile.TemporaryDirectory(prefix="bench-adapters-") as tmp:
        base = args.data or Path(tmp)
        results = []
        for name in names:
            root = base / name
            if not (root / ".complete").exists():
                start = time.perf_counter()
                MAKERS[name](root, args.scale)
                (root / ".complete").write_text("")
                print(f"{name}: generated in {time.perf_counter() - start:.1f} s", file=sys.stderr)
            results.extend(time_adapter(name, root, args.repeat, args.legacy))
            print(results[-1], file=sys.stderr)
    table = pd.DataFrame(results)
    print(table.to_string(index=False))
    print(f"load average: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
