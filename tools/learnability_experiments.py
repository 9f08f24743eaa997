"""Is the phantom, the sample size or the recipe the limit of chapter 00's learnability check?

Trains the chapter's patch CNN with variations of its recipe on one cohort and writes the
held-out patch AUCs (with patient-bootstrap intervals) to a CSV (not in CI; ~15 min on 2
cores for a 400-patient cohort):

    python tools/learnability_experiments.py --patients 400 --prevalence 0.6 \\
        --out build/learnability_experiments.csv

The split, patch extraction and evaluation are chapter 00's (``mh.learnability``); only the
training settings change. The whole-image rows start from the 24 px patch model (paper 04's
two-stage recipe) and fine-tune on whole breasts at 256 x 208. ``--hard-negatives N`` adds
chapter 00's patch CNN slid over the test images, and the same CNN retrained with the N
windows of each training image it scores highest away from the findings (hard negatives),
tested on patches and slid over images; ``--variants`` runs only the named variants:

    python tools/learnability_experiments.py --patients 600 --prevalence 0.6 \\
        --variants "chapter 00 (64 px, 20 epochs)" --hard-negatives 4
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

import mammo_helpers as mh

L = mh.learnability

#: name -> (patch px, train_cnn settings, per-patch standardisation)
VARIANTS = {
    "chapter 00 (64 px, 20 epochs)": (64, {"epochs": 20}, False),
    "40 epochs": (64, {"epochs": 40}, False),
    "24 px": (24, {"epochs": 20}, False),
    "24 px, width 32": (24, {"epochs": 20, "width": 32}, False),
    "24 px, lr 3e-3": (24, {"epochs": 20, "lr": 3e-3}, False),
    "24 px, each patch standardised": (24, {"epochs": 20}, True),
}


def _standardised(s: L.Samples) -> L.Samples:
    x = s.x - s.x.mean((1, 2), keepdims=True)
    return L.Samples(s.y, s.kind, s.patient_id, x / (s.x.std((1, 2), keepdims=True) + 0.02))


def _row(name, scores, labels, seconds, seed, test="patches") -> dict:
    est = mh.metrics.auc_ci(labels.y, scores, labels.patient_id, seed=seed)
    row = {"variant": name, "test": test, "auc": est.value, "low": est.low, "high": est.high}
    print(row | {"s": seconds}, flush=True)
    return row | {"s": seconds}


CHAPTER = "chapter 00 (64 px, 20 epochs)"


def _hard_negative_rows(model, train, test, patches, per_image: int, seed: int) -> list[dict]:
    """Chapter 00's CNN slid over the test images, then retrained with ``per_image`` hard
    negatives per training image, on the test patches and slid over the test images."""
    labels = L.image_labels(test)
    start = time.perf_counter()
    slid = L.image_scores(model, test, size_mm=20.0)
    rows = [_row(CHAPTER, slid, labels, time.perf_counter() - start, seed, "images (slid)")]
    start = time.perf_counter()
    mined = L.hard_negatives(model, train, size_mm=20.0, per_image=per_image)
    retrained = L.train_cnn(patches[0].plus(mined), seed=seed, **VARIANTS[CHAPTER][1])
    name = f"+ {per_image} hard negatives per training image ({len(mined)} windows)"
    seconds = time.perf_counter() - start  # mining and training
    rows.append(_row(name, L.predict(retrained, patches[1]), patches[1], seconds, seed))
    start = time.perf_counter()
    slid = L.image_scores(retrained, test, size_mm=20.0)
    rows.append(_row(name, slid, labels, time.perf_counter() - start, seed, "images (slid)"))
    return rows


def run(
    patients: int,
    prevalence: float | None,
    seed: int,
    image_epochs: int,
    variants: list[str] | None = None,
    hard_negatives: int = 0,
) -> pd.DataFrame:
    options = {} if prevalence is None else {"lesion_prevalence": prevalence}
    df = mh.data.load_source("phantom", n_patients=patients, seed=seed, **options)
    lesion = df.assign(lesion=df.findings.map(len).gt(0).astype(int))
    split = mh.data.splits.train_val_test_split(
        lesion, val=0, test=0.3, stratify="lesion", seed=seed
    )
    train, test = df[split == "train"], df[split == "test"]
    chosen = {k: v for k, v in VARIANTS.items() if variants is None or k in variants}
    if hard_negatives:
        chosen.setdefault(CHAPTER, VARIANTS[CHAPTER])
    patches = {}
    for px in sorted({v[0] for v in chosen.values()}):
        extract = dict(size_mm=20.0, px=px, seed=seed)
        patches[px] = (
            L.lesion_patches(
                train, normals_per_image=3, crops_per_lesion=4, jitter_mm=4.0, **extract
            ),
            L.lesion_patches(test, **extract),
        )
    rows, models = [], {}
    for name, (px, settings, standardise) in chosen.items():
        tr, te = (_standardised(s) if standardise else s for s in patches[px])
        start = time.perf_counter()
        models[name] = L.train_cnn(tr, seed=seed, **settings)
        scores = L.predict(models[name], te)
        rows.append(_row(name, scores, te, time.perf_counter() - start, seed))
    if hard_negatives:
        rows += _hard_negative_rows(models[CHAPTER], train, test, patches[64], hard_negatives, seed)
    if "24 px" in models:
        rows.append(_whole_image_row(models["24 px"], train, test, image_epochs, seed))
    return pd.DataFrame(rows).assign(patients=patients, prevalence=prevalence, seed=seed)


def _whole_image_row(init, train, test, image_epochs: int, seed: int) -> dict:
    """Paper 04's second stage: the 24 px patch model fine-tuned on whole breasts."""
    img_train, img_test = (L.whole_images(d, size_hw=(256, 208)) for d in (train, test))
    start = time.perf_counter()
    image = L.train_cnn(
        img_train, epochs=image_epochs, lr=1e-4, batch_size=16, pool="max", init=init, seed=seed
    )
    name = f"whole images 256x208 from the 24 px model, {image_epochs} epochs"
    scores = L.predict(image, img_test)
    return _row(name, scores, img_test, time.perf_counter() - start, seed, "images")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=400)
    parser.add_argument("--prevalence", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-epochs", type=int, default=8)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="default: all")
    parser.add_argument("--hard-negatives", type=int, default=0, metavar="N")
    parser.add_argument("--out", type=Path, default=Path("build/learnability_experiments.csv"))
    args = parser.parse_args(argv)
    if args.hard_negatives < 0:
        parser.error(f"--hard-negatives must be >= 0, got {args.hard_negatives}")
    table = run(
        args.patients,
        args.prevalence,
        args.seed,
        args.image_epochs,
        variants=args.variants,
        hard_negatives=args.hard_negatives,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(table.round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    raise SystemExit(main())
