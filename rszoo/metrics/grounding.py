"""Visual-grounding metrics: Acc@IoU thresholds, mIoU, cumulative IoU, parse failures, Unique/Non-unique splits.

Conventions (see the notes on VLM-R1, Geo-R1 and RSVG-pytorch):

* **IoU** is the continuous ``inter / union`` (RSVG-pytorch ``bbox_iou``); ``iou_variant="vlmr1"`` uses VLM-R1's
  +-1 px quirk instead (:func:`rszoo.rewards.functional.vlmr1_iou`) for parity with VLM-R1 / Geo-R1 numbers.
* **Acc@t** counts ``iou > t`` when ``strict=True`` (VLM-R1 ``test_rec_r1.py``, Geo-R1 ``recal_rec_acc_unique.py``,
  RSVG-pytorch) or ``iou >= t`` when ``strict=False`` (some forks).
* **mIoU** is the per-sample mean IoU. A parse failure (``None`` or a row with NaN) has IoU 0 and *stays in the
  denominator*, as in VLM-R1 (whose ``[0, 0, 0, 0]`` fallback scores 0); this is what R1-style papers call mIoU.
* **cumIoU** is ``sum(I) / sum(U)`` over all samples with the continuous intersection and union (RSVG-pytorch); a
  failure contributes ``I = 0`` and ``U = area(GT)``.

All rates are fractions in [0, 1] (papers print percentages); they are NaN for an empty set.

Example:
    >>> out = grounding([[0, 0, 10, 10], None], [[0, 0, 10, 10], [0, 0, 5, 5]])
    >>> out["acc@0.5"], out["miou"], out["cum_iou"], out["parse_failures"]
    (0.5, 0.5, 0.8, 1)
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rszoo.registry import METRICS
from rszoo.rewards import functional as F
from rszoo.utils.io import atomic_write_bytes

__all__ = ["GroundingAccuracy", "box_ious", "grounding", "plot_grounding", "plot_grounding_grid"]  # noqa: F822 (lazy)

SPLITS = ("all", "unique", "non_unique")


def _pred_array(pred_boxes: Any, n_expected: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 4)`` float array with NaN rows for failures, and the failure mask."""
    if isinstance(pred_boxes, np.ndarray) and pred_boxes.dtype != object:
        arr = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4) if pred_boxes.size else np.zeros((0, 4))
    else:
        rows = []
        for box in pred_boxes:
            if box is None:
                rows.append([math.nan] * 4)
                continue
            try:
                values = [float(v) for v in box]
            except (TypeError, ValueError):
                values = []
            rows.append(values if len(values) == 4 else [math.nan] * 4)
        arr = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    failed = ~np.isfinite(arr).all(axis=1)
    return arr, failed


