"""Box reward functions vs independent references: naive per-pixel R_pos, shapely IoU, hand-computed GIoU/DIoU,
VLM-R1's IoU, the analytic erf anchors and the spatial-consistency weight table from the notes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from shapely.geometry import box as shapely_box

from rszoo.rewards.functional import (
    center_distance,
    diou,
    giou,
    iou,
    positional,
    positional_continuous,
    spatial_consistency_weight,
    vlmr1_iou,
)

# -- R_pos references -------------------------------------------------------------------------------------------


def naive_rpos(pred, gt, alpha=2.5, image_size=None) -> float:
    """R_pos straight from eq. 2-4: evaluate the kernel at every pixel centre of the box (full meshgrid)."""
    x1, y1, x2, y2 = pred
    if not (x2 > x1 and y2 > y1):
        return 0.0
    xs = np.arange(math.floor(x1), math.ceil(x2))
    ys = np.arange(math.floor(y1), math.ceil(y2))
    if image_size is not None:
        xs = xs[(xs >= 0) & (xs < image_size[0])]
        ys = ys[(ys >= 0) & (ys < image_size[1])]
    if xs.size == 0 or ys.size == 0:
        return 0.0
    gx1, gy1, gx2, gy2 = gt
    cx, cy = (gx1 + gx2) / 2, (gy1 + gy2) / 2
    sx, sy = alpha * max(gx2 - gx1, 1.0) / 2, alpha * max(gy2 - gy1, 1.0) / 2
    X, Y = np.meshgrid(xs + 0.5, ys + 0.5, indexing="xy")
    kernel = np.exp(-((X - cx) ** 2) / (2 * sx**2) - (Y - cy) ** 2 / (2 * sy**2))
    kernel_max = 1.0  # exp(0) at the GT centre: the max over the plane
    return float((kernel / kernel_max).mean())


def loop_rpos(pred, gt, alpha=2.5) -> float:
    """The same with a plain double loop (cross-checks the meshgrid reference on small boxes)."""
    x1, y1, x2, y2 = pred
    cx, cy = (gt[0] + gt[2]) / 2, (gt[1] + gt[3]) / 2
    sx, sy = alpha * (gt[2] - gt[0]) / 2, alpha * (gt[3] - gt[1]) / 2
    total, count = 0.0, 0
    for i in range(math.floor(x1), math.ceil(x2)):
        for j in range(math.floor(y1), math.ceil(y2)):
            total += math.exp(-((i + 0.5 - cx) ** 2) / (2 * sx * sx) - ((j + 0.5 - cy) ** 2) / (2 * sy * sy))
            count += 1
    return total / count


def random_boxes(rng: np.random.Generator, n: int, size: float, integer: bool) -> np.ndarray:
    xy = rng.uniform(-0.1 * size, size, (n, 2))
    wh = rng.uniform(0.5, 0.4 * size, (n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    return np.round(boxes) if integer else boxes


def test_rpos_equals_naive_per_pixel_mean_on_random_boxes() -> None:
    rng = np.random.default_rng(0)
    preds, gts = random_boxes(rng, 300, 300, integer=False), random_boxes(rng, 300, 300, integer=False)
    for pred, gt in zip(preds, gts):
        assert positional(pred, gt) == pytest.approx(naive_rpos(pred, gt), abs=1e-9, rel=1e-9)
        assert positional(pred, gt, image_size=(256, 200)) == pytest.approx(
            naive_rpos(pred, gt, image_size=(256, 200)), abs=1e-9, rel=1e-9
        )
    ours = positional(preds, gts, alpha=1.3)
    assert ours.shape == (300,)
    np.testing.assert_allclose(
        ours, [naive_rpos(p, g, alpha=1.3) for p, g in zip(preds, gts)], rtol=1e-9, atol=1e-12
    )


def test_naive_references_agree_with_each_other() -> None:
    for pred, gt in [([3, 4, 17, 12], [5, 5, 25, 15]), ([0.3, 1.7, 9.2, 6.1], [2, 2, 8, 9])]:
        assert naive_rpos(pred, gt) == pytest.approx(loop_rpos(pred, gt), rel=1e-12)


def test_rpos_analytic_anchors_from_the_notes() -> None:
    gt = [0, 0, 100, 50]
    # perfect box: continuous closed form 0.9486; the pixel-centre mean is the midpoint rule of the same integral,
    # which overestimates a concave (near-centre) Gaussian by O((1 / sigma)^2): 0.948613 vs 0.948601
    assert positional_continuous(gt, gt) == pytest.approx(0.9486, abs=5e-5)
    assert positional(gt, gt) == pytest.approx(0.9486, abs=5e-5)
    assert positional(gt, gt) - positional_continuous(gt, gt) == pytest.approx(1.2e-5, abs=2e-6)
    # 20 x 20 box at the centre of the 100 x 50 GT
    assert positional([40, 15, 60, 35], gt) == pytest.approx(0.9947, abs=5e-5)
    # 200 px (per axis) away from the GT: about 0.002; IoU is 0 but R_pos is not
    assert positional([200, 200, 300, 250], gt) == pytest.approx(0.0022, abs=5e-5)
    assert iou([200, 200, 300, 250], gt) == 0.0
    # the full 800 x 800 image against a 100 x 50 GT
    assert positional([0, 0, 800, 800], [100, 100, 200, 150]) == pytest.approx(0.0663, abs=5e-5)


def test_rpos_discrete_matches_continuous_on_1000_random_integer_boxes() -> None:
    rng = np.random.default_rng(1)
    preds, gts = random_boxes(rng, 1000, 800, integer=True), random_boxes(rng, 1000, 800, integer=True)
    gts[:, 2:] = np.maximum(gts[:, 2:], gts[:, :2] + 4)  # GT at least 4 px, as in RSVG datasets
    diffs = [abs(positional(p, g) - positional_continuous(p, g)) for p, g in zip(preds, gts)]
    assert max(diffs) < 1e-3


def test_rpos_peak_is_one_and_it_rises_towards_the_target() -> None:
    gt = [0, 0, 101, 51]  # centre (50.5, 25.5) is the centre of pixel (50, 25)
    assert positional([50, 25, 51, 26], gt) == 1.0
    far = [positional([x, 200, x + 40, 240], gt) for x in (700, 500, 300, 150)]
    assert all(a < b for a, b in itertools.pairwise(far))  # monotone while IoU stays 0
    assert all(iou([x, 200, x + 40, 240], gt) == 0.0 for x in (700, 500, 300, 150))


def test_rpos_edge_cases() -> None:
    gt = [10, 10, 50, 30]
    assert positional([20, 20, 20, 40], gt) == 0.0  # zero width
    assert positional([30, 20, 20, 40], gt) == 0.0  # inverted
    assert positional([float("nan"), 0, 5, 5], gt) == 0.0
    assert positional([900, 900, 950, 950], gt, image_size=(800, 800)) == 0.0  # entirely outside the image
    inside_part = positional([-20, -20, 30, 30], gt, image_size=(800, 800))
    assert inside_part == pytest.approx(positional([0, 0, 30, 30], gt), rel=1e-12)  # clipped to the image
    degenerate_gt = positional([10, 10, 12, 12], [11, 11, 11, 11])  # zero-size GT: sigma = alpha / 2
    assert 0 < degenerate_gt <= 1 and degenerate_gt == pytest.approx(
        naive_rpos([10, 10, 12, 12], [11, 11, 11, 11])
    )
    with pytest.raises(ValueError, match="alpha"):
        positional(gt, gt, alpha=0)


def test_rpos_accepts_torch_tensors() -> None:
    pred, gt = torch.tensor([3.0, 4.0, 17.0, 12.0]), torch.tensor([5.0, 5.0, 25.0, 15.0])
    assert positional(pred, gt) == pytest.approx(naive_rpos([3, 4, 17, 12], [5, 5, 25, 15]), rel=1e-12)


# -- IoU family -------------------------------------------------------------------------------------------------


def shapely_iou(a, b) -> float:
    pa, pb = shapely_box(*a), shapely_box(*b)
    union = pa.union(pb).area
    return pa.intersection(pb).area / union if union > 0 else 0.0


def test_iou_equals_shapely_on_random_boxes() -> None:
    rng = np.random.default_rng(2)
    preds, gts = random_boxes(rng, 500, 100, integer=False), random_boxes(rng, 500, 100, integer=False)
    expected = [shapely_iou(p, g) for p, g in zip(preds, gts)]
    np.testing.assert_allclose(iou(preds, gts), expected, rtol=1e-12, atol=1e-12)
    assert iou(preds[0], gts[0]) == pytest.approx(expected[0], rel=1e-12)
    assert isinstance(iou(preds[0].tolist(), gts[0].tolist()), float)


def test_giou_and_diou_against_hand_computed_values() -> None:
    # overlapping: A=[0,0,10,10], B=[5,5,15,15]: I=25, U=175, C=15*15=225; rho^2 = 5^2+5^2 = 50, c^2 = 15^2+15^2 = 450
    assert giou([0, 0, 10, 10], [5, 5, 15, 15]) == pytest.approx(25 / 175 - (225 - 175) / 225, rel=1e-12)
    assert diou([0, 0, 10, 10], [5, 5, 15, 15]) == pytest.approx(25 / 175 - 50 / 450, rel=1e-12)
    # disjoint: A=[0,0,10,10], B=[20,0,30,10]: I=0, U=200, C=300; rho^2=400, c^2=30^2+10^2=1000
    assert giou([0, 0, 10, 10], [20, 0, 30, 10]) == pytest.approx(-100 / 300, rel=1e-12)
    assert diou([0, 0, 10, 10], [20, 0, 30, 10]) == pytest.approx(-0.4, rel=1e-12)
    # identical boxes
    assert giou([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0) and diou(
        [1, 2, 3, 4], [1, 2, 3, 4]
    ) == pytest.approx(1.0)
    # contained: A=[2,2,4,4] in B=[0,0,10,10]: IoU 4/100, C = U -> GIoU = IoU; rho = 2*sqrt(2)... centres (3,3),(5,5)
    assert giou([2, 2, 4, 4], [0, 0, 10, 10]) == pytest.approx(0.04, rel=1e-12)
    assert diou([2, 2, 4, 4], [0, 0, 10, 10]) == pytest.approx(0.04 - 8 / 200, rel=1e-12)


def test_center_distance_normalisations() -> None:
    # centres (5,5) and (35,45): d = 50
    assert center_distance([0, 0, 10, 10], [30, 40, 40, 50], image_size=(100, 100)) == pytest.approx(
        1 - 50 / math.hypot(100, 100)
    )
    assert center_distance([0, 0, 10, 10], [30, 40, 40, 50]) == pytest.approx(1 - 50 / math.hypot(40, 50))
    assert center_distance([0, 0, 10, 10], [0, 0, 10, 10], image_size=(100, 100)) == 1.0
    assert center_distance([0, 0, 1, 1], [99, 99, 100, 100], image_size=(100, 100)) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="image_size"):
        center_distance([0, 0, 1, 1], [0, 0, 1, 1], image_size=(0, 10))


def test_invalid_predictions_score_zero_everywhere() -> None:
    gt = [0, 0, 10, 10]
    for bad in ([5, 5, 5, 8], [8, 0, 2, 10], [float("nan"), 0, 1, 1], [0, 0, float("inf"), 1]):
        for fn in (iou, giou, diou, center_distance):
            assert fn(bad, gt) == 0.0, (fn.__name__, bad)


def ref_vlmr1_iou(box1, box2) -> float:
    """Qwen2VLModule.iou_reward's inner iou + its except-Exception -> 0 (om-ai-lab/VLM-R1)."""
    try:
        inter_x1, inter_y1 = max(box1[0], box2[0]), max(box1[1], box2[1])
        inter_x2, inter_y2 = min(box1[2] - 1, box2[2] - 1), min(box1[3] - 1, box2[3] - 1)
        if inter_x1 < inter_x2 and inter_y1 < inter_y2:
            inter = (inter_x2 - inter_x1 + 1) * (inter_y2 - inter_y1 + 1)
        else:
            inter = 0
        union = (box1[2] - box1[0]) * (box1[3] - box1[1]) + (box2[2] - box2[0]) * (box2[3] - box2[1]) - inter
        return float(inter) / union
    except Exception:
        return 0.0


