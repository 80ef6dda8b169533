"""CoT-SFT data: the position-aware writer and the external-CoT filters."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from rszoo.data.answers import has_valid_format, parse_answer, parse_box
from rszoo.data.cot import (
    GRID_CELLS,
    REC_PROMPT_TEMPLATE,
    build_cot_sft,
    build_external_cot_sft,
    cot_sft_sample,
    external_cot_to_sft,
    grid_cell,
    load_external_cot,
    write_position_aware_cot,
)
from rszoo.data.records import GroundingRecord
from rszoo.data.resize import box_to_input, input_size_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "grounding"
VLMR1_REC_TEMPLATE = (  # qwen_module.get_question_template("rec"), om-ai-lab/VLM-R1
    "{Question} First output the thinking process in <think> </think> tags and then output the final answer in "
    "<answer> </answer> tags. Output the final answer in JSON format."
)


def fixture_records() -> list[GroundingRecord]:
    rows = [json.loads(line) for line in (FIXTURES / "jsonl" / "grounding.jsonl").read_text().splitlines()]
    return [GroundingRecord.from_dict(row) for row in rows if row["box"][2] > row["box"][0]]


def random_record(rng: random.Random, k: int) -> GroundingRecord:
    width, height = rng.choice([(800, 800), (512, 512), (1024, 768), (300, 200)])
    x1, y1 = rng.uniform(0, width - 40), rng.uniform(0, height - 40)
    box = [x1, y1, x1 + rng.uniform(4, 39), y1 + rng.uniform(4, 39)]
    anchor = None
    if rng.random() < 0.6:
        ax, ay = rng.uniform(0, width - 60), rng.uniform(0, height - 60)
        anchor = {"id": 9, "category": rng.choice(["building", "harbor", "storage-tank"]), "color": "grey",
                  "size": "large", "hbox": [ax, ay, ax + 50, ay + 50]}  # fmt: skip
    facts = {
        "target": {"id": 1, "category": rng.choice(["ship", "small-vehicle", "airplane", "chimney"]),
                   "color": rng.choice(["white", "red", None]), "size": rng.choice(["small", "large", None]),
                   "grid": grid_cell(box, width, height), "hbox": box},
        "anchor": anchor,
        "relation": rng.choice(["left of", "right of", "above", "below", "next to"]) if anchor else None,
        "distractors": rng.randint(0, 4),
    }  # fmt: skip
    return GroundingRecord(f"r{k}", f"images/{k}.png", width, height, "the target", box, facts=facts)


def test_writer_output_is_valid_and_in_input_pixels() -> None:
    rng = random.Random(0)
    for k, record in enumerate(fixture_records() + [random_record(rng, k) for k in range(60)]):
        sample = write_position_aware_cot(record, seed=3)
        for mode in ("search", "fullmatch", "vlmr1_rec", "vlmr1_jsonl"):
            assert has_valid_format(sample.response, mode=mode), (k, mode, sample.response)
        size = (record.width, record.height)
        assert sample.input_size == input_size_for(size)
        assert sample.box_input == [round(v) for v in box_to_input(record.box, sample.input_size, size)]
        assert parse_box(sample.response) == [float(v) for v in sample.box_input]
        assert parse_answer(sample.response).think == sample.reasoning
        exact = box_to_input(record.box, sample.input_size, size)
        assert max(abs(a - b) for a, b in zip(sample.box_input, exact)) <= 0.5  # only integer rounding


def test_writer_is_deterministic_and_seeded() -> None:
    record = fixture_records()[0]
    assert write_position_aware_cot(record, seed=7) == write_position_aware_cot(record, seed=7)
    texts = {write_position_aware_cot(record, seed=s).reasoning for s in range(12)}
    assert len(texts) > 3  # phrasing variants
    assert all(write_position_aware_cot(record, seed=s).box_input == [5, 7, 12, 14] for s in range(3))
    assert build_cot_sft(fixture_records(), seed=1) == build_cot_sft(fixture_records(), seed=1)


def test_reasoning_follows_the_position_aware_order() -> None:
    # small white vehicle left of a large grey building; 1 distractor; 64 x 64 image
    record = fixture_records()[0]
    for seed in range(8):
        text = write_position_aware_cot(record, seed=seed).reasoning
        start = text.index(record.expression) + len(record.expression)  # what is asked comes first
        patterns = [
            r"two small vehicles",  # category + number of candidates
            r"top-left corner",  # grid cell
            r"large grey building",  # anchor
            r"small and white",  # size/colour cues
            r"\(5, 7\) to \(12, 14\)|\[5, 7, 12, 14\]",  # the box
        ]
        marks = [re.compile(p).search(text, start).start() for p in patterns]
        assert marks == sorted(marks), (seed, text)
        assert "left of" in text
        # anchor hbox [20, 4, 44, 24] in 64 x 64 -> input 56 x 56: centre (28, 12) in the top middle
        assert "(28, 12)" in text and "top middle" in text


def test_distractor_phrasing_and_missing_facts() -> None:
    unique = fixture_records()[1]  # the only building
    text = (
        write_position_aware_cot(unique, seed=0).reasoning
        + write_position_aware_cot(unique, seed=1).reasoning
    )
    assert "only building" in text or "just one building" in text
    bare = GroundingRecord("b", "x.png", 300, 300, "the thing", [250, 250, 290, 290], category="storage-tank")
    sample = write_position_aware_cot(bare)
    assert "bottom-right corner" in sample.reasoning and "storage tank" in sample.reasoning
    assert has_valid_format(sample.response, mode="vlmr1_rec")


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        ({"target": "ship"}, "'target' must be an object"),
        ({"target": {"grid": "middle"}}, "target.grid 'middle'"),
        ({"target": {}, "anchor": {"hbox": [0, 0, 1, 1]}, "relation": None}, "both be set"),
        ({"target": {}, "anchor": {"hbox": [0, 0, 1, 1]}, "relation": "inside"}, "relation 'inside'"),
        ({"target": {}, "anchor": {"hbox": [0, 0]}, "relation": "above"}, "anchor.hbox"),
        ({"target": {}, "distractors": -1}, "distractors"),
    ],
)
def test_bad_facts_are_rejected_naming_the_record(facts, message) -> None:
    record = GroundingRecord("bad-1", "x.png", 100, 100, "e", [1, 1, 5, 5], facts=facts)
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        write_position_aware_cot(record)
    assert "'bad-1'" in str(info.value)


def test_sft_sample_uses_the_vlmr1_rec_prompt() -> None:
    assert REC_PROMPT_TEMPLATE == VLMR1_REC_TEMPLATE
    record = fixture_records()[0]
    sample = cot_sft_sample(record, seed=2, max_pixels=28 * 28 * 4)
    user, assistant = sample["messages"]
    assert sample["id"] == "synth-000001-g00-cot" and sample["task"] == "grounding_cot"
    assert user["role"] == "user" and user["content"][0] == {"type": "image", "image": record.image}
    assert user["content"][1]["text"] == VLMR1_REC_TEMPLATE.format(Question=record.expression)
    assert assistant == {
        "role": "assistant",
        "content": write_position_aware_cot(record, 2, max_pixels=28 * 28 * 4).response,
    }
    assert write_position_aware_cot(record, 2, max_pixels=28 * 28 * 4).input_size == (56, 56)


def test_grid_cell_covers_the_3x3_layout() -> None:
    names = [grid_cell([x, y, x + 1, y + 1], 90, 90) for y in (10, 40, 70) for x in (10, 40, 70)]
    assert names == [cell for row in GRID_CELLS for cell in row]
    assert grid_cell([89, 89, 90, 90], 90, 90) == "bottom right"


# -- external CoT ---------------------------------------------------------------------------------------------------


def test_external_cot_filters_on_the_fixture() -> None:
    rows, report = load_external_cot(FIXTURES / "cot" / "external_cot.jsonl")
    assert [r.id for r in rows] == ["keep-original", "keep-bare-list"]
    assert report.total == 13 and report.kept == 2
    assert report.dropped == {"incomplete_reasoning": 5, "inconsistent_format": 4, "wrong_box": 2}
    assert report.reasons == {
        "empty_response": 1,
        "missing_think": 1,
        "unterminated_think": 1,
        "empty_think": 1,
        "truncated": 1,
        "bad_structure": 1,
        "not_json": 1,
        "non_integer": 1,
        "not_a_box": 1,
        "iou_below_threshold": 2,
    }
    assert report.first_line["iou_below_threshold"] == 12
    assert report.summary() == (
        "external_cot.jsonl: 2/13 kept; dropped incomplete_reasoning 5, inconsistent_format 4, wrong_box 2"
    )
    assert rows[1].answer_box == [60.0, 10.0, 81.0, 30.0] and rows[0].think.startswith("The expression asks")


def test_external_cot_box_space_and_threshold(tmp_path: Path) -> None:
    path = FIXTURES / "cot" / "external_cot.jsonl"
    rows, _ = load_external_cot(path, response_box_space="input")
    assert [r.id for r in rows] == ["wrong-space"]  # 128 x 96 -> 140 x 84: only the input-pixel answer fits
    loose, report = load_external_cot(path, min_iou=0.3)
    assert [r.id for r in loose] == ["keep-original", "keep-bare-list", "wrong-space"] and report.dropped[
        "wrong_box"
    ] == 1
    floats, _ = load_external_cot(path, require_int=False)
    assert "floats" in [r.id for r in floats]
    # without width/height the size is read from the image next to the JSONL
    stripped = tmp_path / "cot" / "rows.jsonl"
    stripped.parent.mkdir()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    for row in lines:
        row.pop("width"), row.pop("height")
        row["image"] = str((FIXTURES / "dior_rsvg" / "JPEGImages" / "00003.jpg").resolve())
    stripped.write_text("".join(json.dumps(r) + "\n" for r in lines))
    rows2, _ = load_external_cot(stripped, response_box_space="input")
    assert [r.id for r in rows2] == ["wrong-space"] and (rows2[0].width, rows2[0].height) == (128, 96)


def test_external_cot_to_sft_rewrites_the_answer_in_input_pixels() -> None:
    rows, _ = load_external_cot(FIXTURES / "cot" / "external_cot.jsonl")
    sample = external_cot_to_sft(rows[0])
    response = sample["messages"][1]["content"]
    assert parse_box(response) == [
        66.0,
        9.0,
        88.0,
        26.0,
    ]  # GT [60, 10, 80, 30] * (140 / 128, 84 / 96), rounded
    assert parse_answer(response).think == rows[0].think and has_valid_format(response, mode="vlmr1_rec")
    assert sample["messages"][0]["content"][1]["text"] == VLMR1_REC_TEMPLATE.format(Question=rows[0].question)
    samples = build_external_cot_sft(rows, max_pixels=56 * 56)  # a small model input: 128 x 96 -> 56 x 28
    assert [s["id"] for s in samples] == ["keep-original-cot", "keep-bare-list-cot"]
    size = input_size_for((128, 96), max_pixels=56 * 56)
    expected = [round(v) for v in box_to_input(rows[0].gt_box, size, (128, 96))]
    assert parse_box(samples[0]["messages"][1]["content"]) == [float(v) for v in expected]


def test_external_cot_bad_rows_raise_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"image": "a.png", "question": "q", "response": "r"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: missing 'box'"):
        load_external_cot(path)
    path.write_text('{"image": "a.png", "problem": "q", "gt_box": [0, 0, 1], "output": "r"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: GT 'box' must be 4 finite numbers"):
        load_external_cot(path)
    path.write_text(
        '{"image": "missing.png", "problem": "q", "bbox": [0, 0, 1, 1], "output": "<think>'
        + "x" * 30
        + '</think><answer>[0, 0, 1, 1]</answer>"}\n'
    )
    assert len(load_external_cot(path)[0]) == 1  # aliases accepted
    with pytest.raises(ValueError, match="needs the original size"):
        load_external_cot(path, response_box_space="input")
