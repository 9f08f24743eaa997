"""How fast the CorRELAX engine is, against a plain forward pass and against the authors'
per-window loop (chapter 02's benchmark; ``tests/bench_correlax.py`` runs it at full size).

Every comparison uses the same model, windows, batch size, threads and memory format, and
times the median of ``repeats`` runs after a warm-up (:func:`mammo_helpers.timing.median_seconds`).
Three questions, as issue 7 asks them:

(a) ``throughput_ratio``: masked windows per second through the engine divided by plain
    forward images per second (1.0 = masking and the streamed sums cost nothing);
(b) ``speedup_vs_loop``: seconds per window of the per-window loop (masks in batches of
    128) over the engine's, fed the same masks, with the largest |delta r| between them;
(c) ``speedup_at_error``: the time to reach a mean |delta r| <= ``target`` against an exact
    reference (``reference_masks`` masks, another seed) with the engine and fewer or adaptive
    masks, against the paper's setting (``reference_masks`` masks through the loop).

Seconds per mammogram are per-window seconds times the windows of a mammogram; the numbers
are measurements of this machine, reported and never asserted.
"""

from __future__ import annotations

import numpy as np

from mammo_helpers.timing import median_seconds, timed
from mammo_helpers.xai import relax

__all__ = [
    "error_vs_time",
    "forward_rate",
    "loop_comparison",
    "speedup_at_error",
    "throughput_ratio",
]


def forward_rate(model, windows, *, batch_size: int, repeats: int = 5) -> float:
    """Plain forward passes per second of ``model`` on full batches of ``batch_size``
    windows (the given windows repeated to fill a batch, as the engine fills its batches
    with masked copies)."""
    import torch

    from mammo_helpers import devices

    model.eval()
    reps = -(-batch_size // len(windows))
    batch = windows.repeat(reps, 1, 1, 1)[:batch_size].contiguous()
    batch = batch.to(devices.model_device(model))

    def run():  # four batches per timing, so that one batch's noise does not decide
        with torch.inference_mode():
            for _ in range(4):
                model(batch)

    return 4 * batch_size / median_seconds(run, repeats=repeats)


def throughput_ratio(model, windows, bank, *, batch_size: int, repeats: int = 5) -> dict:
    """(a): the engine's masked windows/s over plain forward images/s."""
    raw = forward_rate(model, windows, batch_size=batch_size, repeats=repeats)
    seconds = median_seconds(
        lambda: relax.correlax(model, windows, bank, batch_size=batch_size), repeats=repeats
    )
    masked = len(windows) * bank.n / seconds
    return {"forward_per_s": raw, "masked_per_s": masked, "ratio": masked / raw}


def loop_comparison(model, windows, bank, *, batch_size: int, repeats: int = 3) -> dict:
    """(b): seconds per window of the engine and of the per-window loop on the same masks,
    their ratio and the largest |delta r| (distance and label correlations)."""
    engine = median_seconds(
        lambda: relax.correlax(model, windows, bank, batch_size=batch_size), repeats=repeats
    )
    loop = median_seconds(lambda: relax.correlax_loop(model, windows, bank), repeats=repeats)
    ours = relax.correlax(model, windows, bank, batch_size=batch_size)
    r_dist, r_label = relax.correlax_loop(model, windows, bank)
    delta = max(np.abs(ours.r_dist - r_dist).max(), np.abs(ours.r_label - r_label).max())
    n = len(windows)
    return {
        "engine_s_per_window": engine / n,
        "loop_s_per_window": loop / n,
        "speedup": loop / engine,
        "max_abs_delta_r": float(delta),
    }


def _point(method: str, masks, seconds: float, n_windows: int, r, reference) -> dict:
    error = np.abs(r - reference)
    return {
        "method": method,
        "masks": masks,
        "s_per_window": seconds / n_windows,
        "mean_abs_error": float(error.mean()),
        "p95_abs_error": float(np.quantile(error, 0.95)),
    }


def error_vs_time(
    model,
    windows,
    *,
    cells: int,
    p: float,
    batch_size: int,
    reference_masks: int = 2560,
    mask_counts=(64, 128, 256, 512, 1024),
    tolerances=(0.04, 0.02, 0.01),
    min_masks: int = 64,
    seed: int = 0,
) -> list[dict]:
    """(c): one row per setting (method, masks, seconds per window, mean and 95th
    percentile |delta r_dist| against an engine run with ``reference_masks`` masks of seed
    ``seed``). The settings use other seeds, so their error includes their own noise only.
    Each setting runs once, timed (after one warm-up call of the engine)."""
    w = windows.shape[-1]
    bank = relax.MaskBank(reference_masks, cells, p, w, seed=seed)
    reference = relax.correlax(model, windows, bank, batch_size=batch_size).r_dist
    n, rows = len(windows), []
    for k, count in enumerate(mask_counts):
        other = relax.MaskBank(count, cells, p, w, seed=seed + 1 + k)
        res, t = timed(
            lambda other=other: relax.correlax(model, windows, other, batch_size=batch_size)
        )
        rows.append(_point("engine", count, t, n, res.r_dist, reference))
    adaptive_bank = relax.MaskBank(reference_masks, cells, p, w, seed=seed + 100)
    for tol in tolerances:
        opts = dict(batch_size=batch_size, tolerance=tol, min_masks=min_masks)
        res, t = timed(lambda opts=opts: relax.correlax(model, windows, adaptive_bank, **opts))
        point = _point(f"adaptive {tol:g}", float(res.n_masks.mean()), t, n, res.r_dist, reference)
        rows.append(point)
    paper_bank = relax.MaskBank(reference_masks, cells, p, w, seed=seed + 200)
    (r_paper, _), t = timed(lambda: relax.correlax_loop(model, windows, paper_bank))
    rows.append(_point("paper loop", reference_masks, t, n, r_paper, reference))
    return rows


def speedup_at_error(rows: list[dict], target: float = 0.025) -> dict:
    """The fastest engine setting whose mean |delta r| <= ``target`` and its speed-up over
    the paper's loop (None when no engine setting reaches the target)."""
    paper = next(r for r in rows if r["method"] == "paper loop")
    ok = [r for r in rows if r["method"] != "paper loop" and r["mean_abs_error"] <= target]
    if not ok:
        return {"target": target, "best": None, "speedup": None}
    best = min(ok, key=lambda r: r["s_per_window"])
    return {"target": target, "best": best, "speedup": paper["s_per_window"] / best["s_per_window"]}
