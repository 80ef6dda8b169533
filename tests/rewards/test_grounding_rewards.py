"""Reward modules: VLM-R1 parity (format + IoU with the resize path), failure handling, trl calling convention."""

from __future__ import annotations

import json
import math
import pickle
import re

import numpy as np
import pytest
from _vlmr1_reference import CASES, ref_format_reward_rec
from PIL import Image

from rszoo.data.resize import input_size_for
from rszoo.registry import REWARDS, UnknownNameError
from rszoo.rewards.functional import positional
from rszoo.rewards.grounding import (
    FormatReward,
    GIoUReward,
    IoUReward,
    PositionalReward,
    RewardError,
    WeightedRewards,
    completion_text,
)


def conv(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def ref_iou_reward(completions, solution, image_grid_thw, image_path) -> list[float]:
    """Qwen2VLModule.iou_reward (om-ai-lab/VLM-R1, qwen_module.py), minus its debug logging."""

    def iou(box1, box2):
        inter_x1, inter_y1 = max(box1[0], box2[0]), max(box1[1], box2[1])
        inter_x2, inter_y2 = min(box1[2] - 1, box2[2] - 1), min(box1[3] - 1, box2[3] - 1)
        if inter_x1 < inter_x2 and inter_y1 < inter_y2:
            inter = (inter_x2 - inter_x1 + 1) * (inter_y2 - inter_y1 + 1)
        else:
            inter = 0
        union = (box1[2] - box1[0]) * (box1[3] - box1[1]) + (box2[2] - box2[0]) * (box2[3] - box2[1]) - inter
        return float(inter) / union

    def resize_bbox(bbox, input_height, input_width, image_height, image_width):
        bbox[0] = bbox[0] / input_width * image_width
        bbox[1] = bbox[1] / input_height * image_height
        bbox[2] = bbox[2] / input_width * image_width
        bbox[3] = bbox[3] / input_height * image_height
        return bbox

    contents = [completion[0]["content"] for completion in completions]
    rewards = []
    for i, (content, sol) in enumerate(zip(contents, solution)):
        grid = image_grid_thw[i]
        with Image.open(image_path[i][0]) as image:
            image_width, image_height = image.size
        input_height, input_width = int(grid[1] * 14), int(grid[2] * 14)
        sol = json.loads(re.findall(r"<answer>(.*?)</answer>", sol, re.DOTALL)[-1].strip())
        reward = 0.0
        try:
            match = re.search(r"<answer>(.*?)</answer>", content, re.DOTALL)
            if match:
                box = re.search(r"\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)]", match.group(1).strip())
                if box:
                    bbox = [int(box.group(k)) for k in range(1, 5)]
                    reward = iou(resize_bbox(bbox, input_height, input_width, image_height, image_width), sol)
        except Exception:
            pass
        rewards.append(reward)
    return rewards


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory) -> dict[tuple[int, int], str]:
    folder = tmp_path_factory.mktemp("images")
    paths = {}
    for size in [(800, 800), (512, 512), (1024, 768)]:
        path = folder / f"{size[0]}x{size[1]}.png"
        Image.new("RGB", size).save(path)
        paths[size] = str(path)
    return paths


