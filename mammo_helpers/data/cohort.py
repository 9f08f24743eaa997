"""Build (or reuse) the synthetic cohort on disk: DICOM images, lesion masks and a manifest.

``build_cohort(n_patients, config)`` renders every patient's four views with the phantom,
writes them as mammography DICOM files plus one PNG mask per finding, and saves
``manifest.csv`` in the common manifest schema. The folder name is a hash of the settings
and of the generator's code, so the same settings reuse the cached cohort and different
settings never collide. The folder is built under a temporary name and renamed only when
complete: an interrupted or terminated run leaves nothing half-written (a folder left by a
killed process is removed by the next build), and a damaged cached cohort is rebuilt.

Chapters reach it through :func:`mammo_helpers.data.load_source`; chapter 00 and the command
line (``make data``) derive the settings with the one function
:func:`cohort_from_parameters`, so both build the same cohort.

Command line: ``python -m mammo_helpers.data.cohort --scale default`` (notebook 00's
settings at that scale) or ``--n-patients 300 --seed 0``.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import hashlib
import json
import math
import multiprocessing as mp
import os
import signal
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm  # a text bar: works in terminals, notebooks and papermill logs

from mammo_helpers.boxes import boxes_from_findings, crop_around, crop_boxes, with_boxes
from mammo_helpers.paths import (
    atomic_directory,
    atomic_write,
    cache_dir,
    describe_path,
    sigterm_as_interrupt,
)
from mammo_helpers.vocab import HANGING_ORDER

from .manifest import (
    ManifestError,
    explode_findings,
    load_manifest,
    manifest_row,
    save_manifest,
    validate_manifest,
)
from .phantom import SITES, PhantomConfig, density_from_pd, patient_exams, render_view
from .phantom.generator import RenderedImage

GENERATOR_VERSION = "1"
MANIFEST_NAME = "manifest.csv"
INFO_NAME = "cohort.json"
#: Chapter parameter -> PhantomConfig field read by :func:`cohort_from_parameters`.
PHANTOM_PARAMETERS = {
    "RESOLUTION_SCALE": "resolution_scale",
    "SPACING_MM": "spacing_mm",
    "LESION_PREVALENCE": "lesion_prevalence",
    "REPEAT_SHARE": "repeat_share",
}
NOTEBOOK_00 = "00_data_and_preprocessing"


class CohortWarning(UserWarning):
    """A cached cohort was damaged or incomplete and is being rebuilt."""


@dataclass
class Cohort:
    """A cohort on disk: its folder, manifest (paths absolute) and build information."""

    root: Path
    manifest: pd.DataFrame
    info: dict


# ------------------------------------------------------------------ settings and keys
def check_n_patients(n_patients: Any, name: str = "n_patients") -> int:
    """``n_patients`` as an int >= 1, else an error naming the parameter."""
    if isinstance(n_patients, bool) or not isinstance(n_patients, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(n_patients).__name__} {n_patients!r}")
    if n_patients < 1:
        raise ValueError(f"{name} must be >= 1, got {n_patients}")
    return int(n_patients)


@dataclass(frozen=True)
class CohortSpec:
    """The settings of a phantom cohort as a chapter's parameters name them."""

    n_patients: int
    seed: int
    options: dict  # PhantomConfig fields other than the seed

    @property
    def config(self) -> PhantomConfig:
        return phantom_config(self.seed, **self.options)

    @property
    def source_args(self) -> dict:
        """Keyword arguments of ``load_source("phantom", ...)`` for this cohort."""
        return {"n_patients": self.n_patients, "seed": self.seed, **self.options}


def cohort_from_parameters(params: Mapping[str, Any]) -> CohortSpec:
    """The phantom settings named by a chapter's parameters.

    Reads ``N_PATIENTS`` and ``SEED`` and, where present, the names in
    :data:`PHANTOM_PARAMETERS` (e.g. ``RESOLUTION_SCALE``). Chapter 00 passes its
    parameters (``globals()``) and ``make data`` passes the values the runner would inject
    into chapter 00 at a scale, so the two always build the same cohort.
    """
    missing = [name for name in ("N_PATIENTS", "SEED") if name not in params]
    if missing:
        raise KeyError(f"cohort_from_parameters: parameter(s) {', '.join(missing)} not given")
    options = {
        field: params[name]
        for name, field in PHANTOM_PARAMETERS.items()
        if name in params and params[name] is not None
    }
    return CohortSpec(check_n_patients(params["N_PATIENTS"], "N_PATIENTS"), params["SEED"], options)


