"""Oriented-detection metrics: mAP (mmrotate / DOTA_devkit rules), AP with no confidence (AP_nc) and mF1.

Records are plain dicts, easy to write by hand or from a parsed model response
(:func:`rszoo.data.detection_format.parse_detection_response` returns exactly this shape)::

    detection:    {"image": "P0003__512__0___412", "label": "small-vehicle", "poly": [x1, y1, ..., x4, y4],
                   "score": 0.93}            # "score" may be omitted for ap_nc / mf1 (VLM outputs have none)
    ground truth: {"image": "P0003__512__0___412", "label": "small-vehicle", "poly": [...], "difficult": 0}

Everything is vectorised: the IoU of every (detection, ground truth) pair of the same image and class whose
horizontal boxes overlap is computed once (torch, exact polygon IoU), and matching, precision/recall and AP are numpy
array operations. The per-detection "argmax ground truth" rule that both references use makes the greedy matching
order-free: a detection is a true positive iff it is the first detection (in processing order) whose best ground
truth is that ground truth and whose IoU passes the threshold.

Two evaluation modes:

``mode="mmrotate"`` (``mmrotate.evaluation.eval_rbbox_map`` / ``DOTAMetric``, what RSCoVLM and LMMRotate report)
    a match needs ``IoU >= thr``; each detection looks only at its best ground truth (no fall-back to the second
    best); ignored ground truths are neither TP nor FP and are not counted; the default box type is ``"rbox"``
    (both sides turned into minimum-area rectangles, as RSCoVLM's ``qbox -> rbox`` conversion does); mAP is the
    mean over classes **with** ground truth; by default nothing is ignored (``DOTADataset(diff_thr=100)``).
``mode="dota_devkit"`` (``dota_evaluation_task1.voc_eval``)
    a match needs ``IoU > thr`` (strict); difficult objects are ignored (out of ``npos``, a detection matched to one
    is neither TP nor FP); polygons are compared as given (``polyiou``); mAP is the mean over **all** classes of the
    class list, classes without ground truth counting 0.

Both use VOC07 11-point AP by default (``ap_method="11points"``) with mmdet's thresholds ``np.arange(0, 1.001, 0.1)``
-- note that the 4th, 7th and 8th thresholds are 0.30000000000000004, 0.6000000000000001 and 0.7000000000000001, so a
recall of exactly 3/10, 6/10 or 7/10 does **not** reach them; this is reproduced. ``ap_method="area"`` is the VOC2010+
envelope integral.

Detection order (it decides ties, and with constant scores it *is* the ranking) is a **stable** sort by descending
score of: in mmrotate mode, images in order of first appearance in ``ground_truths`` (then images that only have
detections, in order of appearance in ``detections``; or an explicit ``image_order``) and detections within an image in
input order -- mmrotate concatenates per-image results in dataset order; in dota_devkit mode, the detections in input
order (the devkit reads one detection file per class). Both references call ``np.argsort(-scores)``, which is not
guaranteed stable; on the machines checked it keeps the input order for an all-constant array, which is our order.

Example:
    >>> gts = [{"image": "a", "label": "ship", "poly": [0, 0, 10, 0, 10, 10, 0, 10]}]
    >>> dets = [{"image": "a", "label": "ship", "poly": [0, 0, 10, 0, 10, 10, 0, 10], "score": 0.9},
    ...         {"image": "a", "label": "ship", "poly": [1, 0, 11, 0, 11, 10, 1, 10], "score": 0.8}]
    >>> r = mean_ap(dets, gts)
    >>> r["mAP"], r["per_class"]["ship"]["tp"], r["per_class"]["ship"]["fp"]
    (1.0, 1, 1)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rszoo.data.geometry import polygon_iou, polygon_iou_aligned, polygon_iou_grouped
from rszoo.registry import METRICS

__all__ = [
    "COCO_IOU_THRS",
    "RANDOM_SCORE_SEEDS",
    "ap_nc",
    "average_precision",
    "mean_ap",
    "mf1",
    "polygon_iou",
    "polygon_iou_aligned",
    "polygon_iou_grouped",
]

Mode = Literal["mmrotate", "dota_devkit"]
APMethod = Literal["11points", "area"]
BoxType = Literal["poly", "rbox"]

#: IoU thresholds 0.50, 0.55, ..., 0.95 (COCO style AP_{50:95}), written as clean decimals.
COCO_IOU_THRS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
#: The ten seeds of LMMRotate's ``map_nc_robustness_cal.py``.
RANDOM_SCORE_SEEDS: tuple[int, ...] = (42, 666, 6666, 66666, 666666, 2024, 9968, 0, 1, 123)

_MODES = ("mmrotate", "dota_devkit")
_F32_EPS = float(np.finfo(np.float32).eps)
_F64_EPS = float(np.finfo(np.float64).eps)
_ELEVEN_POINTS = np.arange(0, 1 + 1e-3, 0.1)  # mmdet; == np.arange(0., 1.1, 0.1) of DOTA_devkit


# --------------------------------------------------------------------------------------------------------------
# records -> arrays
# --------------------------------------------------------------------------------------------------------------
@dataclass
class _Set:
    """Detections or ground truths as arrays (rows in input order)."""

    image: np.ndarray  # int image index (into _Scene.images)
    cls: np.ndarray  # int class index (into _Scene.classes)
    poly: np.ndarray  # (n, 8) float64
    score: np.ndarray  # float64 (detections) / unused
    flag: np.ndarray  # bool: difficult (ground truths) / unused
    pos: np.ndarray  # position within its image (input order)


@dataclass
class _Scene:
    images: list[str]
    classes: list[str]
    dets: _Set
    gts: _Set
    dropped_dets: int  # detections whose label is not in ``classes``
    dropped_gts: int


def _field(rec: Any, key: str, where: str, i: int) -> Any:
    if not isinstance(rec, Mapping):
        raise TypeError(f"{where}[{i}]: expected a dict record, got {type(rec).__name__}")
    if key not in rec:
        raise KeyError(
            f"{where}[{i}]: missing key {key!r} (record keys: {sorted(rec)}); see rszoo.metrics.detection"
        )
    return rec[key]


def _polys(records: Sequence[Mapping[str, Any]], where: str) -> np.ndarray:
    try:
        arr = np.asarray([r["poly"] for r in records], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        arr = None
    if arr is None or (len(records) and (arr.ndim != 2 or arr.shape[1] != 8)):
        for i, r in enumerate(records):
            p = _field(r, "poly", where, i)
            if not isinstance(p, (list, tuple, np.ndarray)) or len(p) != 8:
                raise ValueError(
                    f"{where}[{i}]['poly']: expected 8 numbers [x1, y1, ..., x4, y4], got {p!r}; "
                    "convert boxes with rszoo.data.geometry.rbox_to_quad first"
                )
        arr = np.asarray([r["poly"] for r in records], dtype=np.float64)
    if len(records) == 0:
        arr = np.zeros((0, 8))
    if not np.isfinite(arr).all():
        bad = int(np.nonzero(~np.isfinite(arr).all(axis=1))[0][0])
        raise ValueError(f"{where}[{bad}]['poly']: coordinates must be finite, got {records[bad]['poly']!r}")
    return arr


def _scene(
    detections: Sequence[Mapping[str, Any]],
    ground_truths: Sequence[Mapping[str, Any]],
    classes: Sequence[str] | None,
    image_order: Sequence[str] | None,
    need_scores: bool,
) -> _Scene:
    detections, ground_truths = list(detections), list(ground_truths)
    for where, recs in (("detections", detections), ("ground_truths", ground_truths)):
        for i, r in enumerate(recs):
            _field(r, "image", where, i)
            _field(r, "label", where, i)
    images: dict[str, int] = {}
    for name in image_order or ():
        images.setdefault(str(name), len(images))
    if image_order is None:
        for r in ground_truths:
            images.setdefault(str(r["image"]), len(images))
        for r in detections:
            images.setdefault(str(r["image"]), len(images))
    else:
        for where, recs in (("detections", detections), ("ground_truths", ground_truths)):
            for i, r in enumerate(recs):
                if str(r["image"]) not in images:
                    raise KeyError(f"{where}[{i}]: image {r['image']!r} is not in image_order")
    if classes is None:
        classes = sorted({str(r["label"]) for r in ground_truths} | {str(r["label"]) for r in detections})
    classes = [str(c) for c in classes]
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes: names must be unique, got {classes!r}")
    cls_index = {c: k for k, c in enumerate(classes)}

    def build(recs: list[Mapping[str, Any]], where: str, is_det: bool) -> tuple[_Set, int]:
        keep = [i for i, r in enumerate(recs) if str(r["label"]) in cls_index]
        kept = [recs[i] for i in keep]
        img = np.asarray([images[str(r["image"])] for r in kept], dtype=np.int64)
        cls = np.asarray([cls_index[str(r["label"])] for r in kept], dtype=np.int64)
        poly = _polys(kept, where)
        if is_det:
            if need_scores:
                for j, r in zip(keep, kept):
                    _field(r, "score", where, j)
            score = np.asarray([float(r.get("score", 1.0)) for r in kept], dtype=np.float64)
            if not np.isfinite(score).all():
                raise ValueError(f"{where}: scores must be finite numbers")
            flag = np.zeros(len(kept), dtype=bool)
        else:
            score = np.zeros(len(kept))
            flag = np.asarray([bool(int(r.get("difficult", 0) or 0)) for r in kept], dtype=bool)
        # position within the image, in input order
        pos = np.zeros(len(kept), dtype=np.int64)
        if len(kept):
            order = np.argsort(img, kind="stable")
            counts = np.bincount(img, minlength=len(images))
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            pos[order] = np.arange(len(kept)) - np.repeat(starts, counts)
        return _Set(img, cls, poly, score, flag, pos), len(recs) - len(kept)

    dets, dd = build(detections, "detections", True)
    gts, dg = build(ground_truths, "ground_truths", False)
    return _Scene(list(images), classes, dets, gts, dd, dg)


# --------------------------------------------------------------------------------------------------------------
# IoU of candidate pairs and the best ground truth of every detection
# --------------------------------------------------------------------------------------------------------------
def _as_rbox_quads(poly: np.ndarray) -> np.ndarray:
    from rszoo.data.geometry import quads_to_rboxes, rboxes_to_quads

    return rboxes_to_quads(quads_to_rboxes(poly)) if len(poly) else poly


def _pair_ious(
    scene: _Scene, box_type: BoxType, same_class: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(det_idx, gt_idx, iou)`` for candidate pairs (same image, and same class unless ``same_class=False``)."""
    d, g = scene.dets, scene.gts
    if box_type == "rbox":
        dpoly, gpoly = _as_rbox_quads(d.poly), _as_rbox_quads(g.poly)
    elif box_type == "poly":
        dpoly, gpoly = d.poly, g.poly
    else:
        raise ValueError(f"box_type must be 'poly' or 'rbox', got {box_type!r}")
    n_cls = max(1, len(scene.classes))
    kd = d.image * n_cls + d.cls if same_class else d.image
    kg = g.image * n_cls + g.cls if same_class else g.image
    return polygon_iou_grouped(dpoly, gpoly, kd.tolist(), kg.tolist())