def golden_table() -> list[tuple[str, list[float], tuple[int, int]]]:
    """(completion, GT in original pixels, image size) triples covering §6.1 of the notes."""
    t = "<think>t</think>"
    rows = [
        (
            f'{t}<answer>{{"bbox_2d": [100, 100, 406, 406]}}</answer>',
            [98, 98, 400, 400],
            (800, 800),
        ),  # normal
        (
            f'{t}<answer>{{"bbox_2d": [0, 0, 406, 812]}}</answer>',
            [399, 0, 800, 800],
            (800, 800),
        ),  # <= 1 px overlap
        (
            f'{t}<answer>{{"bbox_2d": [0, 0, 406, 812]}}</answer>',
            [398, 0, 800, 800],
            (800, 800),
        ),  # 2 px overlap
        (f'{t}<answer>{{"bbox_2d": [0, 0, 406, 812]}}</answer>', [400, 0, 800, 800], (800, 800)),  # touching
        (f'{t}<answer>{{"bbox_2d": [50, 50, 50, 90]}}</answer>', [0, 0, 100, 100], (800, 800)),  # zero-area
        (f'{t}<answer>{{"bbox_2d": [90, 90, 10, 10]}}</answer>', [0, 0, 100, 100], (800, 800)),  # inverted
        (f'{t}<answer>{{"bbox_2d": [7, 7, 7, 7]}}</answer>', [7, 7, 7, 7], (800, 800)),  # union 0
        (
            f"{t}<answer>[10, 10, 60, 60], [200, 200, 300, 300]</answer>",
            [200, 200, 300, 300],
            (512, 512),
        ),  # 2 boxes
        (f'{t}<answer>{{"bbox_2d": [12, 30, 500, 400]}}</answer>', [10, 28, 480, 395], (512, 512)),
        (f'{t}<answer>{{"bbox_2d": [100, 50, 700, 600]}}</answer>', [100, 60, 700, 600], (1024, 768)),
        (f'{t}<answer>{{"bbox_2d": [1000, 700, 1036, 756]}}</answer>', [990, 700, 1024, 768], (1024, 768)),
        (f"{t}<answer>no box here</answer>", [0, 0, 10, 10], (512, 512)),
        (f'{t}<answer>{{"bbox_2d": [10.5, 10, 60, 60]}}</answer>', [10, 10, 60, 60], (512, 512)),  # float
    ]
    return [(text, [float(v) for v in gt], size) for text, gt, size in rows]


