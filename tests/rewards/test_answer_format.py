"""The answer format: parser and format check vs VLM-R1's regexes (re-implemented here from the upstream source)."""

from __future__ import annotations

import json

import pytest
from _vlmr1_reference import (
    CASES,
    B,
    T,
    ref_eval_extract,
    ref_format_reward_rec,
    ref_iou_reward_box,
    ref_jsonl_format_reward,
)

from rszoo.data.answers import format_answer, has_valid_format, parse_answer, parse_box


@pytest.mark.parametrize("index", range(len(CASES)))
def test_vlmr1_modes_equal_the_reference_regexes(index: int) -> None:
    text = CASES[index][0]
    assert has_valid_format(text, mode="vlmr1_rec") == bool(ref_format_reward_rec(text))
    assert has_valid_format(text, mode="vlmr1_jsonl") == bool(ref_jsonl_format_reward(text))
    ref_box = ref_iou_reward_box(text)
    assert parse_box(text, style="vlmr1") == (None if ref_box is None else [float(v) for v in ref_box])
    eval_box = parse_box(text, style="vlmr1_eval")
    assert (eval_box or [0, 0, 0, 0]) == ref_eval_extract(text)


@pytest.mark.parametrize("index", range(len(CASES)))
def test_tolerant_modes_match_the_hand_labels(index: int) -> None:
    text, search, fullmatch, box = CASES[index]
    assert has_valid_format(text, mode="search") is search
    assert has_valid_format(text, mode="fullmatch") is fullmatch
    assert parse_box(text) == (None if box is None else [float(v) for v in box])


def test_documented_differences_between_search_and_vlmr1_rec() -> None:
    differ = {
        i
        for i, (text, *_rest) in enumerate(CASES)
        if has_valid_format(text) != bool(ref_format_reward_rec(text))
    }
    # ours accepts: no braces (1), floats (2), negatives (3), spaces in brackets (19), exponents (26), plus sign (31);
    # VLM-R1 accepts: a 4-item non-numeric first list (25) and a box reached by crossing </answer> (30).
    assert differ == {1, 2, 3, 19, 25, 26, 30, 31}
    # fullmatch strips surrounding whitespace, VLM-R1's jsonl fullmatch does not (8); otherwise ours adds the box check
    differ_full = {
        i
        for i, (text, *_rest) in enumerate(CASES)
        if has_valid_format(text, "fullmatch") != bool(ref_jsonl_format_reward(text))
    }
    assert differ_full == {8, 12, 13, 14, 15, 16, 25, 27, 29, 30, 32, 33}


def test_eval_parser_takes_the_last_braced_box_and_reward_parser_the_first() -> None:
    text = CASES[11][0]
    assert parse_box(text, style="vlmr1") == [1.0, 2.0, 3.0, 4.0]
    assert parse_box(text, style="vlmr1_eval") == [5.0, 6.0, 7.0, 8.0]
    assert ref_eval_extract(text) == [5, 6, 7, 8]


def test_parse_answer_reports_reasons() -> None:
    reasons = {
        "x": "no_answer_tag",
        f"{T}<answer>  </answer>": "empty_answer",
        f"{T}<answer>the ship</answer>": "no_box",
        f"{T}<answer>[1, 2, 3]</answer>": "too_few_numbers",
        f"{T}<answer>[1, 2, NaN, 4]</answer>": "non_finite",
        f"{T}<answer>[1, 2, 1e999, 4]</answer>": "non_finite",
        f'{T}<answer>["a", 2, 3, 4]</answer>': "not_a_number",
        f"<answer>{B}</answer>": "no_think_before_answer",
    }
    for text, reason in reasons.items():
        assert parse_answer(text).reason == reason, text
    ok = parse_answer(CASES[0][0])
    assert (
        ok.has_format and ok.reason == "" and ok.think == "the target is at the top left" and ok.answer == B
    )
    assert parse_answer(None).reason == "not_text"  # type: ignore[arg-type]


def test_format_answer_round_trips_and_passes_every_mode() -> None:
    text = format_answer("reasoning", [10.49, 20.5, 30.51, 41.5])
    assert (
        text == '<think>reasoning</think><answer>{"bbox_2d": [10, 20, 31, 42]}</answer>'
    )  # round half to even
    assert json.loads(parse_answer(text).answer) == {"bbox_2d": [10, 20, 31, 42]}
    assert parse_box(text) == [10.0, 20.0, 31.0, 42.0]
    for mode in ("search", "fullmatch", "vlmr1_rec", "vlmr1_jsonl"):
        assert has_valid_format(text, mode=mode)
    assert ref_format_reward_rec(text) == 1.0 and ref_jsonl_format_reward(text) == 1.0


@pytest.mark.parametrize(
    ("reasoning", "box"),
    [("r", [1, 2, 3]), ("r", [1, 2, float("nan"), 4]), ("r", [-1, 2, 3, 4]), ("a </think> b", [1, 2, 3, 4])],
)
def test_format_answer_rejects_bad_input(reasoning: str, box: list[float]) -> None:
    with pytest.raises(ValueError, match="format_answer"):
        format_answer(reasoning, box)


def test_bad_mode_and_style_raise() -> None:
    with pytest.raises(ValueError, match="mode"):
        has_valid_format("x", mode="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="style"):
        parse_answer("<answer>[1, 2, 3, 4]</answer>", style="nope")  # type: ignore[arg-type]