def _gt_array(gt_boxes: Any) -> np.ndarray:
    try:
        arr = np.asarray(gt_boxes, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("gt_boxes must be a sequence of [x1, y1, x2, y2] boxes") from None
    if arr.size == 0:
        return np.zeros((0, 4))
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"gt_boxes must have shape (N, 4), got {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if bad.size:
        raise ValueError(f"gt_boxes[{bad[0]}] is not finite: {arr[bad[0]].tolist()} (GT boxes must be valid)")
    return arr


def box_ious(pred_boxes: Any, gt_boxes: Any, iou_variant: str = "continuous") -> np.ndarray:
    """Per-sample IoU ``(N,)``; failures (``None``/NaN rows) score 0.

    Example:
        >>> box_ious([[0, 0, 10, 10], None], [[5, 0, 15, 10], [0, 0, 1, 1]]).round(4).tolist()
        [0.3333, 0.0]
    """
    pred, _ = _pred_array(pred_boxes)
    gt = _gt_array(gt_boxes)
    if len(pred) != len(gt):
        raise ValueError(f"{len(pred)} predictions for {len(gt)} GT boxes; they must pair up one to one")
    if iou_variant not in ("continuous", "vlmr1"):
        raise ValueError(f"iou_variant must be 'continuous' or 'vlmr1', got {iou_variant!r}")
    if not len(gt):
        return np.zeros(0)
    fn = F.vlmr1_iou if iou_variant == "vlmr1" else F.iou
    return np.asarray(fn(pred, gt), dtype=np.float64).reshape(-1)


def _inter_union(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Continuous intersection and union; failed/degenerate predictions count as empty boxes."""
    p = np.where(np.isfinite(pred).all(axis=1, keepdims=True), pred, 0.0)
    pw, ph = np.maximum(p[:, 2] - p[:, 0], 0), np.maximum(p[:, 3] - p[:, 1], 0)
    gw, gh = np.maximum(gt[:, 2] - gt[:, 0], 0), np.maximum(gt[:, 3] - gt[:, 1], 0)
    iw = np.maximum(np.minimum(p[:, 2], gt[:, 2]) - np.maximum(p[:, 0], gt[:, 0]), 0)
    ih = np.maximum(np.minimum(p[:, 3], gt[:, 3]) - np.maximum(p[:, 1], gt[:, 1]), 0)
    inter = np.where((pw > 0) & (ph > 0), iw * ih, 0.0)
    return inter, pw * ph + gw * gh - inter


def _threshold_key(t: float) -> str:
    return f"acc@{t:g}"


def _summarise(
    ious: np.ndarray,
    inter: np.ndarray,
    union: np.ndarray,
    failed: np.ndarray,
    thresholds: Sequence[float],
    strict: bool,
) -> dict[str, float]:
    n = len(ious)
    out: dict[str, float] = {"n": n, "parse_failures": int(failed.sum())}
    for t in thresholds:
        hits = ious > t if strict else ious >= t
        out[_threshold_key(t)] = float(hits.mean()) if n else math.nan
    out["miou"] = float(ious.mean()) if n else math.nan
    total_union = float(union.sum())
    out["cum_iou"] = float(inter.sum()) / total_union if n and total_union > 0 else math.nan
    return out


@METRICS.register("grounding", task="visual_grounding", higher_is_better=True)
def grounding(
    pred_boxes: Any,
    gt_boxes: Any,
    thresholds: Sequence[float] = (0.5, 0.7),
    strict: bool = True,
    unique: Sequence[bool | None] | None = None,
    iou_variant: str = "continuous",
) -> dict[str, float]:
    """Acc@thresholds, mIoU, cumIoU and parse-failure count for paired predicted and GT boxes.

    Args:
        pred_boxes: ``N`` predicted boxes ``[x1, y1, x2, y2]`` (original pixels); ``None`` or a NaN row is a parse
            failure.
        gt_boxes: ``N`` GT boxes (finite).
        thresholds: IoU thresholds for accuracy.
        strict: ``True`` counts ``iou > t`` (VLM-R1, Geo-R1, RSVG-pytorch), ``False`` counts ``iou >= t``.
        unique: optional per-sample "target is the only one of its category" flags (VRSBench ``unique``); adds
            ``unique/...`` and ``non_unique/...`` keys. ``None`` entries belong to neither split (Geo-R1 skips them).
        iou_variant: ``"continuous"`` or ``"vlmr1"`` (IoU used for Acc and mIoU; cumIoU is always continuous).

    Returns:
        ``{"n", "parse_failures", "acc@0.5", "acc@0.7", "miou", "cum_iou"}`` for all samples, plus the same keys
        prefixed ``unique/`` and ``non_unique/`` when ``unique`` is given.
    """
    pred, failed = _pred_array(pred_boxes)
    gt = _gt_array(gt_boxes)
    if len(pred) != len(gt):
        raise ValueError(f"{len(pred)} predictions for {len(gt)} GT boxes; they must pair up one to one")
    ious = box_ious(pred, gt, iou_variant=iou_variant)
    inter, union = _inter_union(pred, gt)
    out = _summarise(ious, inter, union, failed, thresholds, strict)
    if unique is not None:
        flags = list(unique)
        if len(flags) != len(gt):
            raise ValueError(f"unique has {len(flags)} flags for {len(gt)} samples")
        for prefix, wanted in (("unique", True), ("non_unique", False)):
            mask = np.array([f is not None and bool(f) == wanted for f in flags], dtype=bool)
            part = _summarise(ious[mask], inter[mask], union[mask], failed[mask], thresholds, strict)
            out.update({f"{prefix}/{k}": v for k, v in part.items()})
    return out


# -- torchmetrics -----------------------------------------------------------------------------------------------
_GROUNDING_ACCURACY: type | None = None


def _build_grounding_accuracy() -> type:
    import torch
    from torchmetrics import Metric

    class GroundingAccuracy(Metric):
        """Streaming :func:`grounding` for Lightning: ``update(preds, targets, unique=None)``, ``compute() -> dict``.

        All states are sums (``dist_reduce_fx="sum"``), so distributed sync is exact: per split (all, unique,
        non-unique) the number of samples, failures, hits per threshold, the IoU sum and the continuous intersection
        and union sums. ``preds`` is an ``(N, 4)`` tensor with NaN rows for parse failures (or a list of boxes/None);
        ``targets`` an ``(N, 4)`` tensor; ``unique`` an optional ``(N,)`` bool tensor/list.

        Args:
            thresholds, strict, iou_variant: as in :func:`grounding`.
            track_unique: always report the ``unique/`` and ``non_unique/`` keys (NaN while empty).
        """

        is_differentiable = False
        higher_is_better = True
        full_state_update = False

        def __init__(
            self,
            thresholds: Sequence[float] = (0.5, 0.7),
            strict: bool = True,
            iou_variant: str = "continuous",
            track_unique: bool = False,
            **kwargs: Any,
        ) -> None:
            super().__init__(**kwargs)
            if iou_variant not in ("continuous", "vlmr1"):
                raise ValueError(f"iou_variant must be 'continuous' or 'vlmr1', got {iou_variant!r}")
            self.thresholds = tuple(float(t) for t in thresholds)
            self.strict = bool(strict)
            self.iou_variant = iou_variant
            self.track_unique = bool(track_unique)
            splits, nt = len(SPLITS), len(self.thresholds)
            self.add_state("count", default=torch.zeros(splits, dtype=torch.long), dist_reduce_fx="sum")
            self.add_state("failures", default=torch.zeros(splits, dtype=torch.long), dist_reduce_fx="sum")
            self.add_state("hits", default=torch.zeros(splits, nt, dtype=torch.long), dist_reduce_fx="sum")
            self.add_state("iou_sum", default=torch.zeros(splits, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(
                "inter_sum", default=torch.zeros(splits, dtype=torch.float64), dist_reduce_fx="sum"
            )
            self.add_state(
                "union_sum", default=torch.zeros(splits, dtype=torch.float64), dist_reduce_fx="sum"
            )

        def update(self, preds: Any, targets: Any, unique: Any = None) -> None:
            if isinstance(preds, torch.Tensor):
                pred = preds.detach().to(device=self.count.device, dtype=torch.float64).reshape(-1, 4)
            else:
                pred = torch.as_tensor(_pred_array(preds)[0], device=self.count.device)
            gt = torch.as_tensor(targets, dtype=torch.float64, device=self.count.device).reshape(-1, 4)
            if pred.shape[0] != gt.shape[0]:
                raise ValueError(f"{pred.shape[0]} predictions for {gt.shape[0]} targets; they must pair up")
            if not torch.isfinite(gt).all():
                raise ValueError("targets contain non-finite boxes (GT boxes must be valid)")
            failed = ~torch.isfinite(pred).all(dim=1)
            fn = F.vlmr1_iou if self.iou_variant == "vlmr1" else F.iou
            ious = fn(pred, gt).reshape(-1)
            safe = torch.where(failed[:, None], torch.zeros_like(pred), pred)
            pw, ph = (safe[:, 2] - safe[:, 0]).clamp(min=0), (safe[:, 3] - safe[:, 1]).clamp(min=0)
            gw, gh = (gt[:, 2] - gt[:, 0]).clamp(min=0), (gt[:, 3] - gt[:, 1]).clamp(min=0)
            iw = (torch.minimum(safe[:, 2], gt[:, 2]) - torch.maximum(safe[:, 0], gt[:, 0])).clamp(min=0)
            ih = (torch.minimum(safe[:, 3], gt[:, 3]) - torch.maximum(safe[:, 1], gt[:, 1])).clamp(min=0)
            inter = torch.where((pw > 0) & (ph > 0), iw * ih, torch.zeros_like(iw))
            union = pw * ph + gw * gh - inter
            thresholds = torch.tensor(self.thresholds, dtype=torch.float64, device=pred.device)
            hits = ious[:, None] > thresholds if self.strict else ious[:, None] >= thresholds
            masks = [torch.ones_like(failed)]
            if unique is not None:
                flags = torch.as_tensor(unique, dtype=torch.bool, device=pred.device).reshape(-1)
                if flags.shape[0] != gt.shape[0]:
                    raise ValueError(f"unique has {flags.shape[0]} flags for {gt.shape[0]} samples")
                masks += [flags, ~flags]
            for split, mask in enumerate(masks):
                self.count[split] += mask.sum()
                self.failures[split] += (failed & mask).sum()
                self.hits[split] += hits[mask].sum(dim=0)
                self.iou_sum[split] += ious[mask].sum()
                self.inter_sum[split] += inter[mask].sum()
                self.union_sum[split] += union[mask].sum()

        def compute(self) -> dict[str, torch.Tensor]:
            out: dict[str, torch.Tensor] = {}
            for split, prefix in enumerate(("", "unique/", "non_unique/")):
                if split and not self.track_unique and self.count[split] == 0:
                    continue
                n = self.count[split].to(torch.float64)
                nan = torch.tensor(math.nan, dtype=torch.float64, device=n.device)
                out[f"{prefix}n"] = self.count[split]
                out[f"{prefix}parse_failures"] = self.failures[split]
                for k, t in enumerate(self.thresholds):
                    out[f"{prefix}{_threshold_key(t)}"] = self.hits[split, k] / n if n > 0 else nan
                out[f"{prefix}miou"] = self.iou_sum[split] / n if n > 0 else nan
                union = self.union_sum[split]
                out[f"{prefix}cum_iou"] = self.inter_sum[split] / union if union > 0 else nan
            return out

    # picklable (Lightning checkpoints, DDP spawn): resolve as rszoo.metrics.grounding.GroundingAccuracy
    GroundingAccuracy.__module__, GroundingAccuracy.__qualname__ = __name__, "GroundingAccuracy"
    return GroundingAccuracy


def __getattr__(name: str) -> Any:
    # GroundingAccuracy subclasses torchmetrics.Metric; building it on first use keeps this module torch-free to import.
    global _GROUNDING_ACCURACY
    if name == "GroundingAccuracy":
        if _GROUNDING_ACCURACY is None:
            _GROUNDING_ACCURACY = _build_grounding_accuracy()
        return _GROUNDING_ACCURACY
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- plots -----------------------------------------------------------------------------------------------------
def _load_image(image: Any) -> np.ndarray:
    from PIL import Image

    if isinstance(image, str | Path):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"plot_grounding: image not found: {path}")
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise ValueError(f"plot_grounding: image must be HxW or HxWxC, got shape {arr.shape}")
    return arr


def _draw_panel(
    ax: Any, image: Any, pred_box: Any, gt_box: Any, expression: str, title: str | None = None
) -> None:
    from matplotlib.patches import Rectangle

    arr = _load_image(image)
    ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None)
    ax.set_axis_off()
    gt = None
    if gt_box is not None:
        gt = [float(v) for v in gt_box]
        if len(gt) != 4:
            raise ValueError(f"gt_box must be [x1, y1, x2, y2], got {gt_box!r}")
        gx1, gy1, gx2, gy2 = gt
        ax.add_patch(
            Rectangle((gx1, gy1), gx2 - gx1, gy2 - gy1, fill=False, edgecolor="lime", linewidth=2, label="GT")
        )
    pred = _pred_array([pred_box])[0][0] if pred_box is not None else None
    if pred is not None and np.isfinite(pred).all():
        px1, py1, px2, py2 = pred.tolist()
        ax.add_patch(
            Rectangle(
                (px1, py1), px2 - px1, py2 - py1, fill=False, edgecolor="red", linewidth=2, label="pred"
            )
        )
        note = f"IoU {float(F.iou(pred, gt)):.2f}" if gt is not None else "prediction"
    else:
        note = "no parseable box"
    header = f"{title}\n" if title else ""
    ax.set_title(header + textwrap.fill(expression, 40) + f"\n({note})", fontsize=8)
    if ax.patches:
        ax.legend(loc="lower right", fontsize=6, framealpha=0.6)


def _save_figure(fig: Any, path: str | Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def plot_grounding(
    image: Any, pred_box: Any, gt_box: Sequence[float] | None, expression: str, path: str | Path
) -> Path:
    """Draw the predicted box (red) and the GT box (green) on the image, titled with the expression; save a PNG.

    Args:
        image: a PIL image, an ``HxW[xC]`` array, or an image path.
        pred_box: ``[x1, y1, x2, y2]`` in the image's pixels, or ``None`` for a parse failure.
        gt_box: ``[x1, y1, x2, y2]``, or ``None`` to draw the prediction alone (inference).
        expression: the referring expression.
        path: output PNG path (written atomically).

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 4.4))
    FigureCanvasAgg(fig)  # no pyplot: the user's backend and global figure state are left alone
    _draw_panel(fig.add_subplot(1, 1, 1), image, pred_box, gt_box, expression)
    return _save_figure(fig, path)


def plot_grounding_grid(samples: Sequence[Mapping[str, Any]], path: str | Path, ncols: int = 4) -> Path:
    """A grid of :func:`plot_grounding` panels.

    Args:
        samples: mappings with ``image``, ``pred_box`` (or ``None``), ``gt_box`` (or ``None``), ``expression`` and
            optionally ``title``.
        path: output PNG path.
        ncols: panels per row.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not samples:
        raise ValueError("plot_grounding_grid: no samples to draw")
    for k, sample in enumerate(samples):
        missing = [key for key in ("image", "pred_box", "gt_box", "expression") if key not in sample]
        if missing:
            raise ValueError(f"plot_grounding_grid: sample {k} misses {missing}")
    ncols = max(1, min(ncols, len(samples)))
    nrows = math.ceil(len(samples) / ncols)
    fig = Figure(figsize=(3.2 * ncols, 3.6 * nrows))
    FigureCanvasAgg(fig)
    for k, sample in enumerate(samples):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        _draw_panel(
            ax,
            sample["image"],
            sample["pred_box"],
            sample["gt_box"],
            str(sample["expression"]),
            sample.get("title"),
        )
    fig.tight_layout()
    return _save_figure(fig, path)
