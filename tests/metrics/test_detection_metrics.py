"""mAP / AP_nc / mF1 against straightforward re-implementations of mmrotate, DOTA_devkit and LMMRotate (shapely IoU)."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import shapely
import torch

from rszoo.metrics.detection import COCO_IOU_THRS, RANDOM_SCORE_SEEDS, ap_nc, average_precision, mean_ap, mf1

CLASSES = ["plane", "ship", "storage-tank", "harbor", "bridge"]  # harbor: dets only; bridge: GT only


# ---- reference implementations (loops, shapely) ---------------------------------------------------------------
def shapely_iou(dpolys, gpolys) -> np.ndarray:
    if not len(dpolys) or not len(gpolys):
        return np.zeros((len(dpolys), len(gpolys)))
    pa = shapely.polygons(np.asarray(dpolys, float).reshape(-1, 4, 2))
    pb = shapely.polygons(np.asarray(gpolys, float).reshape(-1, 4, 2))
    inter = shapely.area(shapely.intersection(pa[:, None], pb[None, :]))
    union = shapely.area(pa)[:, None] + shapely.area(pb)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def min_area_rect_poly(poly):
    env = shapely.oriented_envelope(shapely.MultiPoint(np.asarray(poly, float).reshape(4, 2)))
    return list(np.asarray(env.exterior.coords)[:4].reshape(-1))


def mmdet_average_precision(recalls, precisions, mode="area"):
    """mmdet.evaluation.functional.average_precision, single scale (copied logic)."""
    recalls = recalls[np.newaxis, :]
    precisions = precisions[np.newaxis, :]
    num_scales = recalls.shape[0]
    ap = np.zeros(num_scales, dtype=np.float32)
    if mode == "area":
        zeros = np.zeros((num_scales, 1), dtype=recalls.dtype)
        ones = np.ones((num_scales, 1), dtype=recalls.dtype)
        mrec = np.hstack((zeros, recalls, ones))
        mpre = np.hstack((zeros, precisions, zeros))
        for i in range(mpre.shape[1] - 1, 0, -1):
            mpre[:, i - 1] = np.maximum(mpre[:, i - 1], mpre[:, i])
        for i in range(num_scales):
            ind = np.where(mrec[i, 1:] != mrec[i, :-1])[0]
            ap[i] = np.sum((mrec[i, ind + 1] - mrec[i, ind]) * mpre[i, ind + 1])
    else:
        for i in range(num_scales):
            for thr in np.arange(0, 1 + 1e-3, 0.1):
                precs = precisions[i, recalls[i, :] >= thr]
                prec = precs.max() if precs.size > 0 else 0
                ap[i] += prec
        ap /= 11
    return ap[0]


def ref_mmrotate(
    dets, gts, classes, images, iou_thr=0.5, mode="11points", ignore_difficult=False, rbox=False
):
    """eval_rbbox_map + tpfp_default, one class and one image at a time."""
    conv = min_area_rect_poly if rbox else (lambda p: p)
    aps, ngts = [], []
    for c in classes:
        tps, fps, scores, n_gt = [], [], [], 0
        for img in images:
            d = [x for x in dets if x["image"] == img and x["label"] == c]
            g_all = [x for x in gts if x["image"] == img and x["label"] == c]
            ign_flag = [bool(x.get("difficult", 0)) and ignore_difficult for x in g_all]
            g = [x for x, f in zip(g_all, ign_flag) if not f] + [x for x, f in zip(g_all, ign_flag) if f]
            ign = [False] * (len(g_all) - sum(ign_flag)) + [True] * sum(ign_flag)
            n_gt += len(g_all) - sum(ign_flag)
            tp = np.zeros(len(d), np.float32)
            fp = np.zeros(len(d), np.float32)
            sc = np.array([x["score"] for x in d], float)
            if not g:
                fp[:] = 1
            elif d:
                ious = shapely_iou([conv(x["poly"]) for x in d], [conv(x["poly"]) for x in g])
                imax, iarg = ious.max(1), ious.argmax(1)
                covered = np.zeros(len(g), bool)
                for i in np.argsort(-sc, kind="stable"):
                    if imax[i] >= iou_thr:
                        m = iarg[i]
                        if not ign[m]:
                            if not covered[m]:
                                covered[m] = True
                                tp[i] = 1
                            else:
                                fp[i] = 1
                    else:
                        fp[i] = 1
            tps.append(tp)
            fps.append(fp)
            scores.append(sc)
        sc = np.concatenate(scores)
        order = np.argsort(-sc, kind="stable")
        tp = np.cumsum(np.concatenate(tps)[order])
        fp = np.cumsum(np.concatenate(fps)[order])
        eps = np.finfo(np.float32).eps
        recalls = tp / np.maximum(np.array(n_gt), eps)
        precisions = tp / np.maximum(tp + fp, eps)
        aps.append(mmdet_average_precision(recalls, precisions, mode))
        ngts.append(n_gt)
    sel = [a for a, n in zip(aps, ngts) if n > 0]
    return (np.array(sel).mean().item() if sel else 0.0), dict(zip(classes, [float(a) for a in aps]))


def voc_ap(rec, prec, use_07_metric=True):
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def ref_devkit(dets, gts, classes, iou_thr=0.5, use_07=True):
    """dota_evaluation_task1.voc_eval with polygon IoU, mean over all classes."""
    total, per = 0.0, {}
    for c in classes:
        recs = {}
        for g in gts:
            if g["label"] == c:
                r = recs.setdefault(g["image"], {"poly": [], "difficult": [], "det": []})
                r["poly"].append(g["poly"])
                r["difficult"].append(bool(g.get("difficult", 0)))
                r["det"].append(False)
        npos = sum(not d for r in recs.values() for d in r["difficult"])
        d = [x for x in dets if x["label"] == c]
        conf = np.array([x["score"] for x in d], float)
        order = np.argsort(-conf, kind="stable")
        tp, fp = np.zeros(len(d)), np.zeros(len(d))
        for k, i in enumerate(order):
            r = recs.get(d[i]["image"])
            ovmax = -np.inf
            if r and r["poly"]:
                ov = shapely_iou([d[i]["poly"]], r["poly"])[0]
                ovmax, jmax = ov.max(), ov.argmax()
            if ovmax > iou_thr:
                if not r["difficult"][jmax]:
                    if not r["det"][jmax]:
                        tp[k] = 1
                        r["det"][jmax] = True
                    else:
                        fp[k] = 1
            else:
                fp[k] = 1
        fp, tp = np.cumsum(fp), np.cumsum(tp)
        with np.errstate(divide="ignore", invalid="ignore"):
            rec = tp / float(npos)
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        with np.errstate(invalid="ignore"):
            ap = voc_ap(rec, prec, use_07)
        per[c] = ap
        total = total + ap
    return total / len(classes), per


# ---- scene generator -----------------------------------------------------------------------------------------
def rect(cx, cy, w, h, a):
    c, s = math.cos(a), math.sin(a)
    pts = [(w / 2, h / 2), (w / 2, -h / 2), (-w / 2, -h / 2), (-w / 2, h / 2)]
    return [v for x, y in pts for v in (cx + x * c - y * s, cy + x * s + y * c)]


def random_scene(seed: int, n_images: int = 12, score_decimals: int | None = 1, jitter: float = 3.0):
    rng = np.random.default_rng(seed)
    gts, dets = [], []
    for k in range(n_images):
        img = f"img{k:02d}"
        kind = k % 6
        n_obj = 0 if kind == 5 else int(rng.integers(1, 9))
        objs = []
        for _ in range(n_obj):
            label = str(rng.choice(["plane", "ship", "storage-tank", "bridge"]))
            poly = rect(
                rng.uniform(0, 200),
                rng.uniform(0, 200),
                rng.uniform(8, 40),
                rng.uniform(8, 40),
                rng.uniform(-1.5, 1.5),
            )
            g = {"image": img, "label": label, "poly": poly, "difficult": int(rng.random() < 0.2)}
            gts.append(g)
            objs.append(g)
        if kind == 4:
            continue  # ground truth only
        for g in objs:
            if g["label"] == "bridge":
                continue
            for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):  # misses, hits and duplicates
                while True:  # keep the jittered quad simple, so shapely (the reference) accepts it
                    poly = list(np.asarray(g["poly"]) + rng.normal(0, jitter, 8))
                    if shapely.Polygon(np.reshape(poly, (4, 2))).is_valid:
                        break
                lab = g["label"] if rng.random() > 0.1 else "harbor"
                dets.append({"image": img, "label": lab, "poly": poly})
        for _ in range(int(rng.integers(0, 4))):  # false positives (the empty image gets some too)
            dets.append(
                {
                    "image": img,
                    "label": str(rng.choice(["plane", "ship", "harbor"])),
                    "poly": rect(rng.uniform(0, 200), rng.uniform(0, 200), 20, 12, rng.uniform(-1, 1)),
                }
            )
    for d in dets:
        s = rng.random()
        d["score"] = round(s, score_decimals) if score_decimals is not None else s  # rounding makes ties
    images = list(dict.fromkeys([g["image"] for g in gts] + [d["image"] for d in dets]))
    return dets, gts, images


# ---- mean_ap parity ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ap_method", ["11points", "area"])
@pytest.mark.parametrize("iou_thr", [0.5, 0.75])
def test_mean_ap_mmrotate_mode_matches_reference(seed, ap_method, iou_thr):
    dets, gts, images = random_scene(seed)
    ours = mean_ap(dets, gts, iou_thr=iou_thr, ap_method=ap_method, classes=CLASSES, box_type="poly")
    ref_map, ref_per = ref_mmrotate(dets, gts, CLASSES, images, iou_thr, ap_method)
    assert ours["mAP"] == pytest.approx(ref_map, abs=1e-6)
    for c in CLASSES:
        assert ours["per_class"][c]["ap"] == pytest.approx(ref_per[c], abs=1e-7)
    assert ours["per_class"]["harbor"]["num_gts"] == 0 and ours["per_class"]["bridge"]["num_dets"] == 0


@pytest.mark.parametrize("seed", [3, 4])
def test_mean_ap_mmrotate_ignore_difficult_and_rbox(seed):
    dets, gts, images = random_scene(seed)
    ours = mean_ap(dets, gts, classes=CLASSES, box_type="poly", ignore_difficult=True)
    assert ours["mAP"] == pytest.approx(
        ref_mmrotate(dets, gts, CLASSES, images, ignore_difficult=True)[0], abs=1e-6
    )
    # rbox: both sides become minimum-area rectangles (RSCoVLM's default qbox -> rbox evaluation). Small jitter keeps
    # every hull a true quad: for a triangle hull the minimum-area rectangle is not unique (any side with acute base
    # angles gives area 2 x triangle), and shapely and we may pick different ones.
    dets, gts, images = random_scene(seed, jitter=0.5)
    ours = mean_ap(dets, gts, classes=CLASSES)  # mmrotate mode defaults to box_type="rbox"
    assert ours["box_type"] == "rbox"
    assert ours["mAP"] == pytest.approx(ref_mmrotate(dets, gts, CLASSES, images, rbox=True)[0], abs=1e-6)


@pytest.mark.parametrize("seed", [0, 5, 6])
@pytest.mark.parametrize("use_07", [True, False])
def test_mean_ap_dota_devkit_mode_matches_voc_eval(seed, use_07):
    dets, gts, _ = random_scene(seed)
    ours = mean_ap(dets, gts, mode="dota_devkit", classes=CLASSES, ap_method="11points" if use_07 else "area")
    ref_map, ref_per = ref_devkit(dets, gts, CLASSES, 0.5, use_07)
    if not use_07:  # the devkit's area form turns a class without ground truth into NaN; we report 0
        ref_per = {c: 0.0 if np.isnan(v) else v for c, v in ref_per.items()}
        ref_map = sum(ref_per.values()) / len(CLASSES)
    assert ours["mAP"] == pytest.approx(ref_map, abs=1e-9)
    for c in CLASSES:
        assert ours["per_class"][c]["ap"] == pytest.approx(ref_per[c], abs=1e-9)
    assert ours["per_class"]["harbor"]["ap"] == 0.0  # no ground truth: counts as 0 in the mean


# ---- hand-checkable cases ------------------------------------------------------------------------------------
SQ = [0, 0, 10, 0, 10, 10, 0, 10]


def _g(poly, img="a", label="ship", difficult=0):
    return {"image": img, "label": label, "poly": list(poly), "difficult": difficult}


def _d(poly, score, img="a", label="ship"):
    return {"image": img, "label": label, "poly": list(poly), "score": score}


def shifted(poly, dx=0.0, dy=0.0):
    return [v + (dx if i % 2 == 0 else dy) for i, v in enumerate(poly)]


@pytest.mark.parametrize("mode", ["mmrotate", "dota_devkit"])
def test_hand_cases(mode):
    gts = [_g(SQ), _g(shifted(SQ, 50), img="b")]
    perfect = [_d(SQ, 0.9), _d(shifted(SQ, 50), 0.8, img="b")]
    assert mean_ap(perfect, gts, mode=mode)["mAP"] == pytest.approx(1.0, abs=1e-12)
    # a false positive ranked after every true positive costs nothing; ranked first it caps precision at 2/3
    assert mean_ap([*perfect, _d(shifted(SQ, 100), 0.1)], gts, mode=mode)["mAP"] == pytest.approx(
        1.0, abs=1e-12
    )
    r = mean_ap([_d(shifted(SQ, 100), 0.95), *perfect], gts, mode=mode)
    assert r["per_class"]["ship"]["fp"] == 1
    assert r["mAP"] == pytest.approx(
        2 / 3, abs=1e-7
    )  # P/R: (0, 0), (1/2, 1/2), (2/3, 1) -> 2/3 at every point
    # a duplicate detection of a matched object is a false positive
    r = mean_ap([_d(SQ, 0.9), _d(SQ, 0.8)], [_g(SQ)], mode=mode)
    assert (r["per_class"]["ship"]["tp"], r["per_class"]["ship"]["fp"]) == (1, 1)


def test_eleven_point_threshold_quirk():
    # 10 objects, only 3 found: recall tops out at exactly 3/10, which is below np.arange's 0.30000000000000004
    gts = [_g(shifted(SQ, 20 * k)) for k in range(10)]
    dets = [_d(shifted(SQ, 20 * k), 1.0) for k in range(3)]
    for mode in ("mmrotate", "dota_devkit"):
        assert mean_ap(dets, gts, mode=mode)["mAP"] == pytest.approx(3 / 11, abs=1e-7)  # not 4/11
    assert average_precision(np.array([0.3]), np.array([1.0])) == pytest.approx(3 / 11)


def test_strict_threshold_and_difficult_rules():
    half = [0, 0, 10, 0, 10, 5, 0, 5]  # IoU with SQ is exactly 0.5
    r = mean_ap([_d(half, 1.0)], [_g(SQ)], mode="mmrotate", box_type="poly")
    assert r["per_class"]["ship"]["tp"] == 1  # >= 0.5
    r = mean_ap([_d(half, 1.0)], [_g(SQ)], mode="dota_devkit")
    assert r["per_class"]["ship"]["fp"] == 1  # > 0.5 fails
    # difficult: devkit ignores the object and the detection on it; mmrotate (diff_thr=100) counts it
    gts = [_g(SQ, difficult=1), _g(shifted(SQ, 50))]
    dets = [_d(SQ, 0.9), _d(shifted(SQ, 50), 0.8)]
    dk = mean_ap(dets, gts, mode="dota_devkit")["per_class"]["ship"]
    assert (dk["num_gts"], dk["tp"], dk["fp"]) == (1, 1, 0) and dk["ap"] == pytest.approx(1.0)
    mm = mean_ap(dets, gts, mode="mmrotate")["per_class"]["ship"]
    assert (mm["num_gts"], mm["tp"], mm["fp"]) == (2, 2, 0)


def test_class_without_ground_truth_and_mean_rules():
    gts = [_g(SQ)]
    dets = [_d(SQ, 0.9), _d(shifted(SQ, 30), 0.9, label="plane")]
    assert mean_ap(dets, gts, mode="mmrotate")["mAP"] == 1.0  # plane has no GT: left out of the mean
    assert mean_ap(dets, gts, mode="dota_devkit", classes=["plane", "ship"])["mAP"] == pytest.approx(0.5)
    r = mean_ap(dets, gts, classes=["ship"])
    assert r["dropped_detections"] == 1 and r["mAP"] == 1.0
    assert mean_ap([], [], classes=["ship"])["mAP"] == 0.0


def test_clear_errors_for_bad_records():
    with pytest.raises(KeyError, match=r"detections\[0\]: missing key 'score'"):
        mean_ap([{"image": "a", "label": "ship", "poly": SQ}], [_g(SQ)])
    with pytest.raises(ValueError, match=r"ground_truths\[1\]\['poly'\]: expected 8 numbers"):
        mean_ap([], [_g(SQ), {"image": "a", "label": "ship", "poly": [1, 2, 3, 4]}])
    with pytest.raises(ValueError, match="mode must be one of"):
        mean_ap([], [], mode="voc")


# ---- AP_nc ---------------------------------------------------------------------------------------------------
def test_torch_rand_is_prefix_consistent():
    for n in (1, 7, 16, 17, 100, 1000):
        torch.manual_seed(42)
        a = torch.rand_like(torch.ones(n))
        g = torch.Generator().manual_seed(42)
        assert torch.equal(a, torch.rand(2000, generator=g)[:n])


def _with_scores(dets, scores):
    return [{**d, "score": float(s)} for d, s in zip(dets, scores)]


def test_ap_nc_constant_matches_reference_over_coco_thresholds():
    dets, gts, images = random_scene(7, score_decimals=None)
    r = ap_nc(dets, gts, iou_thrs=COCO_IOU_THRS, classes=CLASSES, box_type="poly", seeds=())
    ones = _with_scores(dets, np.ones(len(dets)))
    per_thr = [ref_mmrotate(ones, gts, CLASSES, images, t)[0] for t in COCO_IOU_THRS]
    assert r["constant"]["AP50"] == pytest.approx(per_thr[0], abs=1e-6)
    assert r["constant"]["AP75"] == pytest.approx(per_thr[5], abs=1e-6)
    assert r["constant"]["mAP"] == pytest.approx(sum(per_thr) / 10, abs=1e-6)
    assert r["constant"]["AP50"] == pytest.approx(mean_ap(ones, gts, classes=CLASSES, box_type="poly")["mAP"])


def test_ap_nc_depends_on_order_exactly_like_the_reference():
    dets, gts, images = random_scene(8, score_decimals=None)
    ones = _with_scores(dets, np.ones(len(dets)))
    rev = images[::-1]
    r = ap_nc(dets, gts, classes=CLASSES, box_type="poly", seeds=(), image_order=rev)
    assert r["constant"]["AP50"] == pytest.approx(ref_mmrotate(ones, gts, CLASSES, rev)[0], abs=1e-6)
    # reversing the in-image order of the detections
    flipped = [d for img in images for d in [x for x in dets if x["image"] == img][::-1]]
    r2 = ap_nc(flipped, gts, classes=CLASSES, box_type="poly", seeds=(), image_order=images)
    ref2 = ref_mmrotate(_with_scores(flipped, np.ones(len(flipped))), gts, CLASSES, images)[0]
    assert r2["constant"]["AP50"] == pytest.approx(ref2, abs=1e-6)
    base = ap_nc(dets, gts, classes=CLASSES, box_type="poly", seeds=())["constant"]["AP50"]
    assert len({round(base, 9), round(r["constant"]["AP50"], 9), round(r2["constant"]["AP50"], 9)}) > 1


def test_ap_nc_random_scores_match_per_image_reseeding():
    dets, gts, images = random_scene(9, score_decimals=None)
    seeds = RANDOM_SCORE_SEEDS[:4]
    r = ap_nc(dets, gts, iou_thrs=(0.5, 0.75), classes=CLASSES, box_type="poly", seeds=seeds)
    ref_vals = []
    for seed in seeds:
        scored = []
        for img in images:  # LMMRotate: random.seed(seed); torch.manual_seed(seed); rand_like, per image
            mine = [d for d in dets if d["image"] == img]
            torch.manual_seed(seed)
            s = torch.rand_like(torch.ones(len(mine), dtype=torch.float32)).numpy()
            scored += _with_scores(mine, s)
        ref_vals.append(ref_mmrotate(scored, gts, CLASSES, images, 0.5)[0])
    np.testing.assert_allclose(r["random"]["AP50"]["values"], ref_vals, atol=1e-6)
    assert r["random"]["AP50"]["mean"] == pytest.approx(np.mean(ref_vals), abs=1e-6)
    assert r["random"]["AP50"]["std"] == pytest.approx(np.std(ref_vals), abs=1e-6)
    assert r["random"]["seeds"] == list(seeds) and len(r["random"]["mAP"]["values"]) == 4
    one = ap_nc(dets, gts, classes=CLASSES, box_type="poly", seeds=seeds, reseed_per_image=False)
    assert one["random"]["AP50"]["values"] != r["random"]["AP50"]["values"]


def test_ap_nc_score_threshold_filters_before_replacing_scores():
    gts = [_g(SQ)]
    dets = [_d(shifted(SQ, 40), 0.2), _d(SQ, 0.9)]
    assert ap_nc(dets, gts, seeds=())["constant"]["AP50"] == pytest.approx(0.5)  # FP first in output order
    assert ap_nc(dets, gts, seeds=(), score_thr=0.5)["constant"]["AP50"] == 1.0


# ---- mF1 -----------------------------------------------------------------------------------------------------
def ref_greedy_f1(dets, gts, classes, thr=0.5):
    tp = dict.fromkeys(classes, 0)
    for img in {x["image"] for x in dets + gts}:
        for c in classes:
            d = [x for x in dets if x["image"] == img and x["label"] == c]
            g = [x for x in gts if x["image"] == img and x["label"] == c]
            ious = shapely_iou([x["poly"] for x in d], [x["poly"] for x in g])
            pairs = sorted(
                (-ious[i, j], i, j) for i in range(len(d)) for j in range(len(g)) if ious[i, j] >= thr
            )
            ud, ug = set(), set()
            for _, i, j in pairs:
                if i not in ud and j not in ug:
                    ud.add(i)
                    ug.add(j)
                    tp[c] += 1
    f1s = []
    for c in classes:
        nd = sum(x["label"] == c for x in dets)
        ng = sum(x["label"] == c for x in gts)
        if nd + ng == 0:
            continue
        p, r = (tp[c] / nd if nd else 0.0), (tp[c] / ng if ng else 0.0)
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
    return float(np.mean(f1s)), tp


def ref_confusion_f1(dets, gts, classes, thr=0.5, images=None):
    """LMMRotate f1_metric.calculate_confusion_matrix + confusion_matrix_to_ap_ar_f1 (loops, float32 torch)."""
    idx = {c: k for k, c in enumerate(classes)}
    images = images or list(dict.fromkeys([x["image"] for x in gts + dets]))
    labels = [idx[g["label"]] for g in gts]
    n_c = (max(labels) + 1) if labels else 0
    cm = torch.zeros(n_c + 1, n_c + 1)
    for img in images:
        g = [x for x in gts if x["image"] == img]
        d = [x for x in dets if x["image"] == img]
        g_lab = [idx[x["label"]] for x in g]
        true_pos = torch.zeros(len(g))
        for det_label in sorted({idx[x["label"]] for x in d}):
            dd = [x for x in d if idx[x["label"]] == det_label]
            ious = shapely_iou([x["poly"] for x in dd], [x["poly"] for x in g])
            for i in range(len(dd)):
                match = 0
                for j, gl in enumerate(g_lab):
                    if ious[i, j] >= thr:
                        match += 1
                        if gl == det_label:
                            true_pos[j] += 1
                        cm[gl, det_label] += 1
                if match == 0:
                    cm[-1, det_label] += 1
        for n, gl in zip(true_pos, g_lab):
            if n == 0:
                cm[gl, -1] += 1
    tp = torch.diag(cm)
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    p = tp / torch.where(tp + fp == 0, 1, tp + fp)
    r = tp / torch.where(tp + fn == 0, 1, tp + fn)
    mp, mr = p.mean(), r.mean()
    return (2 * mp * mr / (mp + mr)).item(), mp.item(), mr.item()


@pytest.mark.parametrize("seed", [0, 10])
def test_mf1_variants_match_references(seed):
    dets, gts, _ = random_scene(seed)
    ours = mf1(dets, gts, classes=CLASSES)
    ref, tp = ref_greedy_f1(dets, gts, CLASSES)
    assert ours["mF1"] == pytest.approx(ref, abs=1e-12)
    assert {c: v["tp"] for c, v in ours["per_class"].items()} == {c: tp[c] for c in ours["per_class"]}
    conf = mf1(dets, gts, classes=CLASSES, variant="confusion")
    f, p, r = ref_confusion_f1(dets, gts, CLASSES)
    assert (conf["mF1"], conf["mP"], conf["mR"]) == pytest.approx((f, p, r), abs=1e-6)


def test_mf1_confusion_unit_cases():
    classes = ["plane", "ship", "tank"]
    gts = [_g(SQ, label="plane"), _g(shifted(SQ, 30), label="ship")]
    perfect = [_d(SQ, 1, label="plane"), _d(shifted(SQ, 30), 1, label="ship")]
    r = mf1(perfect, gts, classes=classes, variant="confusion")
    assert r["mF1"] == pytest.approx(2 / 3)  # C / (C + 1) with C = 2 (ids 0, 1 have ground truth)
    assert mf1(perfect, gts, classes=classes)["mF1"] == 1.0
    # a duplicate counts as a second TP in the confusion variant, as an FP in the greedy one
    dup = [*perfect, _d(SQ, 1, label="plane")]
    assert mf1(dup, gts, classes=classes, variant="confusion")["confusion_matrix"][0][0] == 2
    assert mf1(dup, gts, classes=classes)["per_class"]["plane"]["precision"] == 0.5
    # one detection over two same-class ground truths counts against both
    two = [_g([0, 0, 10, 0, 10, 10, 0, 10], label="plane"), _g([0, 0, 10, 0, 10, 9, 0, 9], label="plane")]
    cm = mf1([_d(SQ, 1, label="plane")], two, classes=classes, variant="confusion")["confusion_matrix"]
    assert cm[0][0] == 2 and cm[0][1] == 0
    # a cross-class overlap lands off the diagonal
    cm = mf1([_d(SQ, 1, label="ship")], gts, classes=classes, variant="confusion")["confusion_matrix"]
    assert cm[0][1] == 1 and cm[0][2] == 1 and cm[1][2] == 1  # plane seen as ship; plane and ship missed
    # a ground-truth label set missing the top id changes C: only "plane" (id 0) -> C = 1
    r = mf1([_d(SQ, 1, label="plane")], [_g(SQ, label="plane")], classes=classes, variant="confusion")
    assert r["labels"] == ["plane", "background"] and r["mF1"] == pytest.approx(0.5)
    f, _, _ = ref_confusion_f1(
        [_d(SQ, 1, label="plane"), _d(shifted(SQ, 50), 1, label="ship")], [_g(SQ, label="plane")], classes
    )
    got = mf1(
        [_d(SQ, 1, label="plane"), _d(shifted(SQ, 50), 1, label="ship")],
        [_g(SQ, label="plane")],
        classes=classes,
        variant="confusion",
    )
    assert got["mF1"] == pytest.approx(f, abs=1e-6)  # ship id == C lands in the background column, as there


# ---- registry ------------------------------------------------------------------------------------------------
@pytest.mark.skipif(
    importlib.util.find_spec("rszoo.metrics.grounding") is None,
    reason="the METRICS registry also loads rszoo.metrics.grounding, not written yet",
)
def test_registered_in_metrics():
    from rszoo.registry import METRICS

    assert METRICS.get("mean_ap") is mean_ap and METRICS.get("ap_nc") is ap_nc and METRICS.get("mf1") is mf1


def test_invalid_detection_geometry_is_counted():
    dets = [
        _d(SQ, 0.9),
        _d([0, 0, 1, 1, 2, 2, 3, 3], 0.8),
        _d([0, 0, 10, 10, 10, 0, 0, 6], 0.7),
    ]  # flat, bow-tie
    r = mean_ap(dets, [_g(SQ)], box_type="poly")
    assert r["invalid_detections"] == {
        "degenerate": 1,
        "self_intersecting": 2,
    }  # the flat quad folds back too
    assert r["per_class"]["ship"]["tp"] == 1
    assert ap_nc(dets, [_g(SQ)], seeds=())["invalid_detections"]["degenerate"] == 1