def _best_gt(
    scene: _Scene, di: np.ndarray, gj: np.ndarray, iou: np.ndarray, ignored: np.ndarray, mode: Mode
) -> tuple[np.ndarray, np.ndarray]:
    """Per detection: max IoU over the ground truths of its image and class, and the argmax (-1 if none).

    Ties go to the first ground truth in the reference's order: mmrotate stacks ``[gts; ignored gts]``, the devkit
    keeps file order.
    """
    nd = len(scene.dets.image)
    best = np.zeros(nd)
    arg = np.full(nd, -1, dtype=np.int64)
    if len(di):
        ng = len(scene.gts.image)
        gt_rank = np.arange(ng) + (ignored * ng if mode == "mmrotate" else 0)
        order = np.lexsort((gt_rank[gj], -iou, di))
        first = np.ones(len(order), dtype=bool)
        first[1:] = di[order][1:] != di[order][:-1]
        sel = order[first]
        best[di[sel]] = iou[sel]
        arg[di[sel]] = gj[sel]
    return best, arg


# --------------------------------------------------------------------------------------------------------------
# matching and AP
# --------------------------------------------------------------------------------------------------------------
def _processing_rank(scene: _Scene, scores: np.ndarray, mode: Mode) -> np.ndarray:
    """Rank of every detection: stable sort by descending score.

    mmrotate concatenates images in dataset order, so ties go by (image order, in-image order); the devkit reads one
    detection list per class, so ties go by input order.
    """
    if mode == "dota_devkit":
        order = np.lexsort((np.arange(len(scores)), -scores))
    else:
        order = np.lexsort((scene.dets.pos, scene.dets.image, -scores))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def _tp_fp(
    best: np.ndarray, arg: np.ndarray, ignored: np.ndarray, rank: np.ndarray, thr: float, strict: bool
):
    """TP / FP flags per detection for one IoU threshold (both 0 for a detection matched to an ignored GT)."""
    hit = (best > thr) if strict else (best >= thr)
    hit &= arg >= 0
    to_ignored = hit & ignored[np.maximum(arg, 0)]
    cand = np.nonzero(hit & ~to_ignored)[0]
    tp = np.zeros(len(best), dtype=bool)
    if len(cand):
        o = np.lexsort((rank[cand], arg[cand]))
        c = cand[o]
        first = np.ones(len(c), dtype=bool)
        first[1:] = arg[c][1:] != arg[c][:-1]
        tp[c[first]] = True
    fp = ~tp & ~to_ignored
    return tp, fp