VLMR1_TABLE = [
    ([0, 0, 10, 10], [5, 5, 15, 15]),  # normal overlap
    ([0, 0, 10, 10], [9, 0, 19, 10]),  # 1 px overlap in x -> 0 for VLM-R1
    ([0, 0, 10, 10], [8, 0, 18, 10]),  # 2 px overlap
    ([0, 0, 10, 10], [10, 0, 20, 10]),  # touching
    ([0, 0, 10, 10], [0, 9.5, 10, 20]),  # 0.5 px overlap in y
    ([5, 5, 5, 9], [0, 0, 10, 10]),  # zero-area prediction
    ([10, 10, 0, 0], [0, 0, 10, 10]),  # inverted prediction
    ([10, 0, 0, 10], [0, 0, 10, 10]),  # inverted in x only
    ([3, 3, 3, 3], [3, 3, 3, 3]),  # union 0 -> ZeroDivisionError -> 0
    ([0.0, 0.0, 101.5, 50.25], [1.0, 2.0, 100.0, 48.0]),  # floats after resize_bbox
]


@pytest.mark.parametrize(("pred", "gt"), VLMR1_TABLE)
def test_vlmr1_iou_matches_the_reference(pred, gt) -> None:
    assert vlmr1_iou(pred, gt) == pytest.approx(ref_vlmr1_iou(pred, gt), abs=1e-12)


