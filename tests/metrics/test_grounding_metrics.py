"""Grounding metrics vs the three reference logics of the notes (§4.1): RSVG-pytorch ``bbox_iou``, VLM-R1
``test_rec_r1.py`` and Geo-R1 ``recal_rec_acc_unique.py`` (re-implemented here), plus the torchmetrics class."""

from __future__ import annotations

import math
import multiprocessing as mp

import numpy as np
import pytest
import torch
from PIL import Image

from rszoo.metrics.grounding import (
    GroundingAccuracy,
    box_ious,
    grounding,
    plot_grounding,
    plot_grounding_grid,
)

# -- references ---------------------------------------------------------------------------------------------------


def rsvg_bbox_iou(box1: torch.Tensor, box2: torch.Tensor):
    """ZhanYang-nwpu/RSVG-pytorch utils/utils.py: bbox_iou (x1y1x2y2)."""
    b1_x1, b1_y1, b1_x2, b1_y2 = box1[:, 0], box1[:, 1], box1[:, 2], box1[:, 3]
    b2_x1, b2_y1, b2_x2, b2_y2 = box2[:, 0], box2[:, 1], box2[:, 2], box2[:, 3]
    inter_rect_x1, inter_rect_y1 = torch.max(b1_x1, b2_x1), torch.max(b1_y1, b2_y1)
    inter_rect_x2, inter_rect_y2 = torch.min(b1_x2, b2_x2), torch.min(b1_y2, b2_y2)
    inter_area = torch.clamp(inter_rect_x2 - inter_rect_x1, 0) * torch.clamp(inter_rect_y2 - inter_rect_y1, 0)
    b1_area = (b1_x2 - b1_x1) * (b1_y2 - b1_y1)
    b2_area = (b2_x2 - b2_x1) * (b2_y2 - b2_y1)
    union_area = b1_area + b2_area - inter_area
    return inter_area / (union_area + 1e-16), inter_area, union_area


def vlmr1_eval_iou(box1, box2) -> float:
    """VLM-R1 src/eval/test_rec_r1.py: iou (no union guard)."""
    inter_x1, inter_y1 = max(box1[0], box2[0]), max(box1[1], box2[1])
    inter_x2, inter_y2 = min(box1[2] - 1, box2[2] - 1), min(box1[3] - 1, box2[3] - 1)
    if inter_x1 < inter_x2 and inter_y1 < inter_y2:
        inter = (inter_x2 - inter_x1 + 1) * (inter_y2 - inter_y1 + 1)
    else:
        inter = 0
    union = (box1[2] - box1[0]) * (box1[3] - box1[1]) + (box2[2] - box2[0]) * (box2[3] - box2[1]) - inter
    return float(inter) / union


def geor1_iou(box1, box2) -> float:
    """Geo-R1 run_scripts/recal_rec_acc_unique.py: iou (non-list -> 0, union <= 0 -> 0)."""
    if not (isinstance(box1, list) and len(box1) == 4 and isinstance(box2, list) and len(box2) == 4):
        return 0.0
    box1, box2 = [float(c) for c in box1], [float(c) for c in box2]
    inter_x1, inter_y1 = max(box1[0], box2[0]), max(box1[1], box2[1])
    inter_x2, inter_y2 = min(box1[2] - 1, box2[2] - 1), min(box1[3] - 1, box2[3] - 1)
    if inter_x1 < inter_x2 and inter_y1 < inter_y2:
        inter = (inter_x2 - inter_x1 + 1) * (inter_y2 - inter_y1 + 1)
    else:
        inter = 0
    union = (box1[2] - box1[0]) * (box1[3] - box1[1]) + (box2[2] - box2[0]) * (box2[3] - box2[1]) - inter
    return 0.0 if union <= 0 else float(inter) / union


def geor1_accuracies(results, thresholds):
    """Geo-R1 calculate_accuracies_at_thresholds (percentages, strict >)."""
    counts = dict.fromkeys(thresholds, 0)
    for result in results:
        current = geor1_iou(result["extracted_answer"], result["ground_truth"])
        for t in thresholds:
            if current > t:
                counts[t] += 1
    return {t: counts[t] / len(results) * 100 for t in thresholds}


# -- a fixed prediction file ------------------------------------------------------------------------------------

GT = [[0, 0, 10, 10]] * 8 + [[20, 20, 60, 50], [100, 100, 140, 160], [5, 5, 25, 45], [0, 0, 100, 100]]
PRED = [
    [0, 0, 10, 5],  # IoU exactly 0.5
    [0, 0, 10, 7],  # IoU exactly 0.7
    [0, 0, 10, 10],  # 1.0
    None,  # parse failure
    [0, 0, 10, 6],  # 0.6
    [2, 2, 12, 12],  # 64 / 136
    [9, 0, 19, 10],  # 1 px overlap: continuous 1/19, VLM-R1 0
    [50, 50, 60, 60],  # disjoint
    [22, 18, 58, 52],
    None,
    [5, 5, 25, 45],
    [10, 10, 90, 95],
]
UNIQUE = [True, True, False, False, True, None, False, True, True, False, True, False]