def average_precision(recall: np.ndarray, precision: np.ndarray, method: APMethod = "11points") -> float:
    """AP of one precision/recall curve, exactly as mmdet's ``average_precision`` (VOC07 11 points or area).

    mmdet accumulates into a float32 array, so the result is float32-rounded; that is reproduced.

    Example:
        >>> round(average_precision(np.array([0.5, 1.0]), np.array([1.0, 0.5])), 6)  # (6 * 1.0 + 5 * 0.5) / 11
        0.772727
        >>> average_precision(np.array([0.5, 1.0]), np.array([1.0, 0.5]), "area")
        0.75
    """
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision)
    ap = np.zeros(1, dtype=np.float32)
    if method == "11points":
        if len(recall):
            env = np.maximum.accumulate(precision[::-1])[::-1]  # max precision over each suffix
            idx = np.searchsorted(
                recall, _ELEVEN_POINTS, "left"
            )  # recall is non-decreasing (a cumulative sum)
            for k in idx:  # same float32 accumulation order as mmdet
                ap[0] += env[k] if k < len(recall) else 0
        ap /= 11
        return float(ap[0])
    if method == "area":
        mrec = np.concatenate([[0.0], recall, [1.0]])
        mpre = np.concatenate([np.zeros(1, precision.dtype), precision, np.zeros(1, precision.dtype)])
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        ind = np.where(mrec[1:] != mrec[:-1])[0]
        ap[0] = np.sum((mrec[ind + 1] - mrec[ind]) * mpre[ind + 1])
        return float(ap[0])
    raise ValueError(f"ap_method must be '11points' or 'area', got {method!r}")


