"""R_pos: rszoo's separable O(W + H) form vs the naive per-pixel form (eq. 2-4 evaluated on every pixel).

The naive alternative is the fastest straightforward way to write the paper's definition in NumPy: a full meshgrid of
pixel centres, the 2-D kernel on it and its mean (O(W * H)). Both use the same pixel convention (pixel i covers
[i, i + 1) and is sampled at i + 0.5), so they must agree to rounding; the benchmark checks it and reports the speed
ratio over a sweep of box sizes (target: >= 100x at 1000 x 1000).

Run: ``.venv/bin/python benchmarks/rsground_r1/bench_rpos.py`` -> ``benchmarks/results/rpos_speed.json`` + ``.png``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import save_result, timeit

from rszoo.rewards.functional import positional

SIDES = (10, 30, 100, 300, 1000, 2000)
ALPHA = 2.5


def naive_rpos(pred: list[float], gt: list[float], alpha: float = ALPHA) -> float:
    """Eq. 2-4 on the discrete pixel grid, pixel by pixel (vectorised with a meshgrid)."""
    x1, y1, x2, y2 = pred
    xs = np.arange(math.floor(x1), math.ceil(x2)) + 0.5
    ys = np.arange(math.floor(y1), math.ceil(y2)) + 0.5
    cx, cy = (gt[0] + gt[2]) / 2, (gt[1] + gt[3]) / 2
    sx, sy = alpha * (gt[2] - gt[0]) / 2, alpha * (gt[3] - gt[1]) / 2
    grid_x, grid_y = np.meshgrid(xs, ys, indexing="xy")
    kernel = np.exp(-((grid_x - cx) ** 2) / (2 * sx * sx) - ((grid_y - cy) ** 2) / (2 * sy * sy))
    return float(kernel.mean())  # the kernel's maximum over the plane is exp(0) = 1


def case(side: int) -> tuple[list[float], list[float]]:
    """A square GT of the given side and a prediction of the same size, offset by a quarter side (fractional)."""
    gt = [100.0, 100.0, 100.0 + side, 100.0 + side]
    shift = side / 4 + 0.37
    return [gt[0] + shift, gt[1] - shift / 2, gt[2] + shift, gt[3] - shift / 2], gt


def main() -> None:
    rows = []
    for side in SIDES:
        pred, gt = case(side)
        ours_value, naive_value = positional(pred, gt, alpha=ALPHA), naive_rpos(pred, gt)
        repeat = 20 if side <= 300 else 5
        ours_t = timeit(lambda p=pred, g=gt: positional(p, g, alpha=ALPHA), repeat=repeat * 10)
        naive_t = timeit(lambda p=pred, g=gt: naive_rpos(p, g), repeat=repeat)
        rows.append(
            {
                "side_px": side,
                "pixels": (math.ceil(pred[2]) - math.floor(pred[0]))
                * (math.ceil(pred[3]) - math.floor(pred[1])),
                "rpos_ours": ours_value,
                "rpos_naive": naive_value,
                "abs_diff": abs(ours_value - naive_value),
                "ours_median_s": ours_t["median_s"],
                "naive_median_s": naive_t["median_s"],
                "speedup": naive_t["median_s"] / ours_t["median_s"],
            }
        )
        print(f"side {side:5d}: ours {ours_t['median_s'] * 1e6:9.1f} us  naive {naive_t['median_s'] * 1e6:11.1f} us  "
              f"x{rows[-1]['speedup']:8.1f}  |diff| {rows[-1]['abs_diff']:.2e}")  # fmt: skip
    at_1000 = next(r for r in rows if r["side_px"] == 1000)
    max_diff = max(r["abs_diff"] for r in rows)
    if max_diff > 1e-9:
        raise SystemExit(f"ours and naive disagree: max |diff| = {max_diff:.3e}")

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    sides = [r["side_px"] for r in rows]
    ax.loglog(
        sides, [r["naive_median_s"] * 1e3 for r in rows], "o-", label="naive per-pixel (meshgrid), O(W H)"
    )
    ax.loglog(sides, [r["ours_median_s"] * 1e3 for r in rows], "s-", label="rszoo separable, O(W + H)")
    for r in rows:
        ax.annotate(f"x{r['speedup']:.0f}", (r["side_px"], r["naive_median_s"] * 1e3), textcoords="offset points",
                    xytext=(-10, 6), fontsize=8)  # fmt: skip
    ax.set_xlabel("box side (px), square box")
    ax.set_ylabel("time per R_pos evaluation (ms, median)")
    ax.set_title(f"R_pos: same values (max |diff| {max_diff:.1e}); x{at_1000['speedup']:.0f} at 1000 x 1000")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    save_result(
        "rpos_speed",
        {
            "description": "R_pos separable (rszoo.rewards.functional.positional) vs naive per-pixel meshgrid",
            "alpha": ALPHA,
            "alternative": "naive_rpos: numpy meshgrid of pixel centres, 2-D Gaussian, mean",
            "speedup_at_1000px": at_1000["speedup"],
            "target_speedup_at_1000px": 100.0,
            "meets_target": at_1000["speedup"] >= 100.0,
            "max_abs_diff": max_diff,
            "rows": rows,
        },
        figure=fig,
    )


if __name__ == "__main__":
    main()