def test_exact_thresholds_strict_vs_non_strict() -> None:
    strict = grounding(PRED[:2], GT[:2])
    assert strict["acc@0.5"] == 0.5 and strict["acc@0.7"] == 0.0  # 0.5 > 0.5 is False; 0.7 > 0.5 True
    loose = grounding(PRED[:2], GT[:2], strict=False)
    assert loose["acc@0.5"] == 1.0 and loose["acc@0.7"] == 0.5


def test_continuous_metrics_equal_rsvg_pytorch() -> None:
    pred = torch.tensor([p if p is not None else [0, 0, 0, 0] for p in PRED], dtype=torch.float64)
    gt = torch.tensor(GT, dtype=torch.float64)
    ious, inter, union = rsvg_bbox_iou(pred, gt)
    ours = grounding(PRED, GT)
    for t in (0.5, 0.7):
        assert ours[f"acc@{t:g}"] == pytest.approx(float((ious > t).float().mean()), abs=1e-12)
    assert ours["miou"] == pytest.approx(float(ious.mean()), abs=1e-12)
    assert ours["cum_iou"] == pytest.approx(float(inter.sum() / union.sum()), abs=1e-12)
    assert ours["n"] == 12 and ours["parse_failures"] == 2
    np.testing.assert_allclose(box_ious(PRED, GT), ious.numpy(), atol=1e-12)


def test_vlmr1_logic_acc_and_miou() -> None:
    # VLM-R1 keeps failures as [0, 0, 0, 0] (IoU 0) in the denominator and counts iou > 0.5
    answers = [p if p is not None else [0, 0, 0, 0] for p in PRED]
    ious = [vlmr1_eval_iou(a, g) for a, g in zip(answers, GT)]
    ours = grounding(PRED, GT, iou_variant="vlmr1")
    assert ours["acc@0.5"] == pytest.approx(sum(i > 0.5 for i in ious) / len(ious))
    assert ours["miou"] == pytest.approx(sum(ious) / len(ious))
    assert (
        ours["acc@0.5"]
        != grounding(PRED, GT, thresholds=(0.5,), strict=False, iou_variant="vlmr1")["acc@0.5"]
    )


def test_geor1_logic_with_unique_split() -> None:
    results = [
        {
            "image": f"img{i}.png",
            "question": f"q{i}",
            "ground_truth": g,
            "extracted_answer": p or [0, 0, 0, 0],
        }
        for i, (p, g) in enumerate(zip(PRED, GT))
    ]
    flags = {(r["image"], r["question"]): u for r, u in zip(results, UNIQUE)}
    unique = [r for r in results if flags[(r["image"], r["question"])] is True]
    non_unique = [r for r in results if flags[(r["image"], r["question"])] is False]
    ours = grounding(PRED, GT, unique=UNIQUE, iou_variant="vlmr1")
    for prefix, subset in (("", results), ("unique/", unique), ("non_unique/", non_unique)):
        ref = geor1_accuracies(subset, [0.5, 0.7])
        assert ours[f"{prefix}acc@0.5"] * 100 == pytest.approx(ref[0.5])
        assert ours[f"{prefix}acc@0.7"] * 100 == pytest.approx(ref[0.7])
        assert ours[f"{prefix}n"] == len(subset)
    assert ours["unique/n"] + ours["non_unique/n"] == 11  # the None flag is in neither split, but in "all"
    assert ours["non_unique/parse_failures"] == 2


def test_inputs_are_validated() -> None:
    with pytest.raises(ValueError, match="pair up"):
        grounding([[0, 0, 1, 1]], [[0, 0, 1, 1]] * 2)
    with pytest.raises(ValueError, match="not finite"):
        grounding([[0, 0, 1, 1]], [[0, 0, float("nan"), 1]])
    with pytest.raises(ValueError, match="unique"):
        grounding([[0, 0, 1, 1]], [[0, 0, 1, 1]], unique=[True, False])
    empty = grounding([], [])
    assert empty["n"] == 0 and math.isnan(empty["acc@0.5"]) and math.isnan(empty["miou"])
    # malformed predictions are failures, not errors
    assert grounding([[1, 2, 3], "x"], [[0, 0, 1, 1]] * 2)["parse_failures"] == 2


def test_registered_in_metrics_registry() -> None:
    from rszoo.registry import METRICS

    try:
        assert METRICS.get("grounding") is grounding
    except ModuleNotFoundError as exc:  # another module listed by METRICS is not there yet
        assert exc.name != "rszoo.metrics.grounding"
        assert METRICS._entries["grounding"].obj is grounding


# -- torchmetrics -------------------------------------------------------------------------------------------------


def as_tensor(preds) -> torch.Tensor:
    return torch.tensor([p if p is not None else [math.nan] * 4 for p in preds], dtype=torch.float64)


def check_against_functional(out: dict, expected: dict) -> None:
    for key, value in expected.items():
        got = float(out[key])
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(got), key
        else:
            assert got == pytest.approx(value, abs=1e-12), key


