"""Is the phantom, the sample size or the recipe the limit of chapter 00's learnability check?

Trains the chapter's patch CNN with variations of its recipe on one cohort and writes the
held-out patch AUCs (with patient-bootstrap intervals) to a CSV (not in CI; ~15 min on 2
cores for a 400-patient cohort):

    python tools/learnability_experiments.py --patients 400 --prevalence 0.6 \\
        --out build/learnability_experiments.csv

The split, patch extraction and evaluation are chapter 00's (``mh.learnability``); only the
training settings change. The whole-image rows start from the 24 px patch model (paper 04's
two-stage recipe) and fine-tune on whole breasts at 256 x 208.
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


def _row(name, scores, labels, seconds, seed) -> dict:
    est = mh.metrics.auc_ci(labels.y, scores, labels.patient_id, seed=seed)
    return {"variant": name, "auc": est.value, "low": est.low, "high": est.high, "s": seconds}


def run(patients: int, prevalence: float | None, seed: int, image_epochs: int) -> pd.DataFrame:
    options = {} if prevalence is None else {"lesion_prevalence": prevalence}
    df = mh.data.load_source("phantom", n_patients=patients, seed=seed, **options)
    lesion = df.assign(lesion=df.findings.map(len).gt(0).astype(int))
    split = mh.data.splits.train_val_test_split(
        lesion, val=0, test=0.3, stratify="lesion", seed=seed
    )
    train, test = df[split == "train"], df[split == "test"]
    patches = {}
    for px in sorted({v[0] for v in VARIANTS.values()}):
        extract = dict(size_mm=20.0, px=px, seed=seed)
        patches[px] = (
            L.lesion_patches(
                train, normals_per_image=3, crops_per_lesion=4, jitter_mm=4.0, **extract
            ),
            L.lesion_patches(test, **extract),
        )
    rows, models = [], {}
    for name, (px, settings, standardise) in VARIANTS.items():
        tr, te = (_standardised(s) if standardise else s for s in patches[px])
        start = time.perf_counter()
        models[name] = L.train_cnn(tr, seed=seed, **settings)
        scores = L.predict(models[name], te)
        rows.append(_row(name, scores, te, time.perf_counter() - start, seed))
        print(rows[-1], flush=True)
    img_train, img_test = (L.whole_images(d, size_hw=(256, 208)) for d in (train, test))
    start = time.perf_counter()
    image = L.train_cnn(
        img_train, epochs=image_epochs, lr=1e-4, batch_size=16, pool="max", init=models["24 px"]
    )
    name = f"whole images 256x208 from the 24 px model, {image_epochs} epochs"
    rows.append(_row(name, L.predict(image, img_test), img_test, time.perf_counter() - start, seed))
    print(rows[-1], flush=True)
    return pd.DataFrame(rows).assign(patients=patients, prevalence=prevalence, seed=seed)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=400)
    parser.add_argument("--prevalence", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-epochs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("build/learnability_experiments.csv"))
    args = parser.parse_args(argv)
    table = run(args.patients, args.prevalence, args.seed, args.image_epochs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(table.round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    raise SystemExit(main())
