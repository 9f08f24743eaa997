"""Tests for mammo_helpers.io (DICOM read/write), all on files written to tmp_path."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless

from mammo_helpers.io import (
    MG_FOR_PRESENTATION,
    MG_FOR_PROCESSING,
    DicomError,
    DicomImage,
    DicomWarning,
    parse_laterality_view,
    read_dicom,
    read_dicom_header,
    window_from_percentiles,
    write_dicom,
)

IDS = {"patient_id": "P0001", "study_id": "S0001", "image_id": "P0001_L_CC"}


def _write(path, pixels, **kwargs):
    args = {"pixel_spacing_mm": 0.07, "laterality": "L", "view": "CC", **IDS, **kwargs}
    return write_dicom(path, pixels, **args)


def _ramp(bits: int, shape=(64, 64)) -> np.ndarray:
    """Every value 0..2**bits-1 (repeated) so the whole range is exercised."""
    n = shape[0] * shape[1]
    return (np.arange(n) % (2**bits)).reshape(shape).astype(np.uint16)


# ---- independent references: DICOM PS3.3 C.11.2.1.2 / C.11.2.1.3 ----------------------------


def linear_ref(x, c, w, ymin, ymax):
    if x <= c - 0.5 - (w - 1) / 2:
        return ymin
    if x > c - 0.5 + (w - 1) / 2:
        return ymax
    return ((x - (c - 0.5)) / (w - 1) + 0.5) * (ymax - ymin) + ymin


def linear_exact_ref(x, c, w, ymin, ymax):
    if x <= c - w / 2:
        return ymin
    if x > c + w / 2:
        return ymax
    return ((x - c) / w + 0.5) * (ymax - ymin) + ymin


def sigmoid_ref(x, c, w, ymin, ymax):
    return (ymax - ymin) / (1 + math.exp(-4 * (x - c) / w)) + ymin


# ---- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [12, 14, 16])
def test_round_trip_bits(tmp_path, bits):
    rng = np.random.default_rng(bits)
    stored = rng.integers(0, 2**bits, size=(40, 30)).astype(np.uint16)
    stored[0, 0], stored[-1, -1] = 0, 2**bits - 1
    path = _write(
        tmp_path / "img.dcm",
        stored,
        bits_stored=bits,
        pixel_spacing_mm=0.085,
        laterality="R",
        view="MLO",
        patient_age=63,
        burned_in_annotation=True,
        model_name="Phantom 1",
    )
    img = read_dicom(path)
    assert isinstance(img, DicomImage)
    assert img.pixels.dtype == np.float32 and img.pixels.shape == (40, 30)
    np.testing.assert_array_equal(img.pixels, stored.astype(np.float32))
    assert img.pixel_spacing_mm == pytest.approx(0.085)
    assert (img.laterality, img.view, img.view_raw) == ("R", "MLO", "MLO")
    assert img.bits_stored == bits and img.photometric == "MONOCHROME2"
    assert img.modality == "MG" and img.manufacturer == "mammo_helpers phantom"
    assert img.presentation_intent == "FOR PRESENTATION"
    assert img.voi_applied is False  # no window written
    assert img.path == str(path)

    hdr = read_dicom_header(path)
    assert "PixelData" not in hdr
    assert hdr.PatientID == IDS["patient_id"] and hdr.StudyID == IDS["study_id"]
    assert hdr.ImageComments == IDS["image_id"]
    assert hdr.SOPClassUID == MG_FOR_PRESENTATION
    assert hdr.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert (hdr.BitsAllocated, hdr.BitsStored, hdr.HighBit) == (16, bits, bits - 1)
    assert hdr.PixelRepresentation == 0 and hdr.SamplesPerPixel == 1
    assert hdr.PatientAge == "063Y" and hdr.BurnedInAnnotation == "YES"
    assert hdr.ImageLaterality == "R" and hdr.Laterality == "R" and hdr.ViewPosition == "MLO"
    assert hdr.ViewCodeSequence[0].CodeValue == "R-10226"
    assert [float(v) for v in hdr.ImagerPixelSpacing] == pytest.approx([0.085, 0.085])
    assert hdr.ManufacturerModelName == "Phantom 1"


def test_uids_are_derived_from_ids(tmp_path):
    a = read_dicom_header(_write(tmp_path / "a.dcm", _ramp(8, (4, 4))))
    b = read_dicom_header(_write(tmp_path / "b.dcm", _ramp(8, (4, 4))))
    c = read_dicom_header(_write(tmp_path / "c.dcm", _ramp(8, (4, 4)), image_id="P0001_R_CC"))
    assert a.SOPInstanceUID == b.SOPInstanceUID and a.StudyInstanceUID == b.StudyInstanceUID
    assert c.SOPInstanceUID != a.SOPInstanceUID and c.SeriesInstanceUID != a.SeriesInstanceUID
    assert c.StudyInstanceUID == a.StudyInstanceUID  # same patient and study
    for uid in (a.SOPInstanceUID, a.StudyInstanceUID, c.SeriesInstanceUID):
        assert pydicom.uid.UID(uid).is_valid


def test_for_processing_sop_class(tmp_path):
    path = _write(tmp_path / "p.dcm", _ramp(14, (8, 8)), presentation_intent="FOR PROCESSING")
    hdr = read_dicom_header(path)
    assert hdr.SOPClassUID == MG_FOR_PROCESSING
    assert hdr.file_meta.MediaStorageSOPClassUID == MG_FOR_PROCESSING
    assert read_dicom(path).presentation_intent == "FOR PROCESSING"


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_round_trip_property(tmp_path_factory, data):
    bits = data.draw(st.integers(8, 16), label="bits")
    shape = data.draw(st.tuples(st.integers(1, 12), st.integers(1, 12)), label="shape")
    stored = data.draw(
        hnp.arrays(np.uint16, shape, elements=st.integers(0, 2**bits - 1)), label="stored"
    )
    lat = data.draw(st.sampled_from(["L", "R"]))
    view = data.draw(st.sampled_from(["CC", "MLO"]))
    photometric = data.draw(st.sampled_from(["MONOCHROME1", "MONOCHROME2"]))
    spacing = data.draw(st.floats(0.01, 1.0))
    path = tmp_path_factory.mktemp("hyp") / "x.dcm"
    _write(
        path,
        stored,
        bits_stored=bits,
        laterality=lat,
        view=view,
        photometric=photometric,
        pixel_spacing_mm=spacing,
    )
    img = read_dicom(path)
    expected = stored.astype(np.float64)
    if photometric == "MONOCHROME1":
        expected = (2**bits - 1) - expected
    np.testing.assert_array_equal(img.pixels, expected.astype(np.float32))
    assert (img.laterality, img.view, img.bits_stored) == (lat, view, bits)
    assert img.pixel_spacing_mm == pytest.approx(spacing, rel=1e-9)
    raw = read_dicom(path, apply_voi=False)
    np.testing.assert_array_equal(raw.pixels, img.pixels)


def test_high_bits_above_bits_stored_are_masked(tmp_path):
    stored = _ramp(12, (8, 8))
    path = _write(tmp_path / "m.dcm", stored, bits_stored=12)
    ds = pydicom.dcmread(path)
    ds.PixelData = (stored | np.uint16(0xF000)).astype("<u2").tobytes()  # junk in bits 12-15
    ds.save_as(path, enforce_file_format=True)
    with pytest.warns(DicomWarning, match=r"64 of 64 pixels use bits above BitsStored=12"):
        np.testing.assert_array_equal(read_dicom(path).pixels, stored)


def test_a_header_understating_the_bit_depth_is_reported_and_can_be_overridden(tmp_path):
    """BitsStored=8 on 12-bit data used to mask half of the pixels silently."""
    stored = (_ramp(8, (16, 16)) * 16 + 5).astype(np.uint16)  # 12-bit values 5..4085
    path = _write(tmp_path / "m.dcm", stored, bits_stored=12)
    ds = pydicom.dcmread(path)
    ds.BitsStored, ds.HighBit = 8, 7
    ds.save_as(path, enforce_file_format=True)
    n_above = int(np.count_nonzero(stored >> 8))
    with pytest.warns(DicomWarning, match=rf"m\.dcm: {n_above} of 256 pixels .* needs 12 bits"):
        masked = read_dicom(path, apply_voi=False).pixels
    np.testing.assert_array_equal(masked, stored & 0xFF)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DicomWarning)
        whole = read_dicom(path, apply_voi=False, bits_stored=12).pixels
        np.testing.assert_array_equal(whole, stored)
        read_dicom(_write(tmp_path / "ok.dcm", stored, bits_stored=12))  # a correct header: silent
    with pytest.raises(ValueError, match="bits_stored must be in 1..16"):
        read_dicom(path, bits_stored=17)


def test_deterministic_bytes(tmp_path):
    stored = _ramp(12, (16, 16))
    kw = {"bits_stored": 12, "window_center": 2048, "window_width": 4096, "patient_age": 50}
    a = _write(tmp_path / "a.dcm", stored, **kw).read_bytes()
    b = _write(tmp_path / "b.dcm", stored, **kw).read_bytes()
    assert a == b
    c = _write(tmp_path / "c.dcm", stored, **kw, content_date="20250101").read_bytes()
    assert c != a


# ---- MONOCHROME1, VOI, rescale ------------------------------------------------------------


def _fit_residual(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(x.ravel(), y.ravel(), 1)
    return slope, float(np.abs(y - (slope * x + intercept)).max())


@pytest.mark.parametrize(
    "voi",
    [None, ("LINEAR_EXACT", 1800.0, 1500.0), ("SIGMOID", 2100.0, 900.0), ("LINEAR", 2048, 4096)],
)
def test_monochrome1_twin_reads_like_monochrome2(tmp_path, voi):
    bits, top = 12, 4095
    rng = np.random.default_rng(1)
    mono2 = rng.integers(300, 700, size=(48, 48)).astype(np.uint16)
    mono2[16:32, 16:32] += 2500  # attenuating blob: high stored values in MONOCHROME2
    mono1 = (top - mono2).astype(np.uint16)
    kw2, kw1 = {"bits_stored": bits}, {"bits_stored": bits, "photometric": "MONOCHROME1"}
    if voi is not None:
        func, c, w = voi
        kw2 |= {"window_center": c, "window_width": w, "voi_lut_function": func}
        c1 = top - c + (1 if func == "LINEAR" else 0)  # mirror window (LINEAR has a 0.5 shift)
        kw1 |= {"window_center": c1, "window_width": w, "voi_lut_function": func}
    img2 = read_dicom(_write(tmp_path / "m2.dcm", mono2, **kw2))
    img1 = read_dicom(_write(tmp_path / "m1.dcm", mono1, **kw1))
    assert img1.photometric == "MONOCHROME1" and img1.voi_applied == (voi is not None)
    slope, residual = _fit_residual(img2.pixels.astype(float), img1.pixels.astype(float))
    assert slope > 0 and residual < 1e-3 * top  # same display image up to an affine map
    if voi is None or voi[0] != "LINEAR":
        np.testing.assert_allclose(img1.pixels, img2.pixels, atol=1e-2)
    for img in (img1, img2):  # bright = attenuating
        blob = img.pixels[16:32, 16:32].mean()
        background = np.delete(img.pixels, np.s_[16:32], axis=0).mean()
        assert blob > background


def test_monochrome1_without_voi_inverts_stored_range(tmp_path):
    stored = np.array([[0, 1, 4094, 4095]], dtype=np.uint16)
    path = _write(tmp_path / "m1.dcm", stored, bits_stored=12, photometric="MONOCHROME1")
    np.testing.assert_array_equal(read_dicom(path).pixels, [[4095, 4094, 1, 0]])
    assert read_dicom_header(path).PresentationLUTShape == "INVERSE"


def test_voi_linear_and_sigmoid_match_standard_formulas(tmp_path):
    stored = _ramp(12)
    c, w, ymax = 2000.0, 1001.0, 4095.0
    out = {}
    refs = {"LINEAR": linear_ref, "LINEAR_EXACT": linear_exact_ref, "SIGMOID": sigmoid_ref}
    for func, ref in refs.items():
        path = _write(
            tmp_path / f"{func}.dcm",
            stored,
            bits_stored=12,
            window_center=c,
            window_width=w,
            voi_lut_function=func,
        )
        img = read_dicom(path)
        assert img.voi_applied
        x = stored.ravel()
        y = img.pixels.ravel().astype(np.float64)
        order = np.argsort(x, kind="stable")
        assert np.all(np.diff(y[order]) >= 0), f"{func} not monotone"
        for value in (0, 1400, 1499, 1500, 1501, 1750, 2000, 2250, 2499, 2500, 2501, 4095):
            got = float(img.pixels[stored == value][0])
            assert got == pytest.approx(ref(value, c, w, 0.0, ymax), abs=0.05), (func, value)
        out[func] = y
        # no VOI when asked not to
        np.testing.assert_array_equal(read_dicom(path, apply_voi=False).pixels, stored)
    assert not np.allclose(out["LINEAR"], out["SIGMOID"], atol=1.0)
    assert out["SIGMOID"].min() > 0 and out["LINEAR"].min() == 0  # sigmoid never saturates


def test_first_window_used_when_several(tmp_path):
    stored = _ramp(12)
    extra = {"WindowCenter": ["1000", "3000"], "WindowWidth": ["500", "2000"]}
    img = read_dicom(_write(tmp_path / "w.dcm", stored, bits_stored=12, extra=extra))
    for value in (700, 900, 1000, 1200, 3000):
        expected = linear_ref(value, 1000, 500, 0.0, 4095.0)
        assert float(img.pixels[stored == value][0]) == pytest.approx(expected, abs=0.05)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_voi_lut_sequence(tmp_path, photometric):
    stored = _ramp(10, (32, 32))
    first, n = 100, 512
    lut = (np.arange(n) ** 2 // 4).astype(np.uint16)  # any monotone table, 16-bit entries
    item = Dataset()
    item.add_new(0x00283002, "US", [n, first, 16])  # LUT Descriptor
    item.add_new(0x00283006, "US", lut.tolist())  # LUT Data
    path = _write(
        tmp_path / "lut.dcm",
        stored,
        bits_stored=10,
        photometric=photometric,
        window_center=500,
        window_width=200,  # the LUT takes precedence over the window
        extra={"VOILUTSequence": [item]},
    )
    img = read_dicom(path)
    expected = lut[np.clip(stored.astype(int) - first, 0, n - 1)].astype(np.float64)
    if photometric == "MONOCHROME1":
        expected = 65535 - expected  # inverted relative to the LUT's 16-bit output range
    np.testing.assert_array_equal(img.pixels, expected)
    assert img.voi_applied


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_rescale_slope_intercept(tmp_path, photometric):
    stored = _ramp(12)
    extra = {"RescaleSlope": "2", "RescaleIntercept": "-100"}
    path = _write(tmp_path / "r.dcm", stored, bits_stored=12, photometric=photometric, extra=extra)
    img = read_dicom(path)
    expected = 2.0 * stored - 100
    if photometric == "MONOCHROME1":
        expected = (-100 + (2 * 4095 - 100)) - expected
    np.testing.assert_array_equal(img.pixels, expected)
    # windowing then works on rescaled values with the rescaled output range
    path = _write(
        tmp_path / "rw.dcm",
        stored,
        bits_stored=12,
        window_center=3000,
        window_width=2001,
        extra=extra,
    )
    img = read_dicom(path)
    for value in (500, 1500, 2000, 3000):
        expected = linear_ref(2.0 * value - 100, 3000, 2001, -100.0, 2 * 4095 - 100.0)
        assert float(img.pixels[stored == value][0]) == pytest.approx(expected, abs=0.05)


def test_window_from_percentiles_maps_percentiles_to_black_and_white(tmp_path):
    stored = (np.arange(1001)[None, :]).astype(np.uint16)
    c, w = window_from_percentiles(stored, low=10, high=90)
    assert (c, w) == pytest.approx((500.5, 801.0))
    img = read_dicom(
        _write(tmp_path / "p.dcm", stored, bits_stored=12, window_center=c, window_width=w)
    )
    px = img.pixels[0]
    assert px[100] == 0 and px[99] == 0 and px[101] > 0
    assert px[899] < 4095 and px[900] == 4095 and px[901] == 4095
    with pytest.raises(ValueError, match="low"):
        window_from_percentiles(stored, low=60, high=40)


# ---- atomicity ----------------------------------------------------------------------------


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def boom(self, fh, **kwargs):
        fh.write(b"half a file")
        raise RuntimeError("disk full")

    good = _write(tmp_path / "keep.dcm", _ramp(8, (4, 4)))
    before = good.read_bytes()
    monkeypatch.setattr(pydicom.dataset.Dataset, "save_as", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        _write(tmp_path / "sub" / "new.dcm", _ramp(8, (4, 4)))
    with pytest.raises(RuntimeError, match="disk full"):
        _write(good, _ramp(8, (4, 4)), laterality="R")
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["keep.dcm"]
    assert good.read_bytes() == before


# ---- bad files ----------------------------------------------------------------------------


def _good(tmp_path, name="good.dcm", **kw):
    return _write(tmp_path / name, _ramp(12, (16, 16)), bits_stored=12, **kw)


def test_text_file_is_not_dicom(tmp_path):
    path = tmp_path / "notes.dcm"
    path.write_text("patient notes, not an image\n" * 10)
    for reader in (read_dicom, read_dicom_header):
        with pytest.raises(DicomError, match="not a DICOM file") as err:
            reader(path)
        assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.dcm"
    with pytest.raises(FileNotFoundError) as err:
        read_dicom(path)
    assert str(path) in str(err.value)
    with pytest.raises(DicomError):
        read_dicom_header(path)


def test_truncated_pixel_data(tmp_path):
    path = _good(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    with pytest.raises(DicomError, match="truncated pixel data") as err:
        read_dicom(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("keep", [0, 140, 300, 700])
def test_file_cut_in_header(tmp_path, keep):
    path = _good(tmp_path)
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(DicomError) as err:
        read_dicom(path)
    assert str(path) in str(err.value)


def test_ct_rejected_unless_allowed(tmp_path):
    path = _good(tmp_path, modality_label="CT")
    with pytest.raises(DicomError, match="Modality is 'CT', expected 'MG'") as err:
        read_dicom(path)
    assert str(path) in str(err.value)
    img = read_dicom(path, require_mg=False)
    assert img.modality == "CT" and img.pixels.shape == (16, 16)


def test_missing_pixel_data(tmp_path):
    path = _good(tmp_path, extra={"PixelData": None})
    assert read_dicom_header(path).Rows == 16  # the header itself is fine
    with pytest.raises(DicomError, match="no pixel data") as err:
        read_dicom(path)
    assert str(path) in str(err.value)


def test_colour_image_rejected(tmp_path):
    path = _good(tmp_path)
    ds = pydicom.dcmread(path)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = bytes(16 * 16 * 3)
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(DicomError, match="colour") as err:
        read_dicom(path)
    assert str(path) in str(err.value) and "SamplesPerPixel=3" in str(err.value)


def test_multiframe_rejected(tmp_path):
    path = _good(tmp_path)
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(DicomError, match="multi-frame image with 2 frames"):
        read_dicom(path)


def test_undecodable_compressed_pixels(tmp_path):
    path = _good(tmp_path)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\x00" * 60])  # a broken codestream
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(DicomError, match="failed to decode") as err:
        read_dicom(path)
    assert str(path) in str(err.value)


def test_invalid_window_reported(tmp_path):
    path = _good(tmp_path, extra={"WindowCenter": "100", "WindowWidth": "0.5"})
    with pytest.raises(DicomError, match="VOI"):
        read_dicom(path)
    assert read_dicom(path, apply_voi=False).voi_applied is False


# ---- bad parameters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "name"),
    [
        ({"laterality": "B"}, "laterality"),
        ({"view": "ML"}, "view"),
        ({"photometric": "RGB"}, "photometric"),
        ({"bits_stored": 7}, "bits_stored"),
        ({"bits_stored": 17}, "bits_stored"),
        ({"pixels": np.zeros((2, 3, 3), np.uint16)}, "pixels"),
        ({"pixels": np.zeros(5, np.uint16)}, "pixels"),
        ({"pixels": np.zeros((3, 3), np.float32)}, "pixels"),
        ({"pixel_spacing_mm": -0.07}, "pixel_spacing_mm"),
        ({"pixel_spacing_mm": float("nan")}, "pixel_spacing_mm"),
        ({"presentation_intent": "FOR VIEWING"}, "presentation_intent"),
        ({"voi_lut_function": "CUBIC"}, "voi_lut_function"),
        ({"window_center": 100}, "window_width"),
        ({"window_center": 100, "window_width": 0.5}, "window_width"),
        ({"study_id": "S" * 17}, "study_id"),
        ({"patient_id": ""}, "patient_id"),
        ({"patient_age": 1200}, "patient_age"),
        ({"content_date": "2024-01-01"}, "content_date"),
        ({"extra": {"NotAKeyword": 1}}, "extra"),
    ],
)
def test_bad_parameters(tmp_path, override, name):
    kwargs = {"pixels": _ramp(8, (4, 4)), **override}
    pixels = kwargs.pop("pixels")
    with pytest.raises(ValueError, match=name):
        _write(tmp_path / "bad.dcm", pixels, **kwargs)
    assert not list(tmp_path.iterdir())


def test_values_must_fit_bits_stored(tmp_path):
    pixels = np.array([[0, 4096]], dtype=np.uint16)
    with pytest.raises(DicomError, match="bits_stored=12") as err:
        _write(tmp_path / "bad.dcm", pixels, bits_stored=12)
    assert "pixels" in str(err.value)
    with pytest.raises(DicomError, match="pixels"):
        _write(tmp_path / "bad.dcm", np.array([[-1, 3]]), bits_stored=12)
    # signed integer arrays with valid values are accepted
    path = _write(tmp_path / "ok.dcm", np.array([[0, 4095]], dtype=np.int64), bits_stored=12)
    np.testing.assert_array_equal(read_dicom(path).pixels, [[0, 4095]])


def test_nan_age_and_no_spacing(tmp_path):
    path = _write(tmp_path / "x.dcm", _ramp(8, (4, 4)), patient_age=float("nan"))
    assert "PatientAge" not in read_dicom_header(path)
    path = _write(tmp_path / "y.dcm", _ramp(8, (4, 4)), pixel_spacing_mm=None)
    assert read_dicom(path).pixel_spacing_mm is None


# ---- laterality / view fallbacks ----------------------------------------------------------

NO_TAGS = {"ImageLaterality": None, "Laterality": None, "ViewPosition": None}


def test_laterality_and_view_from_series_description(tmp_path):
    extra = {**NO_TAGS, "ViewCodeSequence": None}
    path = _good(tmp_path, "x_L_CC.dcm", series_description="R MLO", extra=extra)
    img = read_dicom(path)  # SeriesDescription wins over the file name
    assert (img.laterality, img.view, img.view_raw) == ("R", "MLO", "MLO")


def test_laterality_and_view_from_file_name(tmp_path):
    extra = {**NO_TAGS, "ViewCodeSequence": None}
    img = read_dicom(_good(tmp_path, "case7_LCC.dcm", extra=extra))
    assert (img.laterality, img.view) == ("L", "CC")
    img = read_dicom(_good(tmp_path, "image.dcm", extra=extra))
    assert (img.laterality, img.view, img.view_raw) == (None, None, None)


def test_view_from_view_code_sequence(tmp_path):
    img = read_dicom(_good(tmp_path, "a.dcm", view="MLO", extra={"ViewPosition": None}))
    assert (img.view, img.view_raw) == ("MLO", "medio-lateral oblique")
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "X", "99", "Cranio-Caudal"
    img = read_dicom(
        _good(tmp_path, "b.dcm", extra={"ViewPosition": None, "ViewCodeSequence": [item]})
    )
    assert img.view == "CC"
    item.CodeMeaning = "medio-lateral"
    img = read_dicom(
        _good(tmp_path, "c.dcm", extra={"ViewPosition": None, "ViewCodeSequence": [item]})
    )
    assert (img.view, img.view_raw) == (None, "medio-lateral")


def test_laterality_from_series_level_tag(tmp_path):
    img = read_dicom(_good(tmp_path, extra={"ImageLaterality": None, "Laterality": "R"}))
    assert img.laterality == "R"


@pytest.mark.parametrize("raw", ["ML", "LM", "AT", "XCCL"])
def test_other_view_positions_kept_raw(tmp_path, raw):
    img = read_dicom(_good(tmp_path, extra={"ViewPosition": raw}))
    assert (img.view, img.view_raw) == (None, raw)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("L CC", ("L", "CC")),
        ("RMLO", ("R", "MLO")),
        ("Mass-Training_P_00001_LEFT_CC", ("L", "CC")),
        ("20586908_6c613a14b80a8591_MG_R_ML_ANON", ("R", "ML")),
        ("x_L_y", ("L", None)),
        ("RIGHTMLO tomo", ("R", "MLO")),
        ("L and R CC", (None, "CC")),
        ("LOW dose CCD", (None, None)),
        ("", (None, None)),
        (None, (None, None)),
    ],
)
def test_parse_laterality_view(text, expected):
    assert parse_laterality_view(text) == expected