def test_grounding_accuracy_streams_like_the_function() -> None:
    metric = GroundingAccuracy(iou_variant="vlmr1")
    uniq = [bool(u) for u in UNIQUE]
    for start in range(0, 12, 5):
        metric.update(
            as_tensor(PRED[start : start + 5]),
            torch.tensor(GT[start : start + 5]),
            unique=uniq[start : start + 5],
        )
    check_against_functional(metric.compute(), grounding(PRED, GT, unique=uniq, iou_variant="vlmr1"))
    metric.reset()
    metric.update(PRED, GT)  # lists with None work too
    check_against_functional(metric.compute(), grounding(PRED, GT, iou_variant="vlmr1"))
    continuous = GroundingAccuracy()
    continuous.update(PRED, GT)
    out = continuous.compute()
    check_against_functional(out, grounding(PRED, GT))
    assert "unique/n" not in out
    tracked = GroundingAccuracy(track_unique=True)
    tracked.update(PRED, GT)
    assert math.isnan(float(tracked.compute()["unique/miou"]))


def _ddp_worker(rank: int, world: int, init_file: str, queue) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        metric = GroundingAccuracy(thresholds=(0.5, 0.7))
        idx = list(range(rank, len(PRED), world))  # uneven shards: 6 and 6, different failures per rank
        metric.update(
            as_tensor([PRED[i] for i in idx]),
            torch.tensor([GT[i] for i in idx]),
            unique=[bool(UNIQUE[i]) for i in idx],
        )
        queue.put((rank, {k: float(v) for k, v in metric.compute().items()}))
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
def test_grounding_accuracy_syncs_across_two_processes(tmp_path) -> None:
    # spawn, not fork: forking a process whose torch thread pools already ran (pytest-xdist workers) can deadlock
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, str(tmp_path / "init"), queue)) for r in range(2)]
    for p in procs:
        p.start()
    for (
        p
    ) in procs:  # results are a few floats, far below the pipe buffer, so joining first cannot block on put()
        p.join(timeout=240)
    exitcodes = [p.exitcode for p in procs]
    for p in procs:
        if p.exitcode is None:  # hung: stop the rank this test started
            p.kill()
            p.join()
    assert exitcodes == [0, 0], "a rank failed or hung (its traceback is on stderr)"
    results = dict(queue.get(timeout=5) for _ in procs)
    expected = grounding(PRED, GT, unique=[bool(u) for u in UNIQUE])
    for rank in (0, 1):
        check_against_functional(results[rank], expected)


# -- plots ----------------------------------------------------------------------------------------------------------


def test_plot_grounding_draws_red_prediction_and_green_gt(tmp_path) -> None:
    image = Image.new("RGB", (64, 64), (128, 128, 128))
    out = plot_grounding(
        image, [5, 5, 30, 30], [30, 30, 60, 60], "the grey square at the bottom right", tmp_path / "one.png"
    )
    with Image.open(out) as img:
        pixels = np.asarray(img.convert("RGB")).reshape(-1, 3).astype(int)
    red = ((pixels[:, 0] > 200) & (pixels[:, 1] < 60) & (pixels[:, 2] < 60)).sum()
    green = ((pixels[:, 1] > 200) & (pixels[:, 0] < 60) & (pixels[:, 2] < 60)).sum()
    assert red > 20 and green > 20
    failure = plot_grounding(
        np.zeros((32, 48), dtype=np.uint8), None, [1, 1, 10, 10], "x", tmp_path / "f.png"
    )
    assert failure.stat().st_size > 0
    # inference: no GT, prediction only (red, no green)
    pred_only = plot_grounding(image, [5, 5, 30, 30], None, "the square", tmp_path / "pred.png")
    with Image.open(pred_only) as img:
        pixels = np.asarray(img.convert("RGB")).reshape(-1, 3).astype(int)
    assert ((pixels[:, 0] > 200) & (pixels[:, 1] < 60)).sum() > 20
    assert ((pixels[:, 1] > 200) & (pixels[:, 0] < 60) & (pixels[:, 2] < 60)).sum() == 0


def test_plot_grounding_grid(tmp_path) -> None:
    image_path = tmp_path / "img.png"
    Image.new("RGB", (40, 30), (10, 50, 90)).save(image_path)
    samples = [
        {"image": image_path, "pred_box": p, "gt_box": g, "expression": f"sample {k}", "title": f"#{k}"}
        for k, (p, g) in enumerate(zip([[1, 1, 20, 20], None, [5, 5, 30, 25]], [[2, 2, 20, 20]] * 3))
    ]
    out = plot_grounding_grid(samples, tmp_path / "grid.png", ncols=2)
    with Image.open(out) as img:
        assert img.size[0] > img.size[1] * 0.8  # two columns, two rows
    with pytest.raises(ValueError, match="misses"):
        plot_grounding_grid([{"image": image_path}], tmp_path / "bad.png")
    with pytest.raises(FileNotFoundError):
        plot_grounding(tmp_path / "missing.png", None, [0, 0, 1, 1], "x", tmp_path / "m.png")
