"""Online processing: scalable boxes under random resizing, dense detection, the plain/JSON switch, synonyms,
templates, the Zoom-in Chain and determinism."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import pytest

from rszoo.data.detection_format import SYSTEM_PROMPTS
from rszoo.data.engine.offline import OfflineOptions, process_source
from rszoo.data.engine.online import (
    DEFAULT_PROMPTS,
    OnlineOptions,
    apply_synonyms,
    build_sample,
    check_prompt_pool,
    dynamic_size,
    random_resize_size,
    sample_seed,
)
from rszoo.data.resize import box_to_input, smart_resize
from rszoo.models.rscovlm.zoom import ZOOM_TOOL_SYSTEM_PROMPT

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "engine"
MIN, MAX = 56 * 56, 448 * 448


def _records(name: str, task: str, source: dict) -> list:
    return process_source(name, task, source, OfflineOptions())[0]


@pytest.fixture(scope="module")
def refgeo():
    return _records(
        "refgeo",
        "grounding",
        {
            "format": "refgeo",
            "annotations": str(FIX / "refgeo/metainfo/refgeo_train.jsonl"),
            "images": str(FIX / "refgeo"),
            "box_type": "quad",
        },
    )


@pytest.fixture(scope="module")
def dota():
    return _records(
        "dota",
        "detection",
        {
            "format": "dota",
            "labels": str(FIX / "dota/labelTxt"),
            "images": str(FIX / "dota/images"),
            "categories": "auto",
        },
    )


@pytest.fixture(scope="module")
def zoom():
    return _records(
        "zoom",
        "zoom_vqa",
        {
            "format": "zoom",
            "annotations": str(FIX / "lrsvqa_zoom/zoom_train.jsonl"),
            "images": str(FIX / "lrsvqa_zoom/images"),
        },
    )


def _sample(record, task, options, epoch=0, prompts=None, seed=0, min_pixels=MIN, max_pixels=MAX):
    rng = random.Random(sample_seed(seed, epoch, 0))
    return build_sample(
        record,
        task,
        rng=rng,
        options=options,
        prompts=prompts,
        subset="s",
        min_pixels=min_pixels,
        max_pixels=max_pixels,
    )


def _answer_values(answer: str) -> tuple[list[int], str]:
    if answer.startswith("```json"):
        (item,) = json.loads(answer[len("```json\n") : -len("\n```")])
        key = next(k for k in item if k != "label")
        return item[key], "json"
    numbers, _ = answer.split(" ", 1)
    return [int(v) for v in numbers.split(",")], "plain"


def test_random_resize_follows_the_reference_formula():
    for seed, (w, h) in enumerate([(64, 48), (1000, 700), (10, 10), (4000, 3000), (300, 5)]):
        ref = random.Random(seed)
        scale = ref.uniform(MIN / (w * h), MAX / (w * h))  # RSCoVLM random_resize, written out
        rh, rw = smart_resize(
            max(1, int(h * scale)), max(1, int(w * scale)), 28, MIN, MAX, convention="qwen_vl_utils"
        )
        assert random_resize_size(w, h, random.Random(seed), 28, MIN, MAX) == (rw, rh)
    sizes = {dynamic_size((640, 480), random.Random(s), 1.0, 28, MIN, MAX) for s in range(50)}
    assert len(sizes) > 5 and all(MIN <= w * h <= MAX and w % 28 == 0 == h % 28 for w, h in sizes)
    # smart_resize by hand: 476 x 644 > 448^2, beta = sqrt(640 * 480 / 448^2); floor(480 / beta / 28) * 28 = 364,
    # floor(640 / beta / 28) * 28 = 504
    assert dynamic_size((640, 480), random.Random(0), 0.0, 28, MIN, MAX) == (504, 364)


def test_grounding_boxes_follow_the_random_resize(refgeo):
    options = OnlineOptions(prob_random_resize=1.0, prob_plain_text_prompt=0.5, box_type="hbb")
    seen_sizes = set()
    for record in refgeo:
        for epoch in range(40):
            row = _sample(record, "grounding", options, epoch)
            image = next(
                p
                for m in row["messages"]
                if m["role"] == "user"
                for p in m["content"]
                if p["type"] == "image"
            )
            size = (image["resized_width"], image["resized_height"])
            seen_sizes.add(size)
            values, _ = _answer_values(row["messages"][-1]["content"])
            expected = box_to_input(record.hbox, input_size=size, original_size=record.size)
            assert all(0 <= e - v < 1 for e, v in zip(expected, values)), (values, expected)
    assert len(seen_sizes) > 10


def test_grounding_quads_are_scaled_then_ordered(refgeo):
    bridge = refgeo[2]
    options = OnlineOptions(prob_random_resize=1.0, box_type="quad")
    for epoch in range(20):
        row = _sample(bridge, "grounding", options, epoch)
        image = row["messages"][1]["content"][0]
        (iw, ih), (ow, oh) = (image["resized_width"], image["resized_height"]), bridge.size
        values, fmt = _answer_values(row["messages"][-1]["content"])
        assert fmt == "plain" and row["messages"][0]["content"].endswith("'x1,y1,x2,y2,x3,y3,x4,y4 object'.")
        vertices = list(zip(values[0::2], values[1::2]))
        expected = [
            (int(x * iw / ow), int(y * ih / oh)) for x, y in zip(bridge.quad[0::2], bridge.quad[1::2])
        ]
        assert sorted(vertices) == sorted(expected)
        assert vertices[0] == min(vertices, key=lambda p: (p[1], p[0]))


def test_grounding_obb_targets(refgeo):
    row = _sample(refgeo[2], "grounding", OnlineOptions(box_type="obb", prob_plain_text_prompt=0.0))
    (item,) = json.loads(row["messages"][-1]["content"][len("```json\n") : -len("\n```")])
    cx, cy, w, h, angle = item["oriented bbox"]
    assert item["label"] == "the rotated bridge" and w >= h and -90 <= angle < 90
    image = row["messages"][1]["content"][0]
    sx, sy = image["resized_width"] / 100, image["resized_height"] / 60
    assert abs(cx - 25 * sx) < 2 and abs(cy - 25 * sy) < 2  # vertex truncation, then int() of the centre
    assert row["messages"][0]["content"].startswith(
        "You are an AI assistant specializing in oriented object detection."
    )


def test_dense_detection_target_written_by_hand(dota):
    row = _sample(dota[0], "detection", OnlineOptions())
    system, user, assistant = row["messages"]
    assert system["content"] == SYSTEM_PROMPTS[("quad", "plain")]
    image = user["content"][0]
    assert (image["resized_width"], image["resized_height"]) == (56, 56)
    assert user["content"][1]["text"] == "find the harbor, plane, ship, small vehicle"
    # 64 x 48 -> 56 x 56: x * 56 / 64, y * 56 / 48, truncated; quads re-ordered after scaling; sorted by label
    assert assistant["content"] == (
        "43,23,52,35,43,46,35,35 plane\n1,46,10,46,10,51,1,51 ship\n8,5,26,5,26,17,8,17 small vehicle\n"
    )
    empty = _sample(dota[1], "detection", OnlineOptions())
    assert empty["messages"][-1] == {"role": "assistant", "content": "There are none."}
    no_difficult = _sample(dota[0], "detection", OnlineOptions(skip_difficult=True))
    assert "plane" not in no_difficult["messages"][-1]["content"]


def test_detection_boxes_follow_the_random_resize(dota):
    options = OnlineOptions(prob_random_resize=1.0)
    for epoch in range(30):
        row = _sample(dota[0], "detection", options, epoch)
        image = row["messages"][1]["content"][0]
        size = (image["resized_width"], image["resized_height"])
        lines = row["messages"][-1]["content"].strip().splitlines()
        small = next(line for line in lines if line.endswith("small vehicle"))
        values = [int(v) for v in small.split(" ")[0].split(",")]
        expected = box_to_input([10, 5, 30, 15], input_size=size, original_size=(64, 48))
        assert [values[0], values[1], values[4], values[5]] == [int(v) for v in expected]


def _fraction_json(records, task, options, n):
    count = 0
    for k in range(n):
        row = _sample(records[k % len(records)], task, options, epoch=k)
        count += row["messages"][-1]["content"].startswith("```json")
    return count / n


def test_plain_json_switch_probability(refgeo, dota):
    n = 600
    assert _fraction_json(refgeo, "grounding", OnlineOptions(), n) == 0.0  # RSCoVLM default: always plain
    for p_plain in (0.3, 0.5):
        for records, task in ((refgeo, "grounding"), (dota[:1], "detection")):
            frac = _fraction_json(records, task, OnlineOptions(prob_plain_text_prompt=p_plain), n)
            sigma = math.sqrt(p_plain * (1 - p_plain) / n)
            assert abs(frac - (1 - p_plain)) < 4 * sigma, (task, p_plain, frac)
    assert _fraction_json(refgeo, "grounding", OnlineOptions(prob_plain_text_prompt=0.0), 50) == 1.0


def test_json_grounding_uses_qwen_format_and_the_pool(refgeo):
    options = OnlineOptions(prob_plain_text_prompt=0.0)
    texts = set()
    for epoch in range(200):
        row = _sample(refgeo[0], "grounding", options, epoch)
        assert row["messages"][0]["role"] == "user"  # Qwen JSON HBB prompts have no system message
        texts.add(row["messages"][0]["content"][1]["text"])
        answer = row["messages"][-1]["content"]
        assert re.fullmatch(
            r'```json\n\[\n\t\{"bbox_2d": \[\d+, \d+, \d+, \d+\], "label": "the vehicle on the left"\}\n\]\n```',
            answer,
        )
    assert texts == {t.format(expression="the vehicle on the left") for t in DEFAULT_PROMPTS["grounding"]}
    pool = ["Where is {expression}? JSON please.", "Box for {expression}."]
    chosen = {
        _sample(refgeo[0], "grounding", options, e, prompts=pool)["messages"][0]["content"][1]["text"]
        for e in range(60)
    }
    assert chosen == {t.format(expression="the vehicle on the left") for t in pool}


def test_synonyms():
    text = "Two vehicles near the Building and a parking lot; the Ship is big."
    for seed in range(20):  # two-word groups have one choice; ship/boat/vessel two
        out = apply_synonyms(text, random.Random(seed), 1.0)
        assert re.fullmatch(r"Two cars near the House and a car park; the (Boat|Vessel) is large\.", out), out
    assert apply_synonyms(text, random.Random(0), 0.0) == text
    groups = [["river", "stream"]]
    assert apply_synonyms("A River and rivers.", random.Random(1), 1.0, groups) == "A Stream and streams."
    hits = sum(apply_synonyms("vehicle", random.Random(k), 0.3) == "car" for k in range(2000))
    assert abs(hits / 2000 - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 2000)


def test_grounding_synonyms_keep_prompt_and_label_consistent(refgeo):
    options = OnlineOptions(prob_synonym=1.0, prob_plain_text_prompt=0.0)
    row = _sample(refgeo[0], "grounding", options)
    assert "the car on the left" in row["messages"][0]["content"][1]["text"]
    assert '"label": "the car on the left"' in row["messages"][-1]["content"]


def test_zoom_in_chain_messages(zoom):
    row = _sample(zoom[0], "zoom_vqa", OnlineOptions(prob_random_resize=1.0))  # never resized randomly
    system, user1, call, user2, answer = row["messages"]
    assert system == {"role": "system", "content": ZOOM_TOOL_SYSTEM_PROMPT}
    assert '"name": "image_zoom_in"' in system["content"] and system["content"].startswith("# Tools\n\n")
    full = user1["content"][0]
    rh, rw = smart_resize(150, 200, 28, MIN, MAX, convention="qwen_vl_utils")
    assert (full["resized_width"], full["resized_height"]) == (rw, rh) == (196, 140)
    assert (
        user1["content"][1]["text"]
        == "What color is the ship?\nZoom in to the region of interest and answer the question."
    )
    x1, y1, x2, y2 = (int(50 * 196 / 200), int(40 * 140 / 150), int(120 * 196 / 200), int(100 * 140 / 150))
    assert (
        call["content"]
        == f'<tool_call>\n{{"name": "image_zoom_in", "arguments": {{"bbox": [{x1}, {y1}, {x2}, {y2}]}}}}\n</tool_call>'
    )
    crop = user2["content"][0]
    ch, cw = smart_resize(60, 70, 28, MIN, MAX, convention="qwen_vl_utils")
    assert crop["crop"] == [50, 40, 120, 100] and (crop["resized_width"], crop["resized_height"]) == (cw, ch)
    crop_template = _sample(zoom[0], "zoom_vqa", OnlineOptions(), prompts=["Q: {question} (zoom first)"])
    assert crop_template["messages"][1]["content"][1]["text"] == "Q: What color is the ship? (zoom first)"
    assert user2["content"][1]["text"] == "Here's the zoomed-in image. You can complete your task now."
    assert answer == {"role": "assistant", "content": "white"}
    mcq = _sample(zoom[1], "zoom_vqa", OnlineOptions())["messages"][1]["content"][1]["text"]
    assert mcq == (
        "What is the object near the dock? The choices are listed below: \n(A) plane\n(B) ship\n(C) car\n(D) bridge\n"
        "Select the best answer to the above multiple-choice question based on the image. Respond with only the letter "
        "(A, B, C, D, or E) of the correct option.\nThe best answer is:\nZoom in to the region of interest and answer "
        "the question."
    )
    two_crops = _sample(zoom[2], "zoom_vqa", OnlineOptions())["messages"]
    assert [m["role"] for m in two_crops] == ["user", "assistant"] and two_crops[0]["content"][1][
        "text"
    ] == "How many ships are there?"
    no_chain = _sample(zoom[0], "zoom_vqa", OnlineOptions(zoom_chain=False))["messages"]
    assert len(no_chain) == 2 and no_chain[-1]["content"] == "white"


def test_small_image_is_enlarged_to_min_pixels():
    (record,), _ = process_source(
        "small",
        "vqa",
        {"format": "messages", "annotations": str(FIX / "small/messages.jsonl"), "tasks": ["vqa"]},
        OfflineOptions(),
    )
    row = _sample(
        record, "vqa", OnlineOptions(), prompts=["{question}"], min_pixels=224 * 224, max_pixels=1008 * 1008
    )
    image = row["messages"][0]["content"][0]
    assert (image["resized_width"], image["resized_height"]) == (224, 224)
    from rszoo.models.vlm.model import load_message_images

    (pil,) = load_message_images(row["messages"])
    assert pil.size == (224, 224)


def test_qa_tasks(tmp_path):
    folder = _records(
        "cls",
        "classification",
        {"format": "image_folder", "images": str(FIX / "classification"), "image_exts": [".png"]},
    )
    row = _sample(folder[1], "classification", OnlineOptions(), prompts=["Classes: {classes}."])
    assert row["messages"][0]["content"][1]["text"] == "Classes: airport, dense residential, forest."
    assert row["messages"][1]["content"] == "dense residential"
    caption = _records(
        "cap",
        "caption",
        {"format": "messages", "annotations": str(FIX / "small/messages.jsonl"), "tasks": ["caption"]},
    )[0]
    assert caption.answers == ["A small patch of water."]  # cleaned offline
    caption.answers = ["first", "second", "third"]
    answers = {_sample(caption, "caption", OnlineOptions(), e)["messages"][1]["content"] for e in range(40)}
    assert answers == {"first", "second", "third"}
    prompts = {
        _sample(caption, "caption", OnlineOptions(), e)["messages"][0]["content"][1]["text"]
        for e in range(80)
    }
    assert prompts == set(DEFAULT_PROMPTS["caption"])


def test_conversation_images_get_sizes_and_text_only_rows_pass():
    records = _records(
        "llava",
        "conversation",
        {
            "format": "llava",
            "annotations": str(FIX / "llava/geochat_instruct.json"),
            "images": str(FIX / "llava/images"),
        },
    )
    row = _sample(records[1], "conversation", OnlineOptions(prob_synonym=1.0))
    image = row["messages"][0]["content"][0]
    rh, rw = smart_resize(70, 30, 28, MIN, MAX, convention="qwen_vl_utils")
    assert (image["resized_width"], image["resized_height"]) == (rw, rh)
    assert row["messages"][2]["content"][0]["text"] == "Is there a house?"  # synonyms in user turns only
    assert row["messages"][1]["content"] == records[1].messages[1]["content"]
    text_only = _sample(records[2], "conversation", OnlineOptions())
    assert text_only["messages"] == records[2].messages


def test_samples_are_deterministic_per_seed_epoch_index(refgeo, dota):
    options = OnlineOptions(prob_random_resize=0.7, prob_plain_text_prompt=0.5, prob_synonym=0.3)
    for record, task in ((refgeo[0], "grounding"), (dota[0], "detection")):
        a = [json.dumps(_sample(record, task, options, epoch=e)) for e in range(10)]
        b = [json.dumps(_sample(record, task, options, epoch=e)) for e in range(10)]
        assert a == b and len(set(a)) > 3
        other_seed = [json.dumps(_sample(record, task, options, epoch=e, seed=1)) for e in range(10)]
        assert other_seed != a


def test_prompt_pool_validation():
    assert check_prompt_pool(["{question} ok"], "vqa", "p") == ["{question} ok"]
    with pytest.raises(ValueError, match=r"unknown placeholder\(s\) \['expression'\]"):
        check_prompt_pool(["{expression}"], "vqa", "p")
    with pytest.raises(ValueError, match=r"must contain \{expression\}"):
        check_prompt_pool(["Where is it?"], "grounding", "p")
    with pytest.raises(ValueError, match="detection subsets take no prompt templates"):
        check_prompt_pool(["find {x}"], "detection", "p")
    with pytest.raises(ValueError, match=r"p.prob_synonym: a probability in \[0, 1\]"):
        OnlineOptions(prob_synonym=1.5).validate("p")
