"""DICOM input/output for mammograms (pydicom).

Used by notebook 00 (the synthetic cohort is written as DICOM with :func:`write_dicom`)
and by every dataset adapter and notebook that reads images (:func:`read_dicom`).

Reading applies the DICOM grey-scale pipeline in the standard's order:
stored values -> modality LUT (Rescale Slope/Intercept or Modality LUT Sequence) -> VOI
(VOI LUT Sequence, else Window Center/Width with VOI LUT Function LINEAR, LINEAR_EXACT or
SIGMOID; the first window when several are given) -> MONOCHROME1 inversion relative to the
output range *after* VOI. The returned pixels are therefore always "bright = attenuating".

Laterality and view fall back from the proper tags to text: see
:func:`parse_laterality_view` for the token rule.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut, apply_windowing
from pydicom.pixels import apply_voi as apply_voi_sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from mammo_helpers.paths import atomic_write
from mammo_helpers.vocab import ALL_VIEWS, LATERALITIES, VIEWS

__all__ = [
    "MG_FOR_PRESENTATION",
    "MG_FOR_PROCESSING",
    "DicomError",
    "DicomFileNotFoundError",
    "DicomImage",
    "DicomWarning",
    "parse_laterality_view",
    "pixel_spacing_mm",
    "read_dicom",
    "read_dicom_header",
    "window_from_percentiles",
    "write_dicom",
]

MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
MG_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.2.1"
_SOP_CLASS = {"FOR PRESENTATION": MG_FOR_PRESENTATION, "FOR PROCESSING": MG_FOR_PROCESSING}

# SNOMED (SRT) view codes written into ViewCodeSequence, and the codes recognised on reading.
_VIEW_CODES = {"CC": ("R-10242", "cranio-caudal"), "MLO": ("R-10226", "medio-lateral oblique")}
_VIEW_FROM_CODE_VALUE = {"R-10242": "CC", "399162004": "CC", "R-10226": "MLO", "399368009": "MLO"}
_VIEW_FROM_MEANING = {
    "cranio caudal": "CC",
    "craniocaudal": "CC",
    "medio lateral oblique": "MLO",
    "mediolateral oblique": "MLO",
}
# View tokens recognised in free text (SeriesDescription, file names).
_TEXT_VIEWS = ALL_VIEWS
_LATERALITY_WORDS = {"L": "L", "LEFT": "L", "R": "R", "RIGHT": "R"}
_UID_ROOT = "mammo_helpers"


class DicomError(ValueError):
    """A file that is not a readable 2-D grey-scale mammogram; the message names the file."""


class DicomFileNotFoundError(DicomError, FileNotFoundError):
    """The DICOM file does not exist (catchable as DicomError or FileNotFoundError)."""


class DicomWarning(UserWarning):
    """A readable file whose header disagrees with its pixel data; the message names it."""


@dataclass(frozen=True, eq=False)
class DicomImage:
    """A decoded mammogram: display-oriented float32 pixels plus the header fields we use.

    ``pixels`` is 2-D (rows x cols) with higher values = more attenuation (brighter on a
    normal display); MONOCHROME1 files are already inverted. ``view`` is 'CC'/'MLO' or
    None; any other view (ML, LM, XCCL, ...) is kept in ``view_raw``.
    """

    pixels: np.ndarray = field(repr=False)
    pixel_spacing_mm: float | None
    laterality: str | None
    view: str | None
    view_raw: str | None
    photometric: str
    bits_stored: int
    modality: str
    manufacturer: str | None
    presentation_intent: str | None
    path: str
    voi_applied: bool

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape  # type: ignore[return-value]


# --------------------------------------------------------------------------- reading


def _dcmread(path: str | os.PathLike, *, stop_before_pixels: bool) -> Dataset:
    p = Path(path)
    if not p.exists():
        raise DicomFileNotFoundError(f"{p}: DICOM file not found")
    if p.is_dir():
        raise DicomError(f"{p}: is a directory, not a DICOM file")
    if p.stat().st_size == 0:
        raise DicomError(f"{p}: not a DICOM file (the file is empty)")
    try:
        ds = pydicom.dcmread(p, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError as exc:
        raise DicomError(f"{p}: not a DICOM file ({exc})") from exc
    except PermissionError:
        raise
    except Exception as exc:  # struct.error, EOFError, ... from a cut or damaged header
        raise DicomError(
            f"{p}: corrupt or truncated DICOM file ({type(exc).__name__}: {exc})"
        ) from exc
    if len(ds) == 0:
        raise DicomError(
            f"{p}: no data elements after the file meta header (empty or truncated file)"
        )
    return ds


def read_dicom_header(path: str | os.PathLike) -> pydicom.Dataset:
    """Read the header only (no pixel data); same error wrapping as :func:`read_dicom`."""
    return _dcmread(path, stop_before_pixels=True)


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_laterality_view(text: str | None) -> tuple[str | None, str | None]:
    """Laterality ('L'/'R') and raw view token found in free text, e.g. a file name.

    Rule: upper-case the text and split it at every character that is not A-Z or 0-9
    (so '_', '-', '.', spaces separate tokens). A token 'L'/'LEFT'/'R'/'RIGHT' gives the
    laterality; a token in MLO, CC, ML, LM, LMO, XCCL, XCCM gives the view; a token made of
    a laterality prefix and a view ('RMLO', 'LCC', 'LEFTCC') gives both. Tokens are matched
    whole, so 'LOW' or 'CCD' match nothing. If the text names two different lateralities (or
    views) that value is ambiguous and returned as None. Note 'ML' (medio-lateral) is kept as
    'ML', not read as MLO. Examples: 'L CC' -> ('L', 'CC'); 'case_RMLO' -> ('R', 'MLO');
    'x_L_y' -> ('L', None).
    """
    if not text:
        return None, None
    lats: set[str] = set()
    views: set[str] = set()
    for token in re.split(r"[^A-Z0-9]+", str(text).upper()):
        if not token:
            continue
        if token in _LATERALITY_WORDS:
            lats.add(_LATERALITY_WORDS[token])
        elif token in _TEXT_VIEWS:
            views.add(token)
        else:
            for prefix in ("LEFT", "RIGHT", "L", "R"):
                if token.startswith(prefix) and token[len(prefix) :] in _TEXT_VIEWS:
                    lats.add(_LATERALITY_WORDS[prefix])
                    views.add(token[len(prefix) :])
                    break
    lat = next(iter(lats)) if len(lats) == 1 else None
    view = next(iter(views)) if len(views) == 1 else None
    return lat, view


def _text_sources(ds: Dataset, path: Path) -> list[str]:
    return [s for s in (_str_or_none(ds.get("SeriesDescription")), path.stem) if s]


def _laterality(ds: Dataset, path: Path) -> str | None:
    """ImageLaterality, else Laterality, else SeriesDescription / file-name tokens."""
    for keyword in ("ImageLaterality", "Laterality"):
        value = (_str_or_none(ds.get(keyword)) or "").upper()
        if value in LATERALITIES:
            return value
    for text in _text_sources(ds, path):
        lat, _ = parse_laterality_view(text)
        if lat is not None:
            return lat
    return None


def _view_from_code_sequence(ds: Dataset) -> tuple[str | None, str | None]:
    seq = ds.get("ViewCodeSequence")
    if not seq:
        return None, None
    item = seq[0]
    code = _str_or_none(item.get("CodeValue"))
    meaning = _str_or_none(item.get("CodeMeaning"))
    raw = meaning or code
    view = _VIEW_FROM_CODE_VALUE.get(code or "")
    if view is None and meaning:
        norm = " ".join(re.split(r"[\s\-_]+", meaning.lower())).strip()
        view = _VIEW_FROM_MEANING.get(norm)
    return view, raw


def _view(ds: Dataset, path: Path) -> tuple[str | None, str | None]:
    """(view, view_raw): ViewPosition, else ViewCodeSequence, else text tokens."""
    raw = _str_or_none(ds.get("ViewPosition"))
    if raw is not None:
        raw = raw.upper()
        return (raw if raw in VIEWS else None), raw
    view, raw = _view_from_code_sequence(ds)
    if raw is not None:
        return view, raw
    for text in _text_sources(ds, path):
        _, token = parse_laterality_view(text)
        if token is not None:
            return (token if token in VIEWS else None), token
    return None, None


def pixel_spacing_mm(ds: Dataset) -> float | None:
    """Row pixel spacing in mm from PixelSpacing, else ImagerPixelSpacing (None if absent).

    The one reading of pixel spacing from a header (``read_dicom`` and the adapters).
    """
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if not value:
            continue
        try:
            row_spacing = float(value[0] if isinstance(value, MultiValue | list | tuple) else value)
        except (TypeError, ValueError, IndexError):
            continue
        if math.isfinite(row_spacing) and row_spacing > 0:
            return row_spacing
    return None


def _modality_range(ds: Dataset) -> tuple[float, float]:
    """Output range of the modality LUT stage (as pydicom's windowing assumes it)."""
    if ds.get("ModalityLUTSequence"):
        depth = int(ds.ModalityLUTSequence[0].LUTDescriptor[2])
        return 0.0, float(2**depth - 1)
    bits = int(ds.BitsStored)
    if int(ds.get("PixelRepresentation", 0)) == 0:
        lo, hi = 0.0, float(2**bits - 1)
    else:
        lo, hi = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope is not None and intercept is not None:
        lo, hi = lo * float(slope) + float(intercept), hi * float(slope) + float(intercept)
    return lo, hi


def _check_image_header(ds: Dataset, p: Path, require_mg: bool) -> None:
    modality = _str_or_none(ds.get("Modality"))
    if require_mg and modality != "MG":
        found = f"Modality is {modality!r}" if modality else "Modality is missing"
        raise DicomError(f"{p}: {found}, expected 'MG' (pass require_mg=False to read it anyway)")
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise DicomError(f"{p}: no pixel data (the file holds no image or was cut short)")
    if "PixelData" not in ds:
        raise DicomError(f"{p}: float pixel data is not supported for mammograms")
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    photometric = _str_or_none(ds.get("PhotometricInterpretation")) or ""
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise DicomError(
            f"{p}: colour or non-grey-scale image (SamplesPerPixel={samples}, "
            f"PhotometricInterpretation={photometric!r}); a mammogram must be a single "
            "MONOCHROME1/MONOCHROME2 plane"
        )
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames != 1:
        raise DicomError(
            f"{p}: multi-frame image with {frames} frames (e.g. a tomosynthesis volume); "
            "read_dicom expects a single 2-D mammogram"
        )
    for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored"):
        if ds.get(keyword) in (None, ""):
            raise DicomError(f"{p}: image attribute {keyword} is missing")


def _check_native_length(ds: Dataset, p: Path) -> None:
    """Report short uncompressed pixel data as truncation before pydicom tries to decode."""
    tsyntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if tsyntax is None or tsyntax.is_compressed:
        return
    expected_bits = int(ds.Rows) * int(ds.Columns) * int(ds.BitsAllocated)
    expected = (expected_bits + 7) // 8
    actual = len(ds.PixelData)
    if actual < expected:
        raise DicomError(
            f"{p}: truncated pixel data ({actual} bytes, expected {expected} for "
            f"{int(ds.Rows)}x{int(ds.Columns)} pixels at {int(ds.BitsAllocated)} bits)"
        )


def _apply_voi(arr: np.ndarray, ds: Dataset) -> tuple[np.ndarray, tuple[float, float] | None]:
    """VOI LUT Sequence (preferred, as pydicom) or windowing; returns (array, output range)."""
    seq = ds.get("VOILUTSequence")
    if seq and seq[0].get("LUTDescriptor") is not None and seq[0].get("LUTData") is not None:
        depth = int(seq[0].LUTDescriptor[2])
        lut_input = np.rint(arr).astype(np.int64) if arr.dtype.kind == "f" else arr
        return apply_voi_sequence(lut_input, ds, index=0), (0.0, float(2**depth - 1))
    if ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None:
        return apply_windowing(arr, ds, index=0), _modality_range(ds)
    return arr, None


def _check_high_bits(ds: Dataset, p: Path, bits_stored: int | None) -> None:
    """Warn when native 16-bit pixel words use bits above BitsStored, or apply an override.

    The standard says those bits are not pixel data (old files kept overlays there), so
    pydicom masks them. A header that understates the bit depth (BitsStored=8 on 12-bit
    data) then silently halves the image: say so, with the override that reads it whole.
    """
    if bits_stored is not None:
        if isinstance(bits_stored, bool) or not 1 <= int(bits_stored) <= int(ds.BitsAllocated):
            raise ValueError(
                f"bits_stored must be in 1..{int(ds.BitsAllocated)} (BitsAllocated of {p}), "
                f"got {bits_stored!r}"
            )
        ds.BitsStored, ds.HighBit = int(bits_stored), int(bits_stored) - 1
        return
    tsyntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if tsyntax is None or tsyntax.is_compressed or int(ds.BitsAllocated) != 16:
        return
    n = int(ds.Rows) * int(ds.Columns)
    words = np.frombuffer(ds.PixelData, dtype="<u2" if tsyntax.is_little_endian else ">u2")[:n]
    declared = int(ds.BitsStored)
    above = int(np.count_nonzero(words >> declared))
    if above:
        needed = int(words.max()).bit_length()
        warnings.warn(
            f"{p}: {above} of {n} pixels use bits above BitsStored={declared} (largest stored "
            f"word {int(words.max())} needs {needed} bits); they were masked as the DICOM "
            f"standard requires. If the header understates the bit depth, read it with "
            f"read_dicom(..., bits_stored={needed})",
            DicomWarning,
            stacklevel=3,
        )


def read_dicom(
    path: str | os.PathLike,
    *,
    apply_voi: bool = True,
    require_mg: bool = True,
    bits_stored: int | None = None,
) -> DicomImage:
    """Read a 2-D mammogram as display-oriented float32 pixels (bright = attenuating).

    Steps: decode (12/14/16-bit stored values in 16-bit words are masked by pydicom) ->
    modality LUT -> VOI (if ``apply_voi`` and the file has a VOI LUT Sequence or a window;
    ``voi_applied`` says whether one was used) -> MONOCHROME1 inversion ``lo + hi - x`` where
    [lo, hi] is the output range after VOI (the VOI LUT's nominal range, the windowing output
    range, or the modality output range when no VOI is applied).
    Bits above BitsStored in native 16-bit data are masked with a :class:`DicomWarning`
    naming the file; ``bits_stored`` overrides a header that understates the bit depth.
    Raises DicomError (naming the file) for missing, non-DICOM, corrupt, truncated,
    non-MG (when ``require_mg``), colour, multi-frame or pixel-less files.
    """
    p = Path(path)
    ds = _dcmread(p, stop_before_pixels=False)
    _check_image_header(ds, p, require_mg)
    _check_native_length(ds, p)
    _check_high_bits(ds, p, bits_stored)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns again about what we report
            stored = ds.pixel_array
    except Exception as exc:
        hint = ""
        text = str(exc).lower()
        if isinstance(exc, NotImplementedError) or "missing" in text or "no pixel data" in text:
            hint = " (install a pydicom decoder plugin for this transfer syntax, e.g. pylibjpeg)"
        raise DicomError(
            f"{p}: pixel data failed to decode ({type(exc).__name__}: {exc}){hint}"
        ) from exc
    if stored.ndim != 2:
        raise DicomError(f"{p}: decoded pixel array has shape {stored.shape}, expected 2-D")

    photometric = str(ds.PhotometricInterpretation).strip()
    try:
        arr = apply_modality_lut(stored, ds)
        out_range = _modality_range(ds)
        voi_applied = False
        if apply_voi:
            arr, voi_range = _apply_voi(arr, ds)
            if voi_range is not None:
                out_range, voi_applied = voi_range, True
    except Exception as exc:
        raise DicomError(
            f"{p}: cannot apply the modality/VOI LUT ({type(exc).__name__}: {exc}); "
            "try apply_voi=False"
        ) from exc
    arr = np.asarray(arr, dtype=np.float64)
    if photometric == "MONOCHROME1":
        arr = (out_range[0] + out_range[1]) - arr

    view, view_raw = _view(ds, p)
    return DicomImage(
        pixels=np.ascontiguousarray(arr, dtype=np.float32),
        pixel_spacing_mm=pixel_spacing_mm(ds),
        laterality=_laterality(ds, p),
        view=view,
        view_raw=view_raw,
        photometric=photometric,
        bits_stored=int(ds.BitsStored),
        modality=_str_or_none(ds.get("Modality")) or "",
        manufacturer=_str_or_none(ds.get("Manufacturer")),
        presentation_intent=_str_or_none(ds.get("PresentationIntentType")),
        path=str(p),
        voi_applied=voi_applied,
    )


# --------------------------------------------------------------------------- writing


def window_from_percentiles(
    stored: np.ndarray, low: float = 0.5, high: float = 99.5
) -> tuple[float, float]:
    """(WindowCenter, WindowWidth) whose LINEAR window maps the percentiles to black/white.

    With p_lo, p_hi the ``low``/``high`` percentiles of ``stored``: width = p_hi - p_lo + 1
    and center = (p_lo + p_hi) / 2 + 0.5, so DICOM LINEAR windowing (PS3.3 C.11.2.1.2) sends
    values <= p_lo to the minimum and values >= p_hi to the maximum output.
    """
    if not 0 <= low < high <= 100:
        raise ValueError(f"need 0 <= low < high <= 100, got low={low}, high={high}")
    values = np.asarray(stored, dtype=np.float64)
    if values.size == 0:
        raise ValueError("stored: empty array")
    p_lo, p_hi = np.percentile(values, [low, high])
    return float((p_lo + p_hi) / 2 + 0.5), float(p_hi - p_lo + 1)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _check_text(name: str, value: Any, max_len: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string; got {value!r}")
    if len(value) > max_len or "\\" in value or any(ord(c) < 32 for c in value):
        raise ValueError(
            f"{name}={value!r}: must be at most {max_len} characters without backslashes "
            "or control characters (DICOM limit)"
        )
    return value


def _uid(kind: str, *parts: str) -> str:
    # repr() quotes every part, so ('ab', 'c') and ('a', 'bc') hash differently
    return generate_uid(entropy_srcs=[_UID_ROOT, kind, *(repr(x) for x in parts)])


def _check_pixels(pixels: Any, bits_stored: int) -> np.ndarray:
    arr = np.asarray(pixels)
    if arr.ndim != 2:
        raise ValueError(f"pixels must be a 2-D array (rows x cols); got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1 or max(arr.shape) > 65535:
        raise ValueError(f"pixels: shape {arr.shape} is outside 1..65535 rows/columns")
    if arr.dtype.kind not in "ui":
        raise ValueError(f"pixels must be an unsigned integer array; got dtype {arr.dtype}")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi > 2**bits_stored - 1:
        raise DicomError(
            f"pixels: values span {lo}..{hi} but bits_stored={bits_stored} allows "
            f"0..{2**bits_stored - 1}"
        )
    return arr.astype("<u2")


def _view_code_item(view: str) -> Dataset:
    code, meaning = _VIEW_CODES[view]
    item = Dataset()
    item.CodeValue = code
    item.CodingSchemeDesignator = "SRT"
    item.CodeMeaning = meaning
    item.ViewModifierCodeSequence = []
    return item


def _check_bits_stored(bits_stored: Any) -> int:
    if isinstance(bits_stored, bool) or not isinstance(bits_stored, int | np.integer):
        raise ValueError(f"bits_stored must be an integer in 8..16; got {bits_stored!r}")
    if not 8 <= int(bits_stored) <= 16:
        raise ValueError(f"bits_stored must be in 8..16; got {bits_stored}")
    return int(bits_stored)


def _check_spacing(pixel_spacing_mm: Any) -> None:
    if pixel_spacing_mm is None:
        return
    spacing = float(pixel_spacing_mm)
    if not (math.isfinite(spacing) and spacing > 0):
        raise ValueError(f"pixel_spacing_mm must be a positive number; got {pixel_spacing_mm}")


def _check_window(center: Any, width: Any, voi_lut_function: str) -> None:
    if (center is None) != (width is None):
        raise ValueError("window_center and window_width must be given together")
    if width is None:
        return
    linear = voi_lut_function == "LINEAR"
    if not math.isfinite(float(center)) or not (float(width) >= 1 if linear else float(width) > 0):
        raise ValueError(
            f"window_width must be {'>= 1' if linear else '> 0'} for {voi_lut_function} "
            f"(and window_center finite); got center={center}, width={width}"
        )


def _check_age(patient_age: Any) -> int | None:
    if patient_age is None or (isinstance(patient_age, float) and math.isnan(patient_age)):
        return None
    age = round(float(patient_age))
    if not 0 <= age <= 999:
        raise ValueError(f"patient_age must be in 0..999 years; got {patient_age}")
    return age


def _new_dataset(presentation_intent: str, ids: tuple[str, str, str], content_date: str):
    """A dataset with its file meta, SOP identity and fixed dates."""
    sop_class = _SOP_CLASS[presentation_intent]
    sop_uid = _uid("sop", *ids)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    for prefix in ("Study", "Series", "Content"):
        setattr(ds, f"{prefix}Date", content_date)
        setattr(ds, f"{prefix}Time", "000000")
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    return ds


def _set_patient_and_study(ds, patient_id, study_id, image_id, age: int | None) -> None:
    ds.PatientName = patient_id
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "F"
    if age is not None:
        ds.PatientAge = f"{age:03d}Y"
    ds.BodyPartExamined = "BREAST"
    ds.StudyInstanceUID = _uid("study", patient_id, study_id)
    ds.SeriesInstanceUID = _uid("series", patient_id, study_id, image_id)
    ds.StudyID = study_id
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1


def _set_view(ds, laterality: str, view: str) -> None:
    ds.Laterality = laterality
    ds.ImageLaterality = laterality
    ds.ViewPosition = view
    ds.ViewCodeSequence = [_view_code_item(view)]
    region = Dataset()
    region.CodeValue = "T-04000"
    region.CodingSchemeDesignator = "SRT"
    region.CodeMeaning = "Breast"
    ds.AnatomicRegionSequence = [region]


def _set_image_pixel(ds, arr, photometric: str, bits_stored: int, spacing_mm) -> None:
    ds.LossyImageCompression = "00"
    ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = int(arr.shape[0]), int(arr.shape[1])
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    if spacing_mm is not None:
        spacing_ds = format_number_as_ds(float(spacing_mm))
        ds.PixelSpacing = [spacing_ds, spacing_ds]
        ds.ImagerPixelSpacing = [spacing_ds, spacing_ds]


def write_dicom(
    path: str | os.PathLike,
    pixels: np.ndarray,
    *,
    pixel_spacing_mm: float | None,
    laterality: str,
    view: str,
    patient_id: str,
    study_id: str,
    image_id: str,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 16,
    window_center: float | None = None,
    window_width: float | None = None,
    voi_lut_function: str = "LINEAR",
    presentation_intent: str = "FOR PRESENTATION",
    manufacturer: str = "mammo_helpers phantom",
    model_name: str | None = None,
    modality_label: str = "MG",
    patient_age: float | None = None,
    burned_in_annotation: bool = False,
    series_description: str | None = None,
    extra: Mapping[str, Any] | None = None,
    content_date: str = "20240101",
) -> Path:
    """Write a 2-D mammogram as a Part-10 DICOM file (explicit VR little endian), atomically.

    ``pixels`` are stored values written as given (unsigned, < 2**bits_stored; the caller
    encodes MONOCHROME1 itself). UIDs are derived from (patient_id, study_id, image_id), and
    dates/times are fixed (``content_date``, time 000000), so equal inputs give equal bytes.
    StudyID holds ``study_id`` (at most 16 characters, DICOM SH) and ImageComments holds
    ``image_id``. ``extra`` maps DICOM keywords to values set last (None deletes the element),
    e.g. ``{"RescaleSlope": 2, "RescaleIntercept": -100}``. Used by notebook 00.
    """
    laterality = _check_choice("laterality", laterality, LATERALITIES)
    view = _check_choice("view", view, VIEWS)
    photometric = _check_choice("photometric", photometric, ("MONOCHROME1", "MONOCHROME2"))
    presentation_intent = _check_choice(
        "presentation_intent", presentation_intent, tuple(_SOP_CLASS)
    )
    voi_lut_function = _check_choice(
        "voi_lut_function", voi_lut_function, ("LINEAR", "LINEAR_EXACT", "SIGMOID")
    )
    bits_stored = _check_bits_stored(bits_stored)
    arr = _check_pixels(pixels, bits_stored)
    _check_spacing(pixel_spacing_mm)
    patient_id = _check_text("patient_id", patient_id, 64)
    study_id = _check_text("study_id", study_id, 16)
    image_id = _check_text("image_id", image_id, 1024)
    if not re.fullmatch(r"\d{8}", str(content_date)):
        raise ValueError(f"content_date must be YYYYMMDD; got {content_date!r}")
    _check_window(window_center, window_width, voi_lut_function)

    ds = _new_dataset(presentation_intent, (patient_id, study_id, image_id), content_date)
    ds.Modality = _check_text("modality_label", modality_label, 16)
    ds.PresentationIntentType = presentation_intent
    ds.Manufacturer = _check_text("manufacturer", manufacturer, 64)
    if model_name is not None:
        ds.ManufacturerModelName = _check_text("model_name", model_name, 64)
    if series_description is not None:
        ds.SeriesDescription = _check_text("series_description", series_description, 64)
    _set_patient_and_study(ds, patient_id, study_id, image_id, _check_age(patient_age))
    _set_view(ds, laterality, view)
    ds.ImageComments = image_id
    ds.BurnedInAnnotation = "YES" if burned_in_annotation else "NO"
    _set_image_pixel(ds, arr, photometric, bits_stored, pixel_spacing_mm)
    if window_center is not None:
        ds.WindowCenter = format_number_as_ds(float(window_center))
        ds.WindowWidth = format_number_as_ds(float(window_width))
        ds.VOILUTFunction = voi_lut_function
    ds.add_new(0x7FE00010, "OW", arr.tobytes())
    for keyword, value in (extra or {}).items():
        if tag_for_keyword(keyword) is None:
            raise ValueError(f"extra: {keyword!r} is not a DICOM keyword")
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)

    path = Path(path)
    with atomic_write(path, "wb") as fh:
        ds.save_as(fh, enforce_file_format=True)
    return path