def phantom_config(seed: Any, **fields: Any) -> PhantomConfig:
    """``PhantomConfig(seed=seed, **fields)``; unknown fields are named with the known ones."""
    known = {f.name for f in dataclasses.fields(PhantomConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise TypeError(
            f"unknown phantom setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return PhantomConfig(seed=seed, **fields)


def generator_fingerprint() -> str:
    """Hash of the phantom's source code: any change to the generator invalidates caches.

    The phantom's realism checks (``phantom/validation/``) only measure cohorts, so they
    are not part of it.
    """
    here = Path(__file__).parent
    digest = hashlib.sha256()
    sources = [p for p in here.joinpath("phantom").rglob("*.py") if "validation" not in p.parts]
    for path in sorted([*sources, Path(__file__)]):
        digest.update(path.relative_to(here).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cohort_key(n_patients: int, config: PhantomConfig) -> str:
    """Stable identifier of (n_patients, config, generator source)."""
    payload = json.dumps(
        {
            "n": n_patients,
            "config": dataclasses.asdict(config),
            "v": GENERATOR_VERSION,
            "code": generator_fingerprint(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def cohort_folder(n_patients: int, config: PhantomConfig, cache: str | os.PathLike | None) -> Path:
    """Where :func:`build_cohort` keeps this cohort (``<cache>/phantom-<key>``)."""
    return cache_dir(cache) / f"phantom-{cohort_key(n_patients, config)}"


# ------------------------------------------------------------------ rendering
def _write_png(path: Path, mask: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", mask.astype(np.uint8) * 255)
    if not ok:
        raise OSError(f"could not encode mask {path}")
    with atomic_write(path) as fh:
        fh.write(buf.tobytes())


def _write_image(root: Path, rel: Path, patient, image_id: str, im: RenderedImage) -> None:
    from mammo_helpers.io import write_dicom

    site = SITES[patient.site]
    write_dicom(
        root / rel,
        im.stored,
        pixel_spacing_mm=im.spacing_mm,
        laterality=im.laterality,
        view=im.view,
        patient_id=patient.patient_id,
        study_id=patient.study_id,
        image_id=image_id,
        photometric=im.photometric,
        bits_stored=im.bits_stored,
        window_center=im.window_center,
        window_width=im.window_width,
        voi_lut_function=im.voi_lut_function,
        manufacturer=site.vendor,
        patient_age=int(patient.age),
        burned_in_annotation=site.burned_in_text,
        series_description=f"{im.laterality} {im.view} {im.modality}",
    )


def _write_findings(root: Path, patient_id: str, image_id: str, im: RenderedImage) -> list:
    findings = []
    for k, f in enumerate(im.findings):
        mask_rel = Path("masks") / patient_id / f"{image_id}_{k}.png"
        _write_png(root / mask_rel, f["mask"])
        item = {key: val for key, val in f.items() if key != "mask"}
        item["mask_path"] = str(mask_rel)
        findings.append(item)
    return findings


def _exam_suffix(patient) -> str:
    """What a repeat exam adds to its image ids ("" for the first exam)."""
    return f"-Y{patient.exam}" if patient.exam else ""


def _render_patient(args) -> list[dict]:
    """Render and write the four views of each exam of one patient; returns manifest rows."""
    config, index, root = args
    return [
        row for exam in patient_exams(config, index) for row in _render_exam(config, exam, root)
    ]


def _render_exam(config, patient, root) -> list[dict]:
    root = Path(root)
    site = SITES[patient.site]
    images = [render_view(config, patient, lat, view) for lat, view in HANGING_ORDER]
    exam_pd = float(np.mean([im.truth["pd_true"] for im in images]))
    density = density_from_pd(exam_pd + patient.reader_offset)
    rows = []
    for im in images:
        image_id = f"{patient.patient_id}{_exam_suffix(patient)}-{im.laterality}{im.view}"
        rel = Path("images") / patient.patient_id / f"{image_id}.dcm"
        _write_image(root, rel, patient, image_id, im)
        findings = _write_findings(root, patient.patient_id, image_id, im)
        rows.append(
            manifest_row(
                patient_id=patient.patient_id,
                study_id=patient.study_id,
                image_id=image_id,
                path=rel,
                laterality=im.laterality,
                view=im.view,
                modality=im.modality,
                site=patient.site,
                vendor=site.vendor,
                density=density,
                age=float(patient.age),
                pixel_spacing_mm=im.spacing_mm,
                rows=int(im.stored.shape[0]),
                cols=int(im.stored.shape[1]),
                cancer=int(any(f["malignant"] for f in findings)),
                findings=findings,
                source="phantom",
                exam=patient.exam,
                pd_true=round(im.truth["pd_true"], 3),
                exam_pd_true=round(exam_pd, 3),
                density_true=density_from_pd(exam_pd),
                density_latent=patient.density_latent,
                vgf=round(im.truth["vgf"], 4),
                thickness_mm=round(im.truth["thickness_mm"], 2),
                photometric=im.photometric,
                bits_stored=im.bits_stored,
            )
        )
    return rows


def _die_with_parent() -> None:
    """Pool initializer: on Linux, a worker gets SIGKILL when its parent dies (even by
    SIGKILL), so no orphan keeps writing into a folder that is being cleaned up."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except OSError:  # pragma: no cover - no glibc: workers still end with the pool
            pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C means


def _render_all(jobs: list, workers: int, bar: tqdm) -> list[dict]:
    rows: list[dict] = []
    if workers > 1 and len(jobs) > 1:
        ctx = mp.get_context("spawn")
        # leaving the block (normally or by an exception, SIGTERM included) terminates the pool
        with ctx.Pool(workers, initializer=_die_with_parent) as pool:
            for part in pool.imap(_render_patient, jobs, chunksize=1):
                rows.extend(part)
                bar.update(1)
    else:
        for job in jobs:
            part = _render_patient(job)
            rows.extend(part)
            bar.update(1)
    return rows


# ------------------------------------------------------------------ reading back
def config_from_info(info: dict, **changes) -> PhantomConfig:
    """The :class:`PhantomConfig` a cohort was built with (from its ``cohort.json``)."""
    values = dict(info["config"])
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = tuple(value)
    values.update(changes)
    return PhantomConfig(**values)


def _read_info(root: Path) -> dict:
    path = root / INFO_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {INFO_NAME} in cohort folder {describe_path(root)}")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"cohort file {describe_path(path)} is damaged: {exc}") from exc
    if not isinstance(info, dict) or "config" not in info:
        raise ValueError(f"cohort file {describe_path(path)} has no 'config' entry")
    return info


def load_cohort(root: str | os.PathLike, *, check_files: bool = True) -> Cohort:
    """Open a cohort folder written by :func:`build_cohort` (paths made absolute).

    Raises ``FileNotFoundError`` / ``ValueError`` naming the missing or damaged file: the
    manifest, ``cohort.json``, or (with ``check_files``) the first missing image or mask.
    """
    root = Path(root)
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise FileNotFoundError(f"no {MANIFEST_NAME} in cohort folder {describe_path(root)}")
    info = _read_info(root)
    df = load_manifest(manifest_path)
    df["path"] = [str(root / p) for p in df["path"]]
    if check_files:
        _check_cohort_files(root, df)
    df.attrs["cohort_root"] = str(root)
    return Cohort(root=root, manifest=df, info=info)


def _check_cohort_files(root: Path, df: pd.DataFrame) -> None:
    masks = [root / f["mask_path"] for cell in df["findings"] for f in cell if "mask_path" in f]
    for path in [*map(Path, df["path"]), *masks]:
        if not path.is_file():
            raise FileNotFoundError(f"cohort file missing: {describe_path(path)}")


def _cached(final: Path) -> Cohort | None:
    """The cached cohort at ``final``, or None (with a warning) if it is damaged."""
    if not final.exists():
        return None
    try:
        return load_cohort(final)
    except (OSError, ValueError, ManifestError) as exc:
        warnings.warn(
            f"cached cohort {describe_path(final)} is damaged ({exc}); building it again",
            CohortWarning,
            stacklevel=3,
        )
        return None


def rerender(cohort, image_id: str, *, spacing_mm: float | None = None, **kwargs):
    """Draw one image of a cohort again, e.g. at 0.1 mm to see calcifications
    (``spacing_mm``; by default the cohort's own spacing, so the image is the stored one).

    ``cohort`` is a :class:`Cohort` or a phantom manifest from ``load_source``. The same
    patient, breast, tissue and lesions (the tissue field lives on a fixed 0.5 mm grid),
    only the pixel grid and the quantum noise differ. Extra keyword arguments go to
    :func:`render_view` (``keep_log_raw``, ``modality``, ``artefacts``). Chapters 00
    (lesion gallery) and 01 (the same images with paddle edges, clips, implants, text).
    """
    config, patient, rec = _patient_of(cohort, image_id, spacing_mm, "rerender")
    return render_view(config, patient, rec.laterality, rec.view, **kwargs)


def _patient_of(cohort, image_id: str, spacing_mm, caller: str):
    """(config, patient spec, manifest row) of one image of a phantom cohort."""
    if isinstance(cohort, pd.DataFrame):
        root = cohort.attrs.get("cohort_root")
        if root is None:
            raise ValueError(f"{caller}: this manifest is not a phantom cohort (no cohort_root)")
        cohort = Cohort(Path(root), cohort, _read_info(Path(root)))
    rows = cohort.manifest[cohort.manifest.image_id == image_id]
    if rows.empty:
        raise KeyError(f"image_id {image_id!r} is not in the cohort at {cohort.root}")
    rec = rows.iloc[0]
    changes = {} if spacing_mm is None else {"spacing_mm": spacing_mm}
    config = config_from_info(cohort.info, **changes)  # None: the cohort's own pixel grid
    exams = patient_exams(config, int(rec.patient_id.rsplit("-", 1)[1]))
    patient = next(e for e in exams if e.study_id == rec.study_id)
    return config, patient, rec


def insert_mass(cohort, image_id: str, *, seed: int = 0, max_draws: int = 1000):
    """One image of a cohort drawn again with a malignant mass inserted into its breast
    (drawn from the phantom's own mass law, seeded; the breast's other lesions are removed),
    as a :class:`RenderedImage` whose ``findings`` hold the mass's box and exact mask.
    The breast and its tissue are the stored image's. Chapter 03 (paper 03 §4.3: a lesion
    inserted into a normal mammogram; there by stable diffusion)."""
    from .phantom.lesions import sample_lesion

    config, patient, rec = _patient_of(cohort, image_id, None, "insert_mass")
    rng = np.random.default_rng([int(seed), int(rec.patient_id.rsplit("-", 1)[1])])
    for _ in range(max_draws):
        mass = sample_lesion(rng, "mass")
        if mass.malignant and mass.params.get("occult_view") is None:
            break
    else:
        raise RuntimeError(f"insert_mass: no visible malignant mass in {max_draws} draws")
    lesions = dict(patient.lesions) | {rec.laterality: [mass]}
    return render_view(
        config, dataclasses.replace(patient, lesions=lesions), rec.laterality, rec.view
    )


def read_back(im: RenderedImage) -> np.ndarray:
    """The pixels of a rendered image as a chapter reads a cohort image: written to a DICOM
    file with the cohort's writer and read back with :func:`mammo_helpers.io.read_dicom`
    (VOI LUT applied, ``MONOCHROME1`` inverted). For images drawn again with
    :func:`rerender`, e.g. with artefacts; chapter 01's robustness figure."""
    import tempfile

    from mammo_helpers.io import read_dicom, write_dicom

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image.dcm"
        write_dicom(
            path,
            im.stored,
            pixel_spacing_mm=im.spacing_mm,
            laterality=im.laterality,
            view=im.view,
            patient_id="P",
            study_id="S",
            image_id="I",
            photometric=im.photometric,
            bits_stored=im.bits_stored,
            window_center=im.window_center,
            window_width=im.window_width,
            voi_lut_function=im.voi_lut_function,
        )
        return read_dicom(path).pixels


@dataclass
class LesionView:
    """One view of a lesion redrawn finely: the image around it, its box and mask there."""

    image_id: str
    view: str
    image: np.ndarray  # processed display image in [0, 1], cropped around the lesion
    finding: dict  # the finding with its box moved into the crop
    mask: np.ndarray  # the lesion's exact mask, cropped the same way
    spacing_mm: float


def typical_lesion(
    manifest: pd.DataFrame, label: str, *, spacing_mm: float = 0.1, margin_mm: float = 15.0
) -> list[LesionView]:
    """The lesion of kind ``label`` with the median contrast, redrawn at ``spacing_mm`` in
    every view of its breast (chapter 00's lesion gallery); ``[]`` if the cohort has none.

    At the cohort's spacing calcifications of 0.1-0.6 mm are sub-pixel; :func:`rerender`
    draws the same breast and lesion on a finer grid.
    """
    findings = explode_findings(manifest)
    candidates = findings[findings.label == label].sort_values("contrast", kind="stable")
    if candidates.empty:
        return []
    pick = candidates.iloc[len(candidates) // 2]
    same = findings[
        (findings.patient_id == pick.patient_id) & (findings.lesion_id == pick.lesion_id)
    ].sort_values("view")
    out = []
    for rec in same.itertuples():
        fine = rerender(manifest, rec.image_id, spacing_mm=spacing_mm)
        match = [f for f in fine.findings if f["lesion_id"] == rec.lesion_id]
        if not match:  # too small to keep at this spacing
            continue
        box = boxes_from_findings(match)
        crop = crop_around(box[0], fine.display.shape, fine.spacing_mm, margin_mm=margin_mm)
        moved, kept = crop_boxes(box, crop)
        x0, y0, x1, y1 = crop
        out.append(
            LesionView(
                image_id=rec.image_id,
                view=rec.view,
                image=fine.display[y0:y1, x0:x1],
                finding=with_boxes(match, moved, kept)[0],
                mask=match[0]["mask"][y0:y1, x0:x1],
                spacing_mm=fine.spacing_mm,
            )
        )
    return out


# ------------------------------------------------------------------ building
def _check_workers(workers: Any) -> int:
    if workers is None:
        return min(2, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
        raise ValueError(
            f"workers must be an integer >= 1 (or None for automatic), got {workers!r}"
        )
    return int(workers)


def build_cohort(
    n_patients: int,
    config: PhantomConfig | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Cohort:
    """Generate ``n_patients`` x 4 views (or reuse the identical cached cohort).

    ``cache_dir`` defaults to ``$MAMMO_DATA_DIR`` or ``~/.cache/mammo_helpers``. A cached
    cohort whose files are damaged or missing is rebuilt with a :class:`CohortWarning`.
    Two processes building the same cohort at once both succeed; the first one published
    is kept.
    """
    n_patients = check_n_patients(n_patients)
    workers = _check_workers(workers)
    config = config or PhantomConfig()
    final = cohort_folder(n_patients, config, cache_dir)
    if not overwrite:
        cached = _cached(final)
        if cached is not None:
            return cached
    start = time.perf_counter()
    with sigterm_as_interrupt(), atomic_directory(final, replace=True) as tmp:
        jobs = [(config, i, str(tmp)) for i in range(n_patients)]
        with tqdm(
            total=n_patients, desc="phantom patients", unit="patient", disable=not progress
        ) as bar:
            rows = _render_all(jobs, workers, bar)
        seconds = time.perf_counter() - start
        df = validate_manifest(pd.DataFrame(rows))
        save_manifest(df, tmp / MANIFEST_NAME)
        info = {
            "n_patients": n_patients,
            "n_images": len(df),
            "config": dataclasses.asdict(config),
            "generator_version": GENERATOR_VERSION,
            "generator_fingerprint": generator_fingerprint(),
            "seconds": round(seconds, 2),
            "images_per_s": round(len(df) / seconds, 3),
            "workers": workers,
        }
        with atomic_write(tmp / INFO_NAME, "w") as fh:
            json.dump(info, fh, indent=2)
    return load_cohort(final)


# ------------------------------------------------------------------ command line
def notebook_parameters(scale: str) -> dict:
    """The parameters the runner would give chapter 00 at ``scale`` (defaults included)."""
    from mammo_helpers.paths import project_root
    from mammo_helpers.run import load_scale, plan_runs

    notebook = project_root() / "notebooks" / f"{NOTEBOOK_00}.ipynb"
    if not notebook.is_file():
        raise FileNotFoundError(
            f"--scale needs chapter 00 to read its parameters, but {describe_path(notebook)} "
            "does not exist; pass --n-patients and --seed instead"
        )
    (plan,) = plan_runs([notebook], load_scale(scale))
    return plan.effective()


def _positive_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mammo-cohort", description="Generate the synthetic mammography cohort."
    )
    parser.add_argument(
        "--scale",
        default=None,
        help="use chapter 00's parameters at this scale (params/<scale>.yaml merged over the "
        "notebook's defaults, exactly what mammo-run gives it); explicit options win",
    )
    parser.add_argument("--n-patients", type=_positive_int, default=None)
    parser.add_argument("--seed", type=_non_negative_int, default=None)
    parser.add_argument("--resolution-scale", type=_positive_float, default=None)
    parser.add_argument("--cache-dir", default=None, help="default: $MAMMO_DATA_DIR or ~/.cache")
    parser.add_argument("--workers", type=_positive_int, default=None)
    parser.add_argument("--overwrite", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    params: dict[str, Any] = {"N_PATIENTS": None, "SEED": 0, "CACHE_DIR": None}
    if args.scale:
        params.update(notebook_parameters(args.scale))
    for option, name in (
        ("n_patients", "N_PATIENTS"),
        ("seed", "SEED"),
        ("resolution_scale", "RESOLUTION_SCALE"),
        ("cache_dir", "CACHE_DIR"),
    ):
        if getattr(args, option) is not None:
            params[name] = getattr(args, option)
    if params["N_PATIENTS"] is None:
        _parser().error("give --scale or --n-patients")
    spec = cohort_from_parameters(params)
    cohort = build_cohort(
        spec.n_patients,
        spec.config,
        cache_dir=params.get("CACHE_DIR"),
        workers=args.workers,
        overwrite=args.overwrite,
    )
    print(f"{len(cohort.manifest)} images in {cohort.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
