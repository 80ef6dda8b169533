"""Box rewards as pure functions: IoU, GIoU, DIoU, centre distance, RSGround-R1's positional reward and weight.

Boxes are ``[x1, y1, x2, y2]`` in pixels. The box-pair functions (:func:`iou`, :func:`giou`, :func:`diou`,
:func:`center_distance`, :func:`vlmr1_iou`) broadcast over leading dimensions: give a ``(4,)`` pair to get a Python
float, or ``(N, 4)`` arrays to get an ``(N,)`` array. They accept Python sequences, NumPy arrays or torch tensors
(torch in -> torch out, on the same device, differentiable where the formula is). Rows with a non-finite coordinate
(e.g. ``NaN`` for a parse failure) score 0.

:func:`positional` is R_pos (RSGround-R1 eq. 2-4), exact on the discrete pixel grid in O(W + H);
:func:`positional_continuous` is its closed-form (erf) continuous counterpart; :func:`spatial_consistency_weight` is
the rollout-group weight w (eq. 6-8).

Example:
    >>> iou([0, 0, 10, 10], [5, 0, 15, 10])
    0.3333333333333333
    >>> round(positional([0, 0, 100, 50], [0, 0, 100, 50]), 4)  # a perfect box
    0.9486
    >>> round(spatial_consistency_weight([0.5] * 8), 4)
    1.8221
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "center_distance",
    "diou",
    "giou",
    "iou",
    "positional",
    "positional_continuous",
    "spatial_consistency_weight",
    "vlmr1_iou",
]

BoxLike = Any  # a (4,) or (N, 4) sequence, numpy array or torch tensor


# -- a tiny numpy/torch shim: the same formula serves eval (numpy) and training (torch) -----------------------------
def _is_torch(*values: Any) -> bool:
    return any(type(v).__module__.startswith("torch") for v in values)


class _Ops:
    """The handful of array operations the box formulas need, for numpy or torch."""

    def __init__(self, torch_mode: bool, reference: Any = None) -> None:
        self.torch_mode = torch_mode
        if torch_mode:
            import torch

            self.lib = torch
            self.device = reference.device if reference is not None and hasattr(reference, "device") else None
        else:
            self.lib = np
            self.device = None

    def asarray(self, x: Any) -> Any:
        if self.torch_mode:
            t = self.lib.as_tensor(x, device=self.device)
            return t if t.is_floating_point() else t.to(self.lib.float64)
        return np.asarray(x, dtype=np.float64)

    def clamp_min(self, x: Any, low: float) -> Any:
        return self.lib.clamp(x, min=low) if self.torch_mode else np.maximum(x, low)

    def maximum(self, a: Any, b: Any) -> Any:
        return self.lib.maximum(a, b)

    def minimum(self, a: Any, b: Any) -> Any:
        return self.lib.minimum(a, b)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        if self.torch_mode:
            return self.lib.where(cond, a, self.lib.as_tensor(b, dtype=a.dtype, device=a.device))
        return np.where(cond, a, b)

    def finite_rows(self, boxes: Any) -> Any:
        return self.lib.isfinite(boxes).all(-1) if self.torch_mode else np.isfinite(boxes).all(-1)

    def replace_invalid(self, boxes: Any, valid: Any) -> Any:
        """Swap non-finite rows for a unit box so later arithmetic stays finite (those rows score 0 at the end)."""
        unit = self.asarray([0.0, 0.0, 1.0, 1.0])
        if self.torch_mode:
            unit = unit.to(boxes.dtype)
        return self.where(valid[..., None], boxes, unit)


def _prepare(pred: BoxLike, gt: BoxLike) -> tuple[_Ops, Any, Any]:
    ops = _Ops(_is_torch(pred, gt), reference=pred if _is_torch(pred) else gt)
    p, g = ops.asarray(pred), ops.asarray(gt)
    if p.shape[-1] != 4 or g.shape[-1] != 4:
        raise ValueError(
            f"boxes must have 4 values [x1, y1, x2, y2] in the last axis; got {tuple(p.shape)} and {tuple(g.shape)}"
        )
    if ops.torch_mode and p.dtype != g.dtype:
        g = g.to(p.dtype)
    return ops, p, g


def _finish(ops: _Ops, value: Any, valid: Any, scalar: bool) -> Any:
    value = ops.where(valid, value, 0.0)
    if scalar and not ops.torch_mode:
        return float(value)
    return value


def _geometry(ops: _Ops, p: Any, g: Any) -> dict[str, Any]:
    """Intersection, union and the validity mask shared by IoU/GIoU/DIoU (invalid rows are made harmless)."""
    valid = ops.finite_rows(p) & ops.finite_rows(g)
    p, g = ops.replace_invalid(p, valid), ops.replace_invalid(g, valid)
    pw, ph = ops.clamp_min(p[..., 2] - p[..., 0], 0.0), ops.clamp_min(p[..., 3] - p[..., 1], 0.0)
    gw, gh = ops.clamp_min(g[..., 2] - g[..., 0], 0.0), ops.clamp_min(g[..., 3] - g[..., 1], 0.0)
    iw = ops.clamp_min(ops.minimum(p[..., 2], g[..., 2]) - ops.maximum(p[..., 0], g[..., 0]), 0.0)
    ih = ops.clamp_min(ops.minimum(p[..., 3], g[..., 3]) - ops.maximum(p[..., 1], g[..., 1]), 0.0)
    inter = iw * ih
    union = pw * ph + gw * gh - inter
    # a zero-area (or inverted) prediction cannot score, even if the GT is degenerate too
    valid = valid & (pw > 0) & (ph > 0) & (union > 0)
    safe_union = ops.where(union > 0, union, 1.0)
    return {"p": p, "g": g, "inter": inter, "union": union, "safe_union": safe_union, "valid": valid}


def iou(pred: BoxLike, gt: BoxLike) -> Any:
    """Continuous intersection over union, ``inter / union`` with areas ``(x2 - x1) * (y2 - y1)``.

    This is the RSVG-pytorch / TransVG ``bbox_iou`` convention (no +1 pixel terms). Zero-area or inverted predicted
    boxes, a zero union and non-finite rows give 0.

    Example:
        >>> iou([0, 0, 10, 10], [0, 0, 10, 10]), iou([0, 0, 10, 10], [10, 0, 20, 10])
        (1.0, 0.0)
    """
    ops, p, g = _prepare(pred, gt)
    geo = _geometry(ops, p, g)
    return _finish(ops, geo["inter"] / geo["safe_union"], geo["valid"], p.ndim == 1 and g.ndim == 1)


def _enclosing(ops: _Ops, p: Any, g: Any) -> tuple[Any, Any]:
    cw = ops.maximum(p[..., 2], g[..., 2]) - ops.minimum(p[..., 0], g[..., 0])
    ch = ops.maximum(p[..., 3], g[..., 3]) - ops.minimum(p[..., 1], g[..., 1])
    return cw, ch


def giou(pred: BoxLike, gt: BoxLike) -> Any:
    """Generalised IoU (Rezatofighi et al. 2019): ``IoU - (C - U) / C`` with C the enclosing box area; in [-1, 1].

    Invalid rows (zero-area/inverted prediction, non-finite values) give 0, *not* -1: as a reward use
    :class:`rszoo.rewards.grounding.GIoUReward`, which rescales to [0, 1] so a failure is the worst score.

    Example:
        >>> giou([0, 0, 10, 10], [20, 0, 30, 10])  # 0 - (300 - 200) / 300
        -0.3333333333333333
    """
    ops, p, g = _prepare(pred, gt)
    geo = _geometry(ops, p, g)
    cw, ch = _enclosing(ops, geo["p"], geo["g"])
    c_area = cw * ch
    safe_c = ops.where(c_area > 0, c_area, 1.0)
    value = geo["inter"] / geo["safe_union"] - (c_area - geo["union"]) / safe_c
    return _finish(ops, value, geo["valid"], p.ndim == 1 and g.ndim == 1)


def diou(pred: BoxLike, gt: BoxLike) -> Any:
    """Distance IoU (Zheng et al. 2020): ``IoU - rho^2 / c^2``, rho the centre distance, c the enclosing diagonal.

    In (-1, 1]; invalid rows give 0 (see :func:`giou` on rescaling for rewards).

    Example:
        >>> diou([0, 0, 10, 10], [20, 0, 30, 10])  # 0 - 20^2 / (30^2 + 10^2)
        -0.4
    """
    ops, p, g = _prepare(pred, gt)
    geo = _geometry(ops, p, g)
    gp, gg = geo["p"], geo["g"]
    cw, ch = _enclosing(ops, gp, gg)
    c2 = cw * cw + ch * ch
    dx = (gp[..., 0] + gp[..., 2] - gg[..., 0] - gg[..., 2]) / 2
    dy = (gp[..., 1] + gp[..., 3] - gg[..., 1] - gg[..., 3]) / 2
    value = geo["inter"] / geo["safe_union"] - (dx * dx + dy * dy) / ops.where(c2 > 0, c2, 1.0)
    return _finish(ops, value, geo["valid"], p.ndim == 1 and g.ndim == 1)


def center_distance(pred: BoxLike, gt: BoxLike, image_size: Sequence[float] | None = None) -> Any:
    """Centre-distance reward in [0, 1]: ``1 - d / D``.

    ``d`` is the Euclidean distance between the box centres. The normaliser ``D`` is the image diagonal
    ``sqrt(W^2 + H^2)`` when ``image_size=(W, H)`` is given (so the reward is comparable across boxes of one image
    and reaches 0 only at opposite corners), else the diagonal of the smallest box enclosing both boxes (the DIoU
    normaliser, scale-free but saturating: two far-apart tiny boxes still score about 0).
    Zero-area/inverted predictions and non-finite rows give 0; the result is clipped at 0.

    Example:
        >>> center_distance([0, 0, 10, 10], [30, 40, 40, 50], image_size=(100, 100))  # d = 50, D = 141.42
        0.6464466094067263
    """
    ops, p, g = _prepare(pred, gt)
    geo = _geometry(ops, p, g)
    gp, gg = geo["p"], geo["g"]
    dx = (gp[..., 0] + gp[..., 2] - gg[..., 0] - gg[..., 2]) / 2
    dy = (gp[..., 1] + gp[..., 3] - gg[..., 1] - gg[..., 3]) / 2
    dist = (dx * dx + dy * dy) ** 0.5
    if image_size is not None:
        w, h = float(image_size[0]), float(image_size[1])
        if not (w > 0 and h > 0):
            raise ValueError(f"center_distance: image_size must be positive (W, H), got {image_size!r}")
        norm = math.hypot(w, h)
        value = ops.clamp_min(1.0 - dist / norm, 0.0)
    else:
        cw, ch = _enclosing(ops, gp, gg)
        diag = (cw * cw + ch * ch) ** 0.5
        value = ops.clamp_min(1.0 - dist / ops.where(diag > 0, diag, 1.0), 0.0)
    return _finish(ops, value, geo["valid"], p.ndim == 1 and g.ndim == 1)


def vlmr1_iou(pred: BoxLike, gt: BoxLike) -> Any:
    """VLM-R1's IoU (``Qwen2VLModule.iou_reward``), quirks included.

    The intersection is ``min(x2) - max(x1)`` (and the same in y), counted only when ``max(x1) < min(x2) - 1`` and
    ``max(y1) < min(y2) - 1``: an overlap of 1 px or less in either axis gives 0. The union uses the raw (unclamped)
    areas. VLM-R1 divides without a guard and its ``except Exception`` turns the ``ZeroDivisionError`` of a zero union
    into reward 0; we return 0 there too. Non-finite rows give 0 (VLM-R1 cannot produce them: it parses integers).

    Example:
        >>> vlmr1_iou([0, 0, 10, 10], [9, 0, 19, 10]), iou([0, 0, 10, 10], [9, 0, 19, 10])
        (0.0, 0.05263157894736842)
    """
    ops, p, g = _prepare(pred, gt)
    valid = ops.finite_rows(p) & ops.finite_rows(g)
    p, g = ops.replace_invalid(p, valid), ops.replace_invalid(g, valid)
    ix1, iy1 = ops.maximum(p[..., 0], g[..., 0]), ops.maximum(p[..., 1], g[..., 1])
    ix2, iy2 = ops.minimum(p[..., 2] - 1, g[..., 2] - 1), ops.minimum(p[..., 3] - 1, g[..., 3] - 1)
    overlaps = (ix1 < ix2) & (iy1 < iy2)
    inter = ops.where(overlaps, (ix2 - ix1 + 1) * (iy2 - iy1 + 1), 0.0)
    union = (
        (p[..., 2] - p[..., 0]) * (p[..., 3] - p[..., 1])
        + (g[..., 2] - g[..., 0]) * (g[..., 3] - g[..., 1])
        - inter
    )
    nonzero = union != 0
    value = inter / ops.where(nonzero, union, 1.0)
    return _finish(ops, value, valid & nonzero, p.ndim == 1 and g.ndim == 1)


# -- R_pos ----------------------------------------------------------------------------------------------------------
def _gt_center_sigma(gt: Sequence[float], alpha: float) -> tuple[float, float, float, float]:
    gx1, gy1, gx2, gy2 = (float(v) for v in gt)
    # A zero-size GT side is treated as 1 px so the kernel stays a proper Gaussian (loaders drop such GT anyway).
    width, height = max(gx2 - gx1, 1.0), max(gy2 - gy1, 1.0)
    return (gx1 + gx2) / 2, (gy1 + gy2) / 2, alpha * width / 2, alpha * height / 2


def _axis_mean(first: int, stop: int, center: float, sigma: float) -> float:
    """Mean of exp(-(i + 0.5 - c)^2 / (2 sigma^2)) over pixel indices i in [first, stop)."""
    n = stop - first
    # in-place ufuncs and add.reduce: this runs once per axis per completion, so NumPy call overhead matters
    values = np.arange(n, dtype=np.float64)
    values += first + 0.5 - center
    values *= values
    values *= -0.5 / (sigma * sigma)
    np.exp(values, out=values)
    return float(np.add.reduce(values)) / n


def _is_flat_box(box: Any) -> bool:
    return isinstance(box, list | tuple) and len(box) == 4 and all(isinstance(v, int | float) for v in box)


def _positional_one(
    pred: Sequence[float], gt: Sequence[float], alpha: float, image_size: Sequence[int] | None
) -> float:
    values = [float(v) for v in pred]
    if len(values) != 4 or len(gt) != 4:
        raise ValueError(f"positional: boxes are [x1, y1, x2, y2]; got pred={pred!r}, gt={gt!r}")
    if not all(math.isfinite(v) for v in values) or not all(math.isfinite(float(v)) for v in gt):
        return 0.0
    x1, y1, x2, y2 = values
    if not (x2 > x1 and y2 > y1):
        return 0.0
    cx, cy, sx, sy = _gt_center_sigma(gt, alpha)
    first_x, stop_x = math.floor(x1), math.ceil(x2)
    first_y, stop_y = math.floor(y1), math.ceil(y2)
    if image_size is not None:
        img_w, img_h = int(image_size[0]), int(image_size[1])
        first_x, stop_x = max(first_x, 0), min(stop_x, img_w)
        first_y, stop_y = max(first_y, 0), min(stop_y, img_h)
        if stop_x <= first_x or stop_y <= first_y:
            return 0.0
    # The kernel is a product exp(fx(x)) * exp(fy(y)), so its mean over a pixel rectangle is the product of the two
    # 1-D means: W + H exponentials instead of W * H.
    return _axis_mean(first_x, stop_x, cx, sx) * _axis_mean(first_y, stop_y, cy, sy)


def positional(
    pred: BoxLike, gt: BoxLike, alpha: float = 2.5, image_size: Sequence[int] | None = None
) -> float | np.ndarray:
    """RSGround-R1's positional reward R_pos: the mean Gaussian-kernel value over the predicted box's pixels.

    ``K(x, y) = exp(-(x - cx)^2 / (2 sx^2) - (y - cy)^2 / (2 sy^2))`` is centred on the GT centre ``(cx, cy)`` with
    ``sx = alpha * W / 2`` and ``sy = alpha * H / 2`` (``W, H`` the GT box size). Max-normalisation (eq. 3) divides by
    the kernel's maximum over the plane, which is ``K(cx, cy) = 1``, so ``K_hat = K``: the peak is exactly 1 at the
    GT centre whether or not that falls on a pixel centre.

    Pixel convention: pixel ``(i, j)`` covers ``[i, i + 1) x [j, j + 1)`` and is sampled at its centre
    ``(i + 0.5, j + 0.5)``. The predicted box ``[x1, y1, x2, y2]`` covers the pixels ``floor(x1) .. ceil(x2) - 1``
    by ``floor(y1) .. ceil(y2) - 1`` (every pixel it touches), clipped to ``[0, W_img) x [0, H_img)`` when
    ``image_size=(W_img, H_img)`` is given. The mean over that rectangle is exact on the grid and costs O(W + H)
    because the kernel is separable.

    Edge cases: zero-area or inverted predictions (``x2 <= x1`` or ``y2 <= y1``), non-finite values and boxes with no
    pixel inside the image give 0. A GT side of zero length is treated as 1 px (``sigma = alpha / 2``).

    Args:
        pred: predicted box(es), ``(4,)`` or ``(N, 4)``.
        gt: GT box(es), same leading shape (or ``(4,)`` broadcast against ``(N, 4)`` predictions).
        alpha: kernel width relative to the GT size (paper: 2.5).
        image_size: ``(W, H)`` to clip the predicted pixels to, or ``None`` for no clipping.

    Returns:
        A float for one pair, an ``(N,)`` float64 array for N pairs.

    Example:
        >>> round(positional([0, 0, 100, 50], [0, 0, 100, 50]), 6)
        0.948613
        >>> positional([300, 300, 400, 350], [0, 0, 100, 50]) < 1e-3  # far away, but not zero
        True
        >>> positional([10, 10, 10, 20], [0, 0, 100, 50])  # zero area
        0.0
    """
    if alpha <= 0:
        raise ValueError(f"positional: alpha must be > 0, got {alpha}")
    if _is_flat_box(pred) and _is_flat_box(gt):  # the reward's per-completion call: skip the array machinery
        return _positional_one(pred, gt, alpha, image_size)
    p = np.asarray(pred.detach().cpu() if _is_torch(pred) else pred, dtype=np.float64)
    g = np.asarray(gt.detach().cpu() if _is_torch(gt) else gt, dtype=np.float64)
    if p.ndim == 1 and g.ndim == 1:
        return _positional_one(p, g, alpha, image_size)
    p, g = np.broadcast_arrays(np.atleast_2d(p), np.atleast_2d(g))
    return np.array([_positional_one(a, b, alpha, image_size) for a, b in zip(p, g)], dtype=np.float64)


def positional_continuous(pred: Sequence[float], gt: Sequence[float], alpha: float = 2.5) -> float:
    """Closed-form continuous R_pos: the kernel's mean over the box as a region of the plane (no pixel grid).

    Per axis the mean of ``exp(-(t - c)^2 / (2 s^2))`` over ``[a, b]`` is
    ``s * sqrt(pi / 2) * (erf((b - c) / (sqrt(2) s)) - erf((a - c) / (sqrt(2) s))) / (b - a)``; R_pos is the product
    of the two axes. :func:`positional` is the pixel-centre (midpoint-rule) version of this integral, so the two
    differ by O((1 / sigma)^2) for integer boxes plus the effect of rounding fractional box edges out to whole pixels.

    Example:
        >>> round(positional_continuous([0, 0, 100, 50], [0, 0, 100, 50]), 4)
        0.9486
    """
    x1, y1, x2, y2 = (float(v) for v in pred)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or not (x2 > x1 and y2 > y1):
        return 0.0
    cx, cy, sx, sy = _gt_center_sigma(gt, alpha)

    def axis(a: float, b: float, c: float, s: float) -> float:
        r2 = math.sqrt(2.0) * s
        return s * math.sqrt(math.pi / 2.0) * (math.erf((b - c) / r2) - math.erf((a - c) / r2)) / (b - a)

    return axis(x1, x2, cx, sx) * axis(y1, y2, cy, sy)


# -- spatial-consistency weight -------------------------------------------------------------------------------------
def spatial_consistency_weight(
    ious: Any,
    lambda_m: float = 1.2,
    lambda_v: float = 1.0,
    w_min: float = 0.5,
    w_max: float = 3.0,
    ddof: int = 0,
) -> Any:
    """RSGround-R1's group weight ``w = clip(exp(lambda_m (1 - mean IoU) + lambda_v Var(IoU)), w_min, w_max)``.

    Args:
        ious: the IoU rewards of one group ``(G,)`` or of several groups ``(num_groups, G)`` (NumPy, list or torch).
        lambda_m: weight of ``1 - mean`` (paper: 1.2).
        lambda_v: weight of the variance (paper: 1.0).
        w_min, w_max: clip range (paper: 0.5 and 3.0). With IoUs in [0, 1] the exponent is >= 0, so ``w >= 1`` and
            ``w_min = 0.5`` never binds; ``w_max`` binds once ``1.2 (1 - mean) + Var >= ln 3``.
        ddof: variance convention, ``Var = sum (x - mean)^2 / (G - ddof)``. The paper does not say; 0 (population
            variance, NumPy's default) is ours; 1 is the unbiased estimator ``torch.var`` uses by default.

    Returns:
        A float for a ``(G,)`` input, an array ``(num_groups,)`` otherwise (a tensor for tensor input).

    Raises:
        ValueError: for NaN IoUs (score failed rollouts as 0, not NaN), an empty group, or ``G <= ddof``.

    Example:
        >>> spatial_consistency_weight([1.0] * 8), spatial_consistency_weight([0.0] * 8)
        (1.0, 3.0)
        >>> round(spatial_consistency_weight([1.0, 0.0] * 4), 4), round(spatial_consistency_weight([1.0, 0.0] * 4, ddof=1), 4)
        (2.3396, 2.4247)
    """
    if w_min > w_max:
        raise ValueError(f"spatial_consistency_weight: w_min ({w_min}) must be <= w_max ({w_max})")
    torch_mode = _is_torch(ious)
    if torch_mode:
        import torch

        x = ious if ious.is_floating_point() else ious.to(torch.float32)
        if torch.isnan(x).any():
            raise ValueError("spatial_consistency_weight: IoUs contain NaN; score failed rollouts as 0")
        scalar = x.ndim == 1
        x = x.reshape(1, -1) if scalar else x
    else:
        x = np.asarray(ious, dtype=np.float64)
        if np.isnan(x).any():
            raise ValueError("spatial_consistency_weight: IoUs contain NaN; score failed rollouts as 0")
        scalar = x.ndim == 1
        x = x.reshape(1, -1) if scalar else x
    if x.ndim != 2 or x.shape[-1] == 0:
        raise ValueError(
            f"spatial_consistency_weight: expected (G,) or (num_groups, G) IoUs, got shape {tuple(x.shape)}"
        )
    group = x.shape[-1]
    if group <= ddof:
        raise ValueError(f"spatial_consistency_weight: a group of {group} has no variance with ddof={ddof}")
    mean = x.mean(-1)
    var = ((x - mean[..., None]) ** 2).sum(-1) / (group - ddof)
    if torch_mode:
        w = torch.clamp(torch.exp(lambda_m * (1.0 - mean) + lambda_v * var), w_min, w_max)
        return w[0] if scalar else w
    w = np.clip(np.exp(lambda_m * (1.0 - mean) + lambda_v * var), w_min, w_max)
    return float(w[0]) if scalar else w