def _voc_ap(recall: np.ndarray, precision: np.ndarray, method: APMethod) -> float:
    """DOTA_devkit ``voc_ap`` in float64 (11 points accumulated as ``ap + p / 11``, or the area form)."""
    if method == "area":
        mrec = np.concatenate([[0.0], recall, [1.0]])
        mpre = np.concatenate([[0.0], precision, [0.0]])
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        i = np.where(mrec[1:] != mrec[:-1])[0]
        return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
    ap = 0.0
    if len(recall):
        env = np.maximum.accumulate(precision[::-1])[::-1]
        for k in np.searchsorted(recall, _ELEVEN_POINTS, "left"):
            ap = ap + (float(env[k]) if k < len(recall) else 0.0) / 11.0
    return ap


def _class_order(scene: _Scene, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Detections grouped by class, each group in processing order, and the group boundaries."""
    order = np.lexsort((rank, scene.dets.cls))
    return order, np.searchsorted(scene.dets.cls[order], np.arange(len(scene.classes) + 1), "left")


def _class_aps(
    scene: _Scene,
    tp: np.ndarray,
    fp: np.ndarray,
    grouping: tuple[np.ndarray, np.ndarray],
    npos: np.ndarray,
    mode: Mode,
    method: APMethod,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Per-class AP with each reference's dtypes: mmrotate counts in float32 (float32 precision, float64 recall)."""
    n_cls = len(scene.classes)
    order, bounds = grouping
    aps = np.zeros(n_cls)
    info = []
    for k in range(n_cls):
        sel = order[bounds[k] : bounds[k + 1]]
        n = int(npos[k])
        if mode == "mmrotate":
            tpc = np.cumsum(tp[sel].astype(np.float32))
            fpc = np.cumsum(fp[sel].astype(np.float32))
            recall = tpc / np.maximum(np.int64(n), np.float32(_F32_EPS))
            precision = tpc / np.maximum(tpc + fpc, np.float32(_F32_EPS))
            ap = average_precision(recall, precision, method)
        else:
            tpc = np.cumsum(tp[sel].astype(np.float64))
            fpc = np.cumsum(fp[sel].astype(np.float64))
            precision = tpc / np.maximum(tpc + fpc, _F64_EPS)
            # with no positives the devkit divides by zero; every comparison with NaN fails and AP is 0
            recall = tpc / float(n) if n else np.zeros(len(sel))
            ap = _voc_ap(recall, precision, method) if n else 0.0
        aps[k] = ap
        info.append(
            {
                "ap": float(ap),
                "num_gts": n,
                "num_dets": len(sel),
                "tp": int(tp[sel].sum()),
                "fp": int(fp[sel].sum()),
                "recall": float(recall[-1]) if len(sel) and n else 0.0,
                "precision": float(precision[-1]) if len(sel) else 0.0,
            }
        )
    return aps, info


def _mean(aps: np.ndarray, npos: np.ndarray, mode: Mode) -> float:
    if mode == "mmrotate":  # np.array(float32 aps).mean().item(), classes with ground truth only
        sel = aps[npos > 0].astype(np.float32)
        return float(sel.mean()) if len(sel) else 0.0
    total = 0.0
    for a in aps:  # devkit: map = map + ap, then / number of classes
        total = total + float(a)
    return total / len(aps) if len(aps) else 0.0


@dataclass
class _Prepared:
    scene: _Scene
    best: np.ndarray
    arg: np.ndarray
    ignored: np.ndarray
    npos: np.ndarray
    mode: Mode
    method: APMethod
    invalid: dict[str, int]


def _invalid_counts(poly: np.ndarray) -> dict[str, int]:
    """How many detections are degenerate (zero area) or self-intersecting; they stay in (and score IoU 0 / the
    devkit's winding-rule overlap), so the count tells how much of a model's output was unusable geometry."""
    from rszoo.data.geometry import quad_validity

    if not len(poly):
        return {"degenerate": 0, "self_intersecting": 0}
    v = quad_validity(poly)
    return {"degenerate": int(v["degenerate"].sum()), "self_intersecting": int(v["self_intersecting"].sum())}


def _prepare(
    detections: Sequence[Mapping[str, Any]],
    ground_truths: Sequence[Mapping[str, Any]],
    mode: Mode,
    ap_method: APMethod,
    classes: Sequence[str] | None,
    box_type: BoxType | None,
    ignore_difficult: bool | None,
    image_order: Sequence[str] | None,
    need_scores: bool,
) -> _Prepared:
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if ap_method not in ("11points", "area"):
        raise ValueError(f"ap_method must be '11points' or 'area', got {ap_method!r}")
    box_type = box_type or ("rbox" if mode == "mmrotate" else "poly")
    ignore_difficult = (mode == "dota_devkit") if ignore_difficult is None else ignore_difficult
    scene = _scene(detections, ground_truths, classes, image_order, need_scores)
    ignored = scene.gts.flag.copy() if ignore_difficult else np.zeros(len(scene.gts.flag), dtype=bool)
    di, gj, iou = _pair_ious(scene, box_type)
    best, arg = _best_gt(scene, di, gj, iou, ignored, mode)
    npos = np.bincount(scene.gts.cls[~ignored], minlength=len(scene.classes))
    return _Prepared(scene, best, arg, ignored, npos, mode, ap_method, _invalid_counts(scene.dets.poly))


def _evaluate(prep: _Prepared, scores: np.ndarray, iou_thrs: Sequence[float]) -> list[dict[str, Any]]:
    """mAP and per-class results for each threshold; the ranking is computed once per score vector."""
    for t in iou_thrs:
        if not 0.0 < t <= 1.0:
            raise ValueError(f"iou_thr must be in (0, 1], got {t}")
    rank = _processing_rank(prep.scene, scores, prep.mode)
    grouping = _class_order(prep.scene, rank)
    out = []
    for t in iou_thrs:
        tp, fp = _tp_fp(prep.best, prep.arg, prep.ignored, rank, t, strict=prep.mode == "dota_devkit")
        aps, info = _class_aps(prep.scene, tp, fp, grouping, prep.npos, prep.mode, prep.method)
        out.append(
            {"mAP": _mean(aps, prep.npos, prep.mode), "per_class": dict(zip(prep.scene.classes, info))}
        )
    return out


def _thr_key(thr: float) -> str:
    return f"AP{round(thr * 100):02d}"


# --------------------------------------------------------------------------------------------------------------
# public metrics
# --------------------------------------------------------------------------------------------------------------
@METRICS.register("mean_ap", task="oriented_detection", higher_is_better=True)
def mean_ap(
    detections: Sequence[Mapping[str, Any]],
    ground_truths: Sequence[Mapping[str, Any]],
    iou_thr: float = 0.5,
    mode: Mode = "mmrotate",
    ap_method: APMethod = "11points",
    classes: Sequence[str] | None = None,
    box_type: BoxType | None = None,
    ignore_difficult: bool | None = None,
    image_order: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Per-class AP and mAP of scored oriented detections.

    Args:
        detections: ``{"image", "label", "poly", "score"}`` dicts.
        ground_truths: ``{"image", "label", "poly"[, "difficult"]}`` dicts.
        iou_thr: IoU threshold (``>=`` in mmrotate mode, ``>`` in dota_devkit mode).
        mode: ``"mmrotate"`` or ``"dota_devkit"`` (see the module docstring for every difference).
        ap_method: ``"11points"`` (VOC07, both references' default) or ``"area"``.
        classes: the class list. Labels outside it are ignored (and counted in ``dropped_*``). Default: the sorted
            union of all labels -- pass the dataset's list in dota_devkit mode, whose mAP divides by its length.
        box_type: ``"poly"`` (exact polygon IoU) or ``"rbox"`` (minimum-area rectangles first). Default: ``"rbox"``
            in mmrotate mode, ``"poly"`` in dota_devkit mode.
        ignore_difficult: treat ``difficult`` ground truths as ignored. Default: ``False`` in mmrotate mode
            (``diff_thr=100``), ``True`` in dota_devkit mode.
        image_order: explicit image order (decides ties between equal scores).

    Returns:
        ``{"mAP", "per_class": {label: {"ap", "num_gts", "num_dets", "tp", "fp", "recall", "precision"}}, "mode",
        "iou_thr", "ap_method", "box_type", "dropped_detections", "dropped_ground_truths", "invalid_detections"}``;
        ``invalid_detections`` counts degenerate and self-intersecting detection quads (kept in the evaluation).
    """
    prep = _prepare(
        detections, ground_truths, mode, ap_method, classes, box_type, ignore_difficult, image_order, True
    )
    res = _evaluate(prep, prep.scene.dets.score, [float(iou_thr)])[0]
    return {
        **res,
        "mode": mode,
        "iou_thr": float(iou_thr),
        "ap_method": ap_method,
        "box_type": box_type or ("rbox" if mode == "mmrotate" else "poly"),
        "dropped_detections": prep.scene.dropped_dets,
        "invalid_detections": prep.invalid,
        "dropped_ground_truths": prep.scene.dropped_gts,
    }


def _reseeded_scores(scene: _Scene, seed: int) -> np.ndarray:
    """LMMRotate's random scores: ``torch.manual_seed(seed); torch.rand_like(scores)`` **per image**.

    Re-seeding for every image gives every image the same prefix of one random stream, so the k-th detection of
    every image gets the same score. ``torch.rand(n)`` is a prefix of ``torch.rand(m)`` for ``n <= m`` on CPU (checked
    in the tests), so one draw serves all images.
    """
    import torch

    n = int(scene.dets.pos.max()) + 1 if len(scene.dets.pos) else 0
    gen = torch.Generator().manual_seed(int(seed))
    stream = torch.rand(n, generator=gen, dtype=torch.float32).numpy().astype(np.float64)
    return stream[scene.dets.pos] if n else np.zeros(0)


def _one_stream_scores(scene: _Scene, seed: int) -> np.ndarray:
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    return torch.rand(len(scene.dets.pos), generator=gen, dtype=torch.float32).numpy().astype(np.float64)


@METRICS.register("ap_nc", task="oriented_detection", higher_is_better=True)
def ap_nc(
    detections: Sequence[Mapping[str, Any]],
    ground_truths: Sequence[Mapping[str, Any]],
    iou_thrs: Sequence[float] | float = (0.5,),
    mode: Mode = "mmrotate",
    ap_method: APMethod = "11points",
    classes: Sequence[str] | None = None,
    box_type: BoxType | None = None,
    ignore_difficult: bool | None = None,
    image_order: Sequence[str] | None = None,
    seeds: Sequence[int] = RANDOM_SCORE_SEEDS,
    score_thr: float | None = None,
    reseed_per_image: bool = True,
) -> dict[str, Any]:
    """AP with no confidence (RSCoVLM's ``AP_nc``): scores are replaced by a constant, then by random values.

    (i) **Constant**: every detection scores 1, so the ranking is the deterministic order of the module docstring
    (images in order, detections in output order). (ii) **Random**: for each seed, LMMRotate's rule
    (``reseed_per_image=True``: ``torch.manual_seed(seed)`` before every image, float32 ``rand``) or one stream over
    all detections (``False``); reported as the mean and population std (``np.std``) over the seeds. Ties between
    equal random scores (systematic with per-image reseeding) are broken stably by image then in-image order; the
    reference's unstable ``np.argsort`` may break them otherwise.

    IoUs are computed once and shared by every threshold and seed. With ``iou_thrs=COCO_IOU_THRS`` the result holds
    ``AP50``, ``AP75`` and ``mAP`` = the mean over 0.50:0.95 (``AP_nc50:95``), like ``DOTAMetric``.

    Args:
        detections / ground_truths / mode / ap_method / classes / box_type / ignore_difficult / image_order: as in
            :func:`mean_ap`; detections need no ``"score"`` unless ``score_thr`` is given.
        iou_thrs: one threshold or several.
        seeds: random-score seeds (default: LMMRotate's ten); empty to skip (ii).
        score_thr: keep only detections with ``score > score_thr`` first (the paper's procedure for conventional
            detectors); ``None`` keeps everything.
        reseed_per_image: LMMRotate's per-image reseeding (default) or a single stream.

    Returns:
        ``{"constant": {"AP50": .., ["AP75": ..,] "mAP": .., "per_class": {"AP50": {label: ap}, ...}},
        "random": {"AP50": {"mean", "std", "values"}, ..., "mAP": {...}, "seeds": [...]}, "iou_thrs", "mode", ...}``.

    Example:
        >>> gts = [{"image": "a", "label": "ship", "poly": [0, 0, 10, 0, 10, 10, 0, 10]}]
        >>> dets = [{"image": "a", "label": "ship", "poly": [20, 0, 30, 0, 30, 10, 20, 10]},
        ...         {"image": "a", "label": "ship", "poly": [0, 0, 10, 0, 10, 10, 0, 10]}]
        >>> r = ap_nc(dets, gts, seeds=())
        >>> round(r["constant"]["AP50"], 4)  # the FP comes first in output order: precision 1/2 at recall 1
        0.5
    """
    thrs = [float(iou_thrs)] if isinstance(iou_thrs, (int, float)) else [float(t) for t in iou_thrs]
    if not thrs:
        raise ValueError("ap_nc: iou_thrs must hold at least one threshold")
    if score_thr is not None:
        detections = [
            d for i, d in enumerate(detections) if float(_field(d, "score", "detections", i)) > score_thr
        ]
    prep = _prepare(
        detections, ground_truths, mode, ap_method, classes, box_type, ignore_difficult, image_order, False
    )

    def run(scores: np.ndarray) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        summary: dict[str, float] = {}
        per_class: dict[str, dict[str, float]] = {}
        maps = []
        for t, r in zip(thrs, _evaluate(prep, scores, thrs)):
            summary[_thr_key(t)] = r["mAP"]
            per_class[_thr_key(t)] = {c: v["ap"] for c, v in r["per_class"].items()}
            maps.append(r["mAP"])
        summary["mAP"] = sum(maps) / len(maps)  # DOTAMetric: mean of the unrounded per-threshold mAPs
        return summary, per_class

    const, const_pc = run(np.ones(len(prep.scene.dets.pos)))
    random_runs = []
    for seed in seeds:
        scores = (
            _reseeded_scores(prep.scene, seed) if reseed_per_image else _one_stream_scores(prep.scene, seed)
        )
        random_runs.append(run(scores)[0])
    random_summary: dict[str, Any] = {"seeds": [int(s) for s in seeds]}
    for key in const:
        vals = [r[key] for r in random_runs]
        random_summary[key] = {
            "mean": float(np.mean(vals)) if vals else math.nan,
            "std": float(np.std(vals)) if vals else math.nan,
            "values": vals,
        }
    return {
        "constant": {**const, "per_class": const_pc},
        "random": random_summary,
        "iou_thrs": thrs,
        "mode": mode,
        "ap_method": ap_method,
        "box_type": box_type or ("rbox" if mode == "mmrotate" else "poly"),
        "num_detections": len(prep.scene.dets.pos),
        "num_ground_truths": len(prep.scene.gts.pos),
        "dropped_detections": prep.scene.dropped_dets,
        "invalid_detections": prep.invalid,
        "dropped_ground_truths": prep.scene.dropped_gts,
    }


@METRICS.register("mf1", task="oriented_detection", higher_is_better=True)
def mf1(
    detections: Sequence[Mapping[str, Any]],
    ground_truths: Sequence[Mapping[str, Any]],
    iou_thr: float = 0.5,
    variant: Literal["greedy", "confusion"] = "greedy",
    classes: Sequence[str] | None = None,
    box_type: BoxType = "poly",
    score_thr: float = 0.0,
) -> dict[str, Any]:
    """Mean F1 over classes, confidence-free.

    ``variant="greedy"`` (default): per image and class, detections and ground truths are matched one-to-one,
    greedily by descending IoU (``IoU >= iou_thr``; ties by detection then ground-truth input order). Per class
    ``P = TP / dets``, ``R = TP / gts``, ``F1 = 2PR / (P + R)`` (0 when both are 0); ``mF1`` is the mean of the
    per-class F1 over classes with at least one detection or ground truth (``f1_of_means`` is reported too).
    Difficult flags are not used: every ground truth counts.

    ``variant="confusion"``: LMMRotate's ``f1_metric.py``, reproduced: class ids are positions in ``classes``
    (pass the dataset's original order), ``C = max ground-truth id + 1``; a ``(C+1) x (C+1)`` confusion matrix gets
    ``+1`` at ``[gt_label, det_label]`` for **every** (detection, ground truth) pair of an image with
    ``IoU >= iou_thr`` whatever the classes (duplicates all count, one detection can hit several ground truths), a
    detection hitting nothing adds to ``[background, det_label]``, a ground truth never hit by its own class adds to
    ``[gt_label, background]``. ``mP`` / ``mR`` average over all ``C + 1`` rows including background (so a perfect
    detector scores ``C / (C + 1)``) and ``mF1 = 2 mP mR / (mP + mR)``. A detection whose class id equals ``C``
    lands in the background column as in the reference; larger ids (an IndexError there) are dropped and counted.
    The reference uses rotated-box IoU: pass ``box_type="rbox"`` for parity.

    Args:
        detections / ground_truths: records as in :func:`mean_ap` (``"score"`` optional).
        iou_thr: match threshold (``>=``).
        variant: ``"greedy"`` or ``"confusion"``.
        classes: class list; default the sorted union of labels.
        box_type: ``"poly"`` or ``"rbox"``.
        score_thr: keep detections with ``score >= score_thr`` (the reference's filter; scores default to 1).

    Example:
        >>> gts = [{"image": "a", "label": "ship", "poly": [0, 0, 10, 0, 10, 10, 0, 10]}]
        >>> dets = [{"image": "a", "label": "ship", "poly": [0, 0, 10, 0, 10, 10, 0, 10]}] * 2
        >>> mf1(dets, gts)["mF1"], round(mf1(dets, gts, variant="confusion")["mF1"], 4)
        (0.6666666666666666, 0.5)
    """
    detections = [d for d in detections if float(d.get("score", 1.0)) >= score_thr]
    scene = _scene(detections, ground_truths, classes, None, False)
    if variant == "greedy":
        return _mf1_greedy(scene, box_type, iou_thr)
    if variant == "confusion":
        return _mf1_confusion(scene, box_type, iou_thr)
    raise ValueError(f"mf1: variant must be 'greedy' or 'confusion', got {variant!r}")


def _mf1_greedy(scene: _Scene, box_type: BoxType, iou_thr: float) -> dict[str, Any]:
    di, gj, iou = _pair_ious(scene, box_type)
    keep = iou >= iou_thr
    di, gj, iou = di[keep], gj[keep], iou[keep]
    order = np.lexsort((gj, di, -iou))
    det_used = np.zeros(len(scene.dets.image), dtype=bool)
    gt_used = np.zeros(len(scene.gts.image), dtype=bool)
    for d, g in zip(di[order].tolist(), gj[order].tolist()):  # only pairs above the threshold: few
        if not det_used[d] and not gt_used[g]:
            det_used[d] = gt_used[g] = True
    n_cls = len(scene.classes)
    tp = np.bincount(scene.dets.cls[det_used], minlength=n_cls)
    nd = np.bincount(scene.dets.cls, minlength=n_cls)
    ng = np.bincount(scene.gts.cls, minlength=n_cls)
    per_class = {}
    f1s, ps, rs = [], [], []
    for k, name in enumerate(scene.classes):
        if nd[k] + ng[k] == 0:
            continue
        p = tp[k] / nd[k] if nd[k] else 0.0
        r = tp[k] / ng[k] if ng[k] else 0.0
        f = 2 * p * r / (p + r) if p + r > 0 else 0.0
        per_class[name] = {
            "precision": float(p),
            "recall": float(r),
            "f1": float(f),
            "tp": int(tp[k]),
            "num_dets": int(nd[k]),
            "num_gts": int(ng[k]),
        }
        f1s.append(f)
        ps.append(p)
        rs.append(r)
    mp, mr = (float(np.mean(ps)), float(np.mean(rs))) if ps else (0.0, 0.0)
    tot_tp, tot_d, tot_g = int(tp.sum()), int(nd.sum()), int(ng.sum())
    micro_p = tot_tp / tot_d if tot_d else 0.0
    micro_r = tot_tp / tot_g if tot_g else 0.0
    return {
        "mF1": float(np.mean(f1s)) if f1s else 0.0,
        "mP": mp,
        "mR": mr,
        "f1_of_means": 2 * mp * mr / (mp + mr) if mp + mr > 0 else 0.0,
        "micro": {
            "precision": micro_p,
            "recall": micro_r,
            "f1": 2 * micro_p * micro_r / (micro_p + micro_r) if micro_p + micro_r > 0 else 0.0,
        },
        "per_class": per_class,
        "variant": "greedy",
        "iou_thr": float(iou_thr),
    }


def _mf1_confusion(scene: _Scene, box_type: BoxType, iou_thr: float) -> dict[str, Any]:
    n_c = int(scene.gts.cls.max()) + 1 if len(scene.gts.cls) else 0
    bg = n_c
    dropped = int((scene.dets.cls > n_c).sum())
    di, gj, iou = _pair_ious(scene, box_type, same_class=False)
    live = scene.dets.cls[di] <= n_c
    keep = (iou >= iou_thr) & live
    di, gj = di[keep], gj[keep]
    size = n_c + 1
    dcls = scene.dets.cls
    cm = np.zeros((size, size), dtype=np.float64)
    np.add.at(cm, (scene.gts.cls[gj], dcls[di]), 1.0)
    matched = np.zeros(len(dcls), dtype=bool)
    matched[di] = True
    unmatched = np.nonzero(~matched & (dcls <= n_c))[0]
    np.add.at(cm, (np.full(len(unmatched), bg), dcls[unmatched]), 1.0)
    same = scene.gts.cls[gj] == dcls[di]
    gt_hit = np.zeros(len(scene.gts.cls), dtype=bool)
    gt_hit[gj[same]] = True
    missed = np.nonzero(~gt_hit)[0]
    np.add.at(cm, (scene.gts.cls[missed], np.full(len(missed), bg)), 1.0)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    denom_p = np.where(tp + fp == 0, 1.0, tp + fp)
    denom_r = np.where(tp + fn == 0, 1.0, tp + fn)
    precision, recall = tp / denom_p, tp / denom_r
    mp, mr = float(np.mean(precision)), float(np.mean(recall))
    return {
        "mF1": 2 * mp * mr / (mp + mr) if mp + mr > 0 else math.nan,
        "mP": mp,
        "mR": mr,
        "confusion_matrix": cm.tolist(),
        "labels": [*scene.classes[:n_c], "background"],
        "dropped_detections": dropped,
        "variant": "confusion",
        "iou_thr": float(iou_thr),
    }
