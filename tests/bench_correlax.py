"""Benchmark of the CorRELAX engine (chapter 02) against a plain forward pass and against the
authors' per-window loop, on windows of phantom-like images.

Not part of the test-suite (the name does not start with ``test_``); run it on demand::

    python tests/bench_correlax.py                       # small CNN, 64 px, 256 masks
    python tests/bench_correlax.py --backbone efficientnet_v2_s --window 256 --masks 2560
    python tests/bench_correlax.py --json results/bench_correlax.json

The model has random weights (speed does not depend on training; the errors of (c) do a
little, which is why chapter 02 also runs (a)-(c) on its trained classifier). Threads,
batch size and memory format are the same for every contender; each time is the median of
``--repeats`` runs after a warm-up. Prints the three numbers of issue 7's benchmark:
(a) masked windows/s / forward images/s, (b) the speed-up over the per-window loop on the
same masks with the largest |delta r|, (c) the speed-up in reaching a mean |delta r| <=
0.025 against a 2,560-mask reference.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import mammo_helpers as mh


def _windows(n: int, window: int, seed: int) -> torch.Tensor:
    """Smooth random 'tissue' windows with a bright blob (three channels)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        tissue = gaussian_filter(rng.random((window, window)), window / 16)
        y, x = rng.integers(window // 4, 3 * window // 4, 2)
        yy, xx = np.mgrid[:window, :window]
        blob = np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * (window / 10) ** 2))
        img = (tissue - tissue.min()) / np.ptp(tissue) * 0.6 + 0.4 * blob
        out.append(np.repeat(img[None], 3, axis=0))
    return torch.from_numpy(np.stack(out).astype(np.float32))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="small_cnn")
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--windows", type=int, default=32)
    parser.add_argument("--masks", type=int, default=256)
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--reference-masks", type=int, default=2560)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    labels = mh.data.crops.crop_labels()
    model = mh.models.classifiers.build_classifier(args.backbone, labels, seed=args.seed).eval()
    windows = _windows(args.windows, args.window, args.seed)
    bank = mh.xai.relax.MaskBank(args.masks, args.cells, 0.5, args.window, seed=args.seed)
    bench = mh.xai.benchmark
    a = bench.throughput_ratio(
        model, windows, bank, batch_size=args.batch_size, repeats=args.repeats
    )
    b = bench.loop_comparison(model, windows, bank, batch_size=args.batch_size, repeats=3)
    rows = bench.error_vs_time(
        model, windows, cells=args.cells, p=0.5, batch_size=args.batch_size,
        reference_masks=args.reference_masks, seed=args.seed,
    )  # fmt: skip
    c = bench.speedup_at_error(rows, target=0.025)
    print(f"torch threads {torch.get_num_threads()}, backbone {args.backbone}, {args.window} px")
    print(
        f"(a) masked/forward: {a['masked_per_s']:.0f} / {a['forward_per_s']:.0f} = {a['ratio']:.2f}"
    )
    print(f"(b) speed-up over the loop: {b['speedup']:.2f} x, max |dr| {b['max_abs_delta_r']:.1e}")
    for row in rows:
        print(
            f"    {row['method']:>14} {row['masks']:>7.0f} masks {row['s_per_window'] * 1e3:8.2f}"
            f" ms/window  mean |dr| {row['mean_abs_error']:.4f}"
        )
    speedup = "not reached" if c["speedup"] is None else f"{c['speedup']:.1f} x"
    print(f"(c) speed-up at mean |dr| <= 0.025: {speedup}")
    result = {"settings": vars(args) | {"json": None}, "a": a, "b": b, "c": c, "rows": rows}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


if __name__ == "__main__":
    main()