def test_vlmr1_iou_differs_from_continuous_only_by_the_one_pixel_rule() -> None:
    assert vlmr1_iou([0, 0, 10, 10], [9, 0, 19, 10]) == 0.0 < iou([0, 0, 10, 10], [9, 0, 19, 10])
    assert vlmr1_iou([0, 0, 10, 10], [5, 5, 15, 15]) == iou([0, 0, 10, 10], [5, 5, 15, 15])


def test_torch_variants_equal_numpy() -> None:
    rng = np.random.default_rng(3)
    preds, gts = random_boxes(rng, 64, 50, integer=False), random_boxes(rng, 64, 50, integer=False)
    preds[5] = np.nan
    for fn in (iou, giou, diou, vlmr1_iou, center_distance):
        out = fn(torch.tensor(preds, dtype=torch.float64), torch.tensor(gts, dtype=torch.float64))
        assert isinstance(out, torch.Tensor) and out.shape == (64,)
        np.testing.assert_allclose(out.numpy(), fn(preds, gts), rtol=1e-12, atol=1e-12)
    pred = torch.tensor([[0.0, 0.0, 10.0, 10.0]], requires_grad=True)
    iou(pred, torch.tensor([[5.0, 0.0, 15.0, 10.0]])).sum().backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_box_shape_is_checked() -> None:
    with pytest.raises(ValueError, match="4 values"):
        iou([0, 0, 1], [0, 0, 1, 1])


