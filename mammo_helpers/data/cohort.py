"""Build (or reuse) the synthetic cohort on disk: DICOM images, lesion masks and a manifest.

``build_cohort(n_patients, config)`` renders every patient's four views with the phantom,
writes them as mammography DICOM files plus one PNG mask per finding, and saves
``manifest.csv`` in the common manifest schema. The folder name is a hash of the config, so
the same settings reuse the cached cohort and different settings never collide; the folder
is built under a temporary name and renamed only when complete, so an interrupted run leaves
nothing half-written. Used by notebook 00 (and, through the manifest, by every notebook).

Command line: ``python -m mammo_helpers.data.cohort --n-patients 300 --seed 0``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm  # a text bar: works in terminals, notebooks and papermill logs

from mammo_helpers.paths import atomic_directory, atomic_write, default_cache_dir

from .manifest import load_manifest, save_manifest, validate_manifest
from .phantom import SITES, PhantomConfig, density_from_pd, render_view, sample_patient
from .phantom.generator import RenderedImage

GENERATOR_VERSION = "1"
VIEWS = (("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO"))
MANIFEST_NAME = "manifest.csv"
INFO_NAME = "cohort.json"


@dataclass
class Cohort:
    """A cohort on disk: its folder, manifest (paths absolute) and build information."""

    root: Path
    manifest: pd.DataFrame
    info: dict


def generator_fingerprint() -> str:
    """Hash of the phantom's source code: any change to the generator invalidates caches."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted([*here.joinpath("phantom").glob("*.py"), Path(__file__)]):
        digest.update(path.name.encode())
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