def trl_style_kwargs(rows, image_paths, with_input_size: bool = True) -> dict:
    """Columns as VLM-R1 (solution, image_path, image_grid_thw) and rszoo (box, image_size, input_size) give them."""
    grids, kwargs = [], {"box": [], "image_size": [], "input_size": [], "solution": [], "image_path": []}
    for _, gt, size in rows:
        width, height = input_size_for(size)
        grids.append((1, height // 14, width // 14))
        kwargs["box"].append(gt)
        kwargs["image_size"].append(size)
        kwargs["input_size"].append((grids[-1][2] * 14, grids[-1][1] * 14))
        kwargs["solution"].append(f"<answer>{json.dumps(gt)}</answer>")
        kwargs["image_path"].append([image_paths[size]])
    if not with_input_size:
        del kwargs["input_size"]
    return {**kwargs, "image_grid_thw": grids}


def test_iou_reward_equals_vlmr1_iou_reward_on_the_golden_table(image_paths) -> None:
    rows = golden_table()
    kwargs = trl_style_kwargs(rows, image_paths)
    completions = [conv(text) for text, _, _ in rows]
    expected = ref_iou_reward(completions, kwargs["solution"], kwargs["image_grid_thw"], kwargs["image_path"])
    reward = IoUReward(variant="vlmr1", parse_style="vlmr1", out_of_image="allow")
    got = reward(prompts=[[{"role": "user", "content": "q"}]] * len(rows), completions=completions, **kwargs)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert (
        expected[0] > 0.9 and expected[1] == 0.0 and expected[2] > 0 and expected[7] == 0.0
    )  # first box wins
    # the resize path matters: without it the 800 -> 812 error would change the first value
    assert got[0] != pytest.approx(ref_vlmr1_no_resize(rows[0]), abs=1e-3)
    # input_size computed by smart_resize from image_size gives the same answers as image_grid_thw * 14
    again = reward(completions=completions, **trl_style_kwargs(rows, image_paths, with_input_size=False))
    np.testing.assert_allclose(again, got, rtol=0, atol=0)


def ref_vlmr1_no_resize(row) -> float:
    text, gt, _ = row
    box = [float(v) for v in json.loads(text.split("<answer>")[1].split("</answer>")[0])["bbox_2d"]]
    inter = (min(box[2], gt[2]) - max(box[0], gt[0])) * (min(box[3], gt[3]) - max(box[1], gt[1]))
    return inter / ((box[2] - box[0]) * (box[3] - box[1]) + (gt[2] - gt[0]) * (gt[3] - gt[1]) - inter)


def test_format_reward_vlmr1_mode_equals_format_reward_rec() -> None:
    texts = [text for text, *_ in CASES]
    got = FormatReward(mode="vlmr1_rec")(completions=[conv(t) for t in texts])
    assert got == [ref_format_reward_rec(t) for t in texts]


def test_total_reward_is_vlmr1_format_plus_accuracy_plus_beta_rpos(image_paths) -> None:
    rows = golden_table()
    kwargs = trl_style_kwargs(rows, image_paths)
    completions = [conv(text) for text, _, _ in rows]
    rewards = WeightedRewards(
        [
            {"name": "format", "mode": "vlmr1_rec"},
            {"name": "iou", "variant": "vlmr1", "parse_style": "vlmr1", "out_of_image": "allow"},
            {"name": "positional", "weight": 0.1, "parse_style": "vlmr1", "out_of_image": "allow"},
        ]
    )
    out = rewards(completions=completions, **kwargs)
    fmt = [ref_format_reward_rec(text) for text, _, _ in rows]
    acc = ref_iou_reward(completions, kwargs["solution"], kwargs["image_grid_thw"], kwargs["image_path"])
    rpos = []
    for (text, gt, size), inp in zip(rows, kwargs["input_size"]):
        match = re.search(
            r"\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)]", text.split("<answer>")[1].split("</answer>")[0]
        )
        if not match:
            rpos.append(0.0)
            continue
        box = [int(g) for g in match.groups()]
        box = [
            box[0] * size[0] / inp[0],
            box[1] * size[1] / inp[1],
            box[2] * size[0] / inp[0],
            box[3] * size[1] / inp[1],
        ]
        rpos.append(positional(box, gt, image_size=size))
    np.testing.assert_allclose(
        out.per_function["format"] + out.per_function["iou"], np.add(fmt, acc), atol=1e-9
    )
    np.testing.assert_allclose(out.total, np.add(fmt, acc) + 0.1 * np.asarray(rpos), atol=1e-9)
    assert out.matrix.shape == (len(rows), 3) and out.weights == {
        "format": 1.0,
        "iou": 1.0,
        "positional": 0.1,
    }


def test_failures_score_zero_and_are_counted() -> None:
    t = "<think>t</think>"
    completions = [
        "garbage",  # no_answer_tag
        f"{t}<answer></answer>",  # empty_answer
        f"{t}<answer>[1, 2, NaN, 4]</answer>",  # non_finite
        f"{t}<answer>[-5, 10, 100, 100]</answer>",  # negative
        f"{t}<answer>[100, 100, 10, 10]</answer>",  # inverted
        f"{t}<answer>[10, 10, 900, 100]</answer>",  # out_of_image (input is 812 wide)
        None,  # not text
        f"{t}<answer>[0, 0, 406, 406]</answer>",  # valid, IoU 1
    ]
    n = len(completions)
    reward = IoUReward()
    got = reward(completions=completions, box=[[0, 0, 400, 400]] * n, image_size=[(800, 800)] * n)
    assert got == [0.0] * 7 + [1.0]
    stats = reward.stats()
    assert stats["completions"] == n and stats["calls"] == 1 and stats["parse_failures"] == 7
    assert stats["failure_rate"] == pytest.approx(7 / 8)
    assert stats["reasons"] == {
        "empty_answer": 1,
        "inverted": 1,
        "negative": 1,
        "no_answer_tag": 1,
        "non_finite": 1,
        "not_text": 1,
        "out_of_image": 1,
    }
    reward(completions=completions[:1], box=[[0, 0, 400, 400]], image_size=[(800, 800)])
    assert reward.stats()["calls"] == 2 and reward.stats()["parse_failures"] == 8
    reward.reset_stats()
    assert reward.stats() == {
        "calls": 0,
        "completions": 0,
        "parse_failures": 0,
        "failure_rate": 0.0,
        "reasons": {},
    }


def test_out_of_image_clip_and_allow() -> None:
    text = "<think>t</think><answer>[-10, 0, 406, 406]</answer>"
    kwargs = {"box": [[0, 0, 400, 400]], "image_size": [(800, 800)]}
    assert IoUReward()(completions=[text], **kwargs) == [0.0]
    assert IoUReward(out_of_image="clip")(completions=[text], **kwargs) == [1.0]
    allowed = IoUReward(out_of_image="allow")(completions=[text], **kwargs)[0]
    assert allowed == pytest.approx(400 * 400 / ((416 * 800 / 812) * 400))
    outside = "<think>t</think><answer>[900, 900, 1000, 1000]</answer>"
    assert IoUReward(out_of_image="clip")(completions=[outside], **kwargs) == [0.0]


def test_image_size_from_pil_image_and_input_size_from_options() -> None:
    text = "<think>t</think><answer>[0, 0, 252, 252]</answer>"
    image = Image.new("RGB", (512, 512))
    # Qwen2.5-VL default: 512 -> 504, so [0, 0, 252, 252] is the top-left quarter
    assert IoUReward()(completions=[text], box=[[0, 0, 256, 256]], image=[image]) == [pytest.approx(1.0)]
    assert IoUReward()(completions=[text], box=[[0, 0, 256, 256]], images=[[image]]) == [pytest.approx(1.0)]
    # a different max_pixels changes the input size: 512 x 512 -> 252 x 252 (max 256 * 256), so the box is everything
    small = IoUReward(max_pixels=256 * 256)
    assert small(completions=[text], box=[[0, 0, 512, 512]], image_size=[(512, 512)]) == [pytest.approx(1.0)]


def test_giou_diou_rescaled_so_failures_are_worst() -> None:
    kwargs = {"box": [[0, 0, 100, 100]] * 2, "image_size": [(812, 812)] * 2, "input_size": [(812, 812)] * 2}
    far = "<think>t</think><answer>[700, 700, 800, 800]</answer>"
    for name in ("giou", "diou", "center_distance"):
        values = REWARDS.build(name)(completions=[far, "garbage"], **kwargs)
        assert 0.0 < values[0] < 0.5 and values[1] == 0.0, name
    raw = GIoUReward(rescale=False)(completions=[far], **{k: v[:1] for k, v in kwargs.items()})[0]
    assert raw < 0


def test_bad_inputs_raise_with_the_offending_sample() -> None:
    reward = PositionalReward()
    with pytest.raises(RewardError) as info:
        reward(completions=["c0", "the bad one"], box=[[0, 0, 10, 10], [0, 0, 10]], image_size=[(20, 20)] * 2)
    message = str(info.value)
    assert "completion 1" in message and "'the bad one'" in message and "box = [0, 0, 10]" in message
    assert info.value.index == 1 and info.value.sample["image_size"] == (20, 20)
    with pytest.raises(RewardError, match="needs the GT column 'box'"):
        reward(completions=["x"], image_size=[(20, 20)])
    with pytest.raises(RewardError, match="original image size"):
        reward(completions=["x"], box=[[0, 0, 1, 1]])
    with pytest.raises(RewardError, match="one item per completion"):
        reward(completions=["x", "y"], box=[[0, 0, 1, 1]], image_size=[(20, 20)] * 2)
    with pytest.raises(RewardError, match="positive integers"):
        reward(completions=["x"], box=[[0, 0, 1, 1]], image_size=[(20, -1)])


def test_a_raising_score_is_reported_not_swallowed(monkeypatch) -> None:
    reward = IoUReward()

    def broken(pred, gt, image_size):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(reward, "score", broken)
    with pytest.raises(RewardError, match="ZeroDivisionError: boom") as info:
        reward(
            completions=["<think>t</think><answer>[0, 0, 10, 10]</answer>"],
            box=[[0, 0, 10, 10]],
            image_size=[(28, 28)],
        )
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_trl_calling_convention_names_and_logging() -> None:
    from trl.trainer.utils import get_callable_name, is_async_callable

    logged: list[tuple[str, float]] = []
    rewards = [REWARDS.build(name) for name in REWARDS.list()]
    assert sorted(get_callable_name(r) for r in rewards) == sorted(
        ["format", "iou", "giou", "diou", "center_distance", "positional"]
    )
    assert not any(is_async_callable(r) for r in rewards)
    n = 2
    kwargs = {
        "prompts": [[{"role": "user", "content": [{"type": "text", "text": "q"}]}]] * n,
        "completions": [conv("<think>t</think><answer>[0, 0, 406, 406]</answer>"), conv("nothing")],
        "completion_ids": [[1, 2], [3]],
        "box": [[0, 0, 400, 400]] * n,
        "image_size": [[800, 800]] * n,
        "problem": ["the plane"] * n,
        "trainer_state": object(),
        "log_extra": lambda column, values: None,
        "log_metric": lambda name, value: logged.append((name, value)),
    }
    for reward in rewards:
        values = reward(**kwargs)
        assert len(values) == n and all(isinstance(v, float) for v in values)
        assert values[1] == 0.0 and values[0] > 0.9
    assert ("iou/parse_failure_rate", 0.5) in logged
    restored = pickle.loads(pickle.dumps(rewards[0]))
    assert restored.__name__ == rewards[0].__name__


def test_registry_and_weighted_rewards_errors() -> None:
    assert {"format", "iou", "giou", "diou", "center_distance", "positional"} <= set(REWARDS.list())
    assert REWARDS.build("positional", alpha=1.0, weight=0.1).alpha == 1.0
    with pytest.raises(UnknownNameError, match="iou"):
        WeightedRewards([{"name": "iuo"}])
    with pytest.raises(TypeError, match=r"accepts .*alpha"):
        WeightedRewards([{"name": "positional", "sigma": 3}])
    with pytest.raises(ValueError, match="label 'iou' is used twice"):
        WeightedRewards([{"name": "iou"}, {"name": "iou", "variant": "vlmr1"}])
    pair = WeightedRewards([{"name": "iou"}, {"name": "iou", "variant": "vlmr1", "label": "iou_vlmr1"}])
    assert pair.names == ["iou", "iou_vlmr1"] and [f.__name__ for f in pair.funcs] == pair.names
    with pytest.raises(ValueError, match="non-empty list"):
        WeightedRewards({"name": "iou"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="parse_style"):
        IoUReward(parse_style="loose")
    with pytest.raises(ValueError, match="mode"):
        FormatReward(mode="strict")
    pair(completions=["x"], box=[[0, 0, 1, 1]], image_size=[(28, 28)])
    assert pair.stats()["iou_vlmr1"]["parse_failures"] == 1
    pair.reset_stats()
    assert pair.stats()["iou"]["completions"] == 0


def test_completion_text_shapes() -> None:
    assert completion_text("abc") == "abc"
    assert completion_text([{"role": "assistant", "content": "a"}, {"role": "tool", "content": "x"}]) == "a"
    assert (
        completion_text(
            {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
        )
        == "ab"
    )
    assert completion_text(42) is None and completion_text([]) is None


def test_rpos_reward_is_evaluated_in_original_pixels() -> None:
    # 1024 x 768 -> 1036 x 756: x and y are scaled differently; the reward must undo it before R_pos
    size, inp = (1024, 768), input_size_for((1024, 768))
    assert inp == (1036, 756)
    gt = [100.0, 100.0, 300.0, 200.0]
    box_in = [
        gt[0] * inp[0] / size[0],
        gt[1] * inp[1] / size[1],
        gt[2] * inp[0] / size[0],
        gt[3] * inp[1] / size[1],
    ]
    text = f"<think>t</think><answer>{json.dumps([round(v, 6) for v in box_in])}</answer>"
    got = PositionalReward()(completions=[text], box=[gt], image_size=[size])[0]
    assert got == pytest.approx(positional(gt, gt, image_size=size), abs=1e-6)
    assert not math.isclose(got, positional(box_in, gt, image_size=size), abs_tol=1e-4)