# -- spatial-consistency weight -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ious", "w_ddof0", "w_ddof1"),
    [
        ([1.0] * 8, 1.0, 1.0),
        ([0.0] * 8, 3.0, 3.0),
        ([0.5] * 8, 1.8221, 1.8221),
        ([1.0, 0.0] * 4, 2.3396, 2.4247),
    ],
)
def test_weight_table_from_the_notes(ious, w_ddof0, w_ddof1) -> None:
    assert spatial_consistency_weight(ious) == pytest.approx(w_ddof0, abs=5e-5)
    assert spatial_consistency_weight(ious, ddof=1) == pytest.approx(w_ddof1, abs=5e-5)


def test_weight_formula_batched_and_torch() -> None:
    rng = np.random.default_rng(4)
    groups = rng.uniform(0, 1, (6, 8))
    expected = np.clip(np.exp(1.2 * (1 - groups.mean(1)) + 1.0 * groups.var(1, ddof=1)), 0.5, 3.0)
    np.testing.assert_allclose(spatial_consistency_weight(groups, ddof=1), expected, rtol=1e-12)
    out = spatial_consistency_weight(torch.tensor(groups), ddof=1)
    assert isinstance(out, torch.Tensor) and out.shape == (6,)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    single = spatial_consistency_weight(torch.tensor([1.0, 0.0] * 4))
    assert (
        isinstance(single, torch.Tensor)
        and single.ndim == 0
        and float(single) == pytest.approx(2.3396, abs=5e-5)
    )
    # lambda options are applied; IoUs in [0, 1] never push w below 1, so w_min = 0.5 never binds
    assert spatial_consistency_weight([0.2] * 4, lambda_m=0.5, lambda_v=0.0) == pytest.approx(math.exp(0.4))
    assert (spatial_consistency_weight(rng.uniform(0, 1, (1000, 8))) >= 1.0).all()


def test_weight_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="NaN"):
        spatial_consistency_weight([0.5, float("nan")])
    with pytest.raises(ValueError, match="NaN"):
        spatial_consistency_weight(torch.tensor([0.5, float("nan")]))
    with pytest.raises(ValueError, match="no variance"):
        spatial_consistency_weight([0.5], ddof=1)
    with pytest.raises(ValueError, match="w_min"):
        spatial_consistency_weight([0.5], w_min=4.0)
