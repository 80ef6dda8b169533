"""AP_nc and pairwise polygon IoU: rszoo (vectorised torch) vs a straightforward shapely implementation.

Scene: ``N_IMAGES`` DOTA-like 512 x 512 patches with about 64 rotated objects each over 8 classes (>= 10,000 ground
truths and >= 10,000 detections: jittered copies, duplicates, misses and false positives).

1. **Pairwise IoU**: the detection x ground-truth IoU matrix of every image. rszoo: one ``polygon_iou_grouped``
   call over all images (sparse: pairs whose boxes overlap; the rest are 0), and for reference a loop of per-image
   ``polygon_iou`` calls (dominated by per-call overhead at ~70 boxes per image). Alternative: shapely 2's vectorised
   ``intersection`` on every pair of each image (no pre-filter).
2. **AP_nc report** (the paper's protocol): constant scores and 10 random-score seeds, each at IoU 0.50:0.95
   (10 thresholds) = 110 mAP evaluations in mmrotate mode with polygon IoU. rszoo: one ``ap_nc`` call (IoU computed
   once, shared). Alternative: mmrotate's ``eval_rbbox_map`` logic written plainly (per class, per image: shapely
   IoU matrix, the ``tpfp_default`` loop, global sort, mmdet 11-point AP), called once per evaluation as the
   reference tools do (each ``DOTAMetric`` call recomputes its IoUs).

Both tasks assert equal results (IoU to 1e-6, every AP to 1e-6) before reporting times. Both sides run on one thread
(shapely is single-threaded).

Run: ``python benchmarks/rscovlm/bench_detection_metrics.py`` (writes ``benchmarks/results/detection_metrics.json``
and ``.png``).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import shapely
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from _common import save_result, timeit

from rszoo.metrics.detection import (
    COCO_IOU_THRS,
    RANDOM_SCORE_SEEDS,
    ap_nc,
    polygon_iou,
    polygon_iou_grouped,
)

N_IMAGES = 160
OBJECTS_PER_IMAGE = 64
CLASSES = [f"class{k}" for k in range(8)]


def rect(cx: float, cy: float, w: float, h: float, a: float) -> list[float]:
    c, s = math.cos(a), math.sin(a)
    pts = [(w / 2, h / 2), (w / 2, -h / 2), (-w / 2, -h / 2), (-w / 2, h / 2)]
    return [v for x, y in pts for v in (cx + x * c - y * s, cy + x * s + y * c)]


def make_scene(seed: int = 0) -> tuple[list[dict], list[dict], list[str]]:
    rng = np.random.default_rng(seed)
    gts, dets = [], []
    images = [f"P{k:04d}__512__0___0" for k in range(N_IMAGES)]
    for img in images:
        for _ in range(int(rng.integers(OBJECTS_PER_IMAGE - 8, OBJECTS_PER_IMAGE + 9))):
            label = CLASSES[int(rng.integers(len(CLASSES)))]
            cx, cy = rng.uniform(0, 512, 2)
            w, h, a = rng.uniform(8, 60), rng.uniform(6, 30), rng.uniform(-math.pi / 2, math.pi / 2)
            gts.append({"image": img, "label": label, "poly": rect(cx, cy, w, h, a), "difficult": 0})
            for _ in range(int(rng.choice([0, 1, 1, 1, 1, 2]))):  # misses, hits, duplicates
                j = rng.normal(0, [2, 2, 2, 1.5, 0.05])
                dets.append(
                    {
                        "image": img,
                        "label": label,
                        "poly": rect(cx + j[0], cy + j[1], max(w + j[2], 2), max(h + j[3], 2), a + j[4]),
                    }
                )
        for _ in range(int(rng.integers(2, 10))):  # false positives
            dets.append(
                {
                    "image": img,
                    "label": CLASSES[int(rng.integers(len(CLASSES)))],
                    "poly": rect(*rng.uniform(0, 512, 2), 20, 10, rng.uniform(-1.5, 1.5)),
                }
            )
    return dets, gts, images


# ---- the alternative: straightforward shapely implementations -------------------------------------------------
def shapely_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    pa, pb = shapely.polygons(a.reshape(-1, 4, 2)), shapely.polygons(b.reshape(-1, 4, 2))
    inter = shapely.area(shapely.intersection(pa[:, None], pb[None, :]))
    union = shapely.area(pa)[:, None] + shapely.area(pb)[None, :] - inter
    return inter / union


def mmdet_11points(recalls: np.ndarray, precisions: np.ndarray) -> float:
    ap = np.zeros(1, dtype=np.float32)
    for thr in np.arange(0, 1 + 1e-3, 0.1):
        precs = precisions[recalls >= thr]
        ap[0] += precs.max() if precs.size > 0 else 0
    ap /= 11
    return float(ap[0])


def shapely_map(dets_by: dict, gts_by: dict, scores: np.ndarray, images: list[str], iou_thr: float) -> float:
    """mmrotate eval_rbbox_map (11 points, nothing ignored), IoU by shapely, recomputed on every call."""
    aps = []
    for c in CLASSES:
        tps, fps, scs, n_gt = [], [], [], 0
        for img in images:
            d_idx, d_poly = dets_by.get((img, c), (np.zeros(0, int), np.zeros((0, 8))))
            g_poly = gts_by.get((img, c), np.zeros((0, 8)))
            n_gt += len(g_poly)
            sc = scores[d_idx]
            tp = np.zeros(len(d_idx), np.float32)
            fp = np.zeros(len(d_idx), np.float32)
            if len(g_poly) == 0:
                fp[:] = 1
            elif len(d_idx):
                ious = shapely_iou_matrix(d_poly, g_poly)
                imax, iarg = ious.max(1), ious.argmax(1)
                covered = np.zeros(len(g_poly), bool)
                for i in np.argsort(-sc, kind="stable"):
                    if imax[i] >= iou_thr and not covered[iarg[i]]:
                        covered[iarg[i]] = True
                        tp[i] = 1
                    else:
                        fp[i] = 1
            tps.append(tp)
            fps.append(fp)
            scs.append(sc)
        order = np.argsort(-np.concatenate(scs), kind="stable")
        tp = np.cumsum(np.concatenate(tps)[order])
        fp = np.cumsum(np.concatenate(fps)[order])
        eps = np.finfo(np.float32).eps
        num_gts = np.array([n_gt])  # an int array as in mmrotate: recall comes out float64, precision float32
        aps.append((mmdet_11points(tp / np.maximum(num_gts, eps), tp / np.maximum(tp + fp, eps)), n_gt))
    sel = [a for a, n in aps if n > 0]
    return float(np.array(sel, dtype=np.float32).mean())


def shapely_ap_nc(dets: list[dict], gts: list[dict], images: list[str]) -> dict[str, list[float]]:
    dets_by: dict = {}
    for i, d in enumerate(dets):
        dets_by.setdefault((d["image"], d["label"]), []).append(i)
    dets_by = {k: (np.array(v), np.array([dets[i]["poly"] for i in v])) for k, v in dets_by.items()}
    gts_by: dict = {}
    for g in gts:
        gts_by.setdefault((g["image"], g["label"]), []).append(g["poly"])
    gts_by = {k: np.array(v) for k, v in gts_by.items()}
    runs = {"constant": np.ones(len(dets))}
    by_image: dict = {}
    for i, d in enumerate(dets):
        by_image.setdefault(d["image"], []).append(i)
    for seed in RANDOM_SCORE_SEEDS:
        s = np.zeros(len(dets))
        for img in images:
            torch.manual_seed(seed)
            s[by_image[img]] = torch.rand_like(torch.ones(len(by_image[img]), dtype=torch.float32)).numpy()
        runs[f"rnd:{seed}"] = s
    return {k: [shapely_map(dets_by, gts_by, s, images, t) for t in COCO_IOU_THRS] for k, s in runs.items()}


def main() -> None:
    torch.set_num_threads(1)  # shapely runs on one core; compare like for like
    dets, gts, images = make_scene()
    n_det, n_gt = len(dets), len(gts)
    print(f"scene: {N_IMAGES} images, {n_gt} ground truths, {n_det} detections, {len(CLASSES)} classes")
    assert n_det >= 10_000 and n_gt >= 10_000

    # 1. pairwise IoU per image ------------------------------------------------------------------------------
    det_img = {img: np.array([d["poly"] for d in dets if d["image"] == img]) for img in images}
    gt_img = {img: np.array([g["poly"] for g in gts if g["image"] == img]) for img in images}
    n_pairs = sum(len(det_img[i]) * len(gt_img[i]) for i in images)

    all_det = np.concatenate([det_img[i] for i in images])
    all_gt = np.concatenate([gt_img[i] for i in images])
    det_group = [i for i in images for _ in range(len(det_img[i]))]
    gt_group = [i for i in images for _ in range(len(gt_img[i]))]

    def ours_iou():
        return polygon_iou_grouped(all_det, all_gt, det_group, gt_group)

    def ours_iou_loop():
        return [polygon_iou(det_img[i], gt_img[i]) for i in images]

    def ref_iou():
        return [shapely_iou_matrix(det_img[i], gt_img[i]) for i in images]

    ref_mats = ref_iou()
    ia, ib, vals = ours_iou()
    dense = np.zeros((len(all_det), len(all_gt)))
    dense[ia, ib] = vals
    d0 = np.cumsum([0] + [len(det_img[i]) for i in images])
    g0 = np.cumsum([0] + [len(gt_img[i]) for i in images])
    iou_err = max(
        float(np.abs(dense[d0[k] : d0[k + 1], g0[k] : g0[k + 1]] - m).max()) for k, m in enumerate(ref_mats)
    )
    outside = dense.copy()
    for k in range(len(images)):
        outside[d0[k] : d0[k + 1], g0[k] : g0[k + 1]] = 0
    assert iou_err <= 1e-6 and not outside.any(), iou_err
    iou_err = max(iou_err, max(float(np.abs(x - y).max()) for x, y in zip(ours_iou_loop(), ref_mats)))
    assert iou_err <= 1e-6, iou_err
    t_ours_iou = timeit(ours_iou, repeat=5, warmup=1)
    t_ours_iou_loop = timeit(ours_iou_loop, repeat=3, warmup=1)
    t_ref_iou = timeit(ref_iou, repeat=3, warmup=0)

    # 2. AP_nc report: constant + 10 seeds, 10 IoU thresholds each ------------------------------------------
    def ours_apnc():
        return ap_nc(dets, gts, iou_thrs=COCO_IOU_THRS, classes=CLASSES, box_type="poly", image_order=images)

    t0 = time.perf_counter()
    ref = shapely_ap_nc(dets, gts, images)
    t_ref_apnc = time.perf_counter() - t0  # one run: it takes minutes
    ours = ours_apnc()
    keys = [f"AP{round(t * 100):02d}" for t in COCO_IOU_THRS]
    ours_runs = {"constant": [ours["constant"][k] for k in keys]}
    for j, seed in enumerate(RANDOM_SCORE_SEEDS):
        ours_runs[f"rnd:{seed}"] = [ours["random"][k]["values"][j] for k in keys]
    ap_err = max(abs(x - y) for k in ref for x, y in zip(ref[k], ours_runs[k]))
    assert ap_err <= 1e-6, ap_err
    t_ours_apnc = timeit(ours_apnc, repeat=3, warmup=1)

    iou_ratio = t_ref_iou["median_s"] / t_ours_iou["median_s"]
    apnc_ratio = t_ref_apnc / t_ours_apnc["median_s"]
    result = {
        "scene": {
            "images": N_IMAGES,
            "ground_truths": n_gt,
            "detections": n_det,
            "classes": len(CLASSES),
            "pairs_per_image_total": n_pairs,
        },
        "pairwise_iou": {
            "rszoo_grouped_s": t_ours_iou,
            "shapely_vectorised_s": t_ref_iou,
            "speedup": iou_ratio,
            "rszoo_per_image_loop_s": t_ours_iou_loop,
            "speedup_per_image_loop": t_ref_iou["median_s"] / t_ours_iou_loop["median_s"],
            "pairs_computed_exactly": len(ia),
            "max_abs_diff": iou_err,
        },
        "ap_nc": {
            "evaluations": len(ref) * len(COCO_IOU_THRS),
            "rszoo_s": t_ours_apnc,
            "shapely_reference_s": t_ref_apnc,
            "speedup": apnc_ratio,
            "max_abs_diff": ap_err,
            "constant": {
                "AP50": ours["constant"]["AP50"],
                "AP75": ours["constant"]["AP75"],
                "AP50:95": ours["constant"]["mAP"],
            },
            "random": {
                k: {"mean": ours["random"][k]["mean"], "std": ours["random"][k]["std"]}
                for k in ("AP50", "AP75", "mAP")
            },
        },
        "target_speedup": 10,
        "threads": {"torch": torch.get_num_threads(), "shapely": 1},
    }

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    tasks = ["pairwise IoU\n(all images, grouped)", "AP_nc report\n(11 runs x 10 thr)"]
    ours_t = [t_ours_iou["median_s"], t_ours_apnc["median_s"]]
    ref_t = [t_ref_iou["median_s"], t_ref_apnc]
    x = np.arange(2)
    ax.bar(x - 0.2, ref_t, 0.4, label="shapely (straightforward)", color="#999999")
    ax.bar(x + 0.2, ours_t, 0.4, label="rszoo (torch, vectorised)", color="#1f77b4")
    for i in range(2):
        ax.text(x[i] + 0.2, ours_t[i], f"{ref_t[i] / ours_t[i]:.0f}x", ha="center", va="bottom")
    ax.set_yscale("log")
    ax.set_ylabel("seconds (log)")
    ax.set_xticks(x, tasks)
    ax.set_title(f"{n_gt} GT / {n_det} detections, {N_IMAGES} images")
    ax.legend(loc="upper left", fontsize=8)
    save_result("detection_metrics", result, fig)


if __name__ == "__main__":
    main()