def _write_png(path: Path, mask: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", mask.astype(np.uint8) * 255)
    if not ok:
        raise OSError(f"could not encode mask {path}")
    with atomic_write(path) as fh:
        fh.write(buf.tobytes())


def _render_patient(args) -> list[dict]:
    """Render and write the four views of one patient; returns manifest rows."""
    from mammo_helpers.io import write_dicom

    config, index, root = args
    root = Path(root)
    patient = sample_patient(config, index)
    site = SITES[patient.site]
    images: list[tuple[str, str, RenderedImage]] = []
    for lat, view in VIEWS:
        images.append((lat, view, render_view(config, patient, lat, view)))
    exam_pd = float(np.mean([im.truth["pd_true"] for _, _, im in images]))
    density = density_from_pd(exam_pd + patient.reader_offset)
    rows = []
    for lat, view, im in images:
        image_id = f"{patient.patient_id}-{lat}{view}"
        rel = Path("images") / patient.patient_id / f"{image_id}.dcm"
        write_dicom(
            root / rel,
            im.stored,
            pixel_spacing_mm=im.spacing_mm,
            laterality=lat,
            view=view,
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
            series_description=f"{lat} {view} {im.modality}",
        )
        findings = []
        for k, f in enumerate(im.findings):
            mask_rel = Path("masks") / patient.patient_id / f"{image_id}_{k}.png"
            _write_png(root / mask_rel, f["mask"])
            item = {key: val for key, val in f.items() if key != "mask"}
            item["mask_path"] = str(mask_rel)
            findings.append(item)
        rows.append(
            {
                "patient_id": patient.patient_id,
                "study_id": patient.study_id,
                "image_id": image_id,
                "path": str(rel),
                "laterality": lat,
                "view": view,
                "modality": im.modality,
                "site": patient.site,
                "vendor": site.vendor,
                "density": density,
                "age": float(patient.age),
                "pixel_spacing_mm": im.spacing_mm,
                "rows": int(im.stored.shape[0]),
                "cols": int(im.stored.shape[1]),
                "cancer": int(any(f["malignant"] for f in findings)),
                "findings": findings,
                "source": "phantom",
                "pd_true": round(im.truth["pd_true"], 3),
                "exam_pd_true": round(exam_pd, 3),
                "density_true": density_from_pd(exam_pd),
                "density_latent": patient.density_latent,
                "vgf": round(im.truth["vgf"], 4),
                "thickness_mm": round(im.truth["thickness_mm"], 2),
                "photometric": im.photometric,
                "bits_stored": im.bits_stored,
            }
        )
    return rows


def config_from_info(info: dict, **changes) -> PhantomConfig:
    """The :class:`PhantomConfig` a cohort was built with (from its ``cohort.json``)."""
    values = dict(info["config"])
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = tuple(value)
    values.update(changes)
    return PhantomConfig(**values)


def rerender(cohort: Cohort, image_id: str, *, spacing_mm: float | None = None, **kwargs):
    """Draw one image of ``cohort`` again, e.g. at 0.1 mm to see calcifications.

    The same patient, breast, tissue and lesions (the tissue field lives on a fixed 0.5 mm
    grid), only the pixel grid and the quantum noise differ. Extra keyword arguments go to
    :func:`render_view` (``keep_log_raw``, ``modality``).
    """
    rows = cohort.manifest[cohort.manifest.image_id == image_id]
    if rows.empty:
        raise KeyError(f"image_id {image_id!r} is not in the cohort at {cohort.root}")
    rec = rows.iloc[0]
    config = config_from_info(cohort.info, spacing_mm=spacing_mm)
    patient = sample_patient(config, int(rec.patient_id.rsplit("-", 1)[1]))
    return render_view(config, patient, rec.laterality, rec.view, **kwargs)


def load_cohort(root: str | os.PathLike) -> Cohort:
    """Open a cohort folder written by :func:`build_cohort` (paths made absolute)."""
    root = Path(root)
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.exists():
        raise FileNotFoundError(f"no {MANIFEST_NAME} in cohort folder {root}")
    df = load_manifest(manifest_path)
    df["path"] = [str(root / p) for p in df["path"]]
    info = json.loads((root / INFO_NAME).read_text()) if (root / INFO_NAME).exists() else {}
    return Cohort(root=root, manifest=df, info=info)


def build_cohort(
    n_patients: int,
    config: PhantomConfig | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Cohort:
    """Generate ``n_patients`` x 4 views (or reuse the identical cached cohort).

    ``data_dir`` defaults to ``$MAMMO_DATA_DIR`` or ``~/.cache/mammo_helpers``.
    """
    if not isinstance(n_patients, int | np.integer) or isinstance(n_patients, bool):
        raise TypeError(f"n_patients must be an int, got {type(n_patients).__name__}")
    if n_patients < 1:
        raise ValueError(f"n_patients must be >= 1, got {n_patients}")
    config = config or PhantomConfig()
    base = Path(data_dir).expanduser() if data_dir else default_cache_dir()
    final = base / f"phantom-{cohort_key(int(n_patients), config)}"
    if final.exists() and (final / MANIFEST_NAME).exists() and not overwrite:
        return load_cohort(final)
    workers = workers or min(2, os.cpu_count() or 1)
    start = time.perf_counter()
    with atomic_directory(final) as tmp:
        jobs = [(config, i, str(tmp)) for i in range(int(n_patients))]
        rows: list[dict] = []
        bar = tqdm(total=n_patients * 4, desc="phantom images", unit="img", disable=not progress)
        if workers > 1 and n_patients > 1:
            ctx = mp.get_context("spawn")
            with ctx.Pool(workers) as pool:
                for part in pool.imap(_render_patient, jobs, chunksize=1):
                    rows.extend(part)
                    bar.update(len(part))
        else:
            for job in jobs:
                part = _render_patient(job)
                rows.extend(part)
                bar.update(len(part))
        bar.close()
        seconds = time.perf_counter() - start
        df = validate_manifest(pd.DataFrame(rows))
        save_manifest(df, tmp / MANIFEST_NAME)
        info = {
            "n_patients": int(n_patients),
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the synthetic mammography cohort.")
    parser.add_argument(
        "--scale",
        default=None,
        help="take N_PATIENTS, SEED, RESOLUTION_SCALE, DATA_DIR from "
        "params/<scale>.yaml (the values notebook 00 uses); explicit options win",
    )
    parser.add_argument("--n-patients", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--resolution-scale", type=float, default=None)
    parser.add_argument("--data-dir", default=None, help="default: $MAMMO_DATA_DIR or ~/.cache")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    values = {"N_PATIENTS": 300, "SEED": 0, "RESOLUTION_SCALE": 4.0, "DATA_DIR": None}
    if args.scale:
        from mammo_helpers.runner import load_scale

        scale = load_scale(args.scale)
        values.update(scale.get("common", {}))
        values.update(scale.get("00_data_and_preprocessing", {}))
    n_patients = args.n_patients if args.n_patients is not None else int(values["N_PATIENTS"])
    seed = args.seed if args.seed is not None else int(values["SEED"])
    res = args.resolution_scale or float(values["RESOLUTION_SCALE"])
    config = PhantomConfig(seed=seed, resolution_scale=res)
    cohort = build_cohort(
        n_patients,
        config,
        data_dir=args.data_dir or values["DATA_DIR"],
        workers=args.workers,
        overwrite=args.overwrite,
    )
    print(f"{len(cohort.manifest)} images in {cohort.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
