"""VLM-R1's answer regexes, re-implemented from om-ai-lab/VLM-R1 for parity tests, and the shared string table.

Sources: ``src/open-r1-multimodal/src/open_r1/vlm_modules/qwen_module.py`` (``format_reward_rec``, ``iou_reward``),
``src/open-r1-multimodal/src/open_r1/grpo_jsonl.py`` (``format_reward``) and ``src/eval/test_rec_r1.py``
(``extract_bbox_answer``).
"""

from __future__ import annotations

import re


def ref_format_reward_rec(content: str) -> float:
    pattern = r"<think>.*?</think>\s*<answer>.*?\{.*\[\d+,\s*\d+,\s*\d+,\s*\d+\].*\}.*?</answer>"
    return 1.0 if re.search(pattern, content, re.DOTALL) is not None else 0.0


def ref_jsonl_format_reward(content: str) -> float:
    pattern = r"<think>.*?</think>\s*<answer>.*?</answer>"
    return 1.0 if re.fullmatch(pattern, content, re.DOTALL) else 0.0


def ref_iou_reward_box(content: str) -> list[int] | None:
    match = re.search(r"<answer>(.*?)</answer>", content, re.DOTALL)
    if not match:
        return None
    box = re.search(r"\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)]", match.group(1).strip())
    return [int(box.group(i)) for i in range(1, 5)] if box else None


def ref_eval_extract(content: str) -> list[int]:
    match = re.search(r"<answer>(.*?)</answer>", content, re.DOTALL)
    if match:
        box = re.search(r"\{.*\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)]\s*.*\}", match.group(1).strip(), re.DOTALL)
        if box:
            return [int(box.group(i)) for i in range(1, 5)]
    return [0, 0, 0, 0]


T = "<think>the target is at the top left</think>"
B = '{"bbox_2d": [10, 20, 30, 40]}'

# (text, search, fullmatch, tolerant box); VLM-R1 columns are computed by the references above.
CASES: list[tuple[str, bool, bool, list[float] | None]] = [
    (f"{T}<answer>{B}</answer>", True, True, [10, 20, 30, 40]),  # 0 canonical
    (f"{T}<answer>[10, 20, 30, 40]</answer>", True, True, [10, 20, 30, 40]),  # 1 no braces
    (f'{T}<answer>{{"bbox_2d": [10.5, 20, 30, 40]}}</answer>', True, True, [10.5, 20, 30, 40]),  # 2 float
    (f'{T}<answer>{{"bbox_2d": [-10, 20, 30, 40]}}</answer>', True, True, [-10, 20, 30, 40]),  # 3 negative
    (f"<answer>{B}</answer>", False, False, [10, 20, 30, 40]),  # 4 no think
    (f"{T}{B}", False, False, None),  # 5 no answer tags
    (
        f'{T}<answer>{B}</answer><answer>{{"bbox_2d": [5, 6, 7, 8]}}</answer>',
        True,
        True,
        [10, 20, 30, 40],
    ),  # 6 dup
    (f"{T}<answer>{B}</answer> done", True, False, [10, 20, 30, 40]),  # 7 trailing text
    (f"{T}<answer>{B}</answer>\n", True, True, [10, 20, 30, 40]),  # 8 trailing newline (we strip)
    (f"Sure! {T}<answer>{B}</answer>", True, False, [10, 20, 30, 40]),  # 9 leading text
    (
        f'{T}<answer>```json\n[{{"bbox_2d": [1, 2, 3, 4], "label": "ship"}}]\n```</answer>',
        True,
        True,
        [1, 2, 3, 4],
    ),
    (
        f'{T}<answer>{{"bbox_2d": [1, 2, 3, 4]}}, {{"bbox_2d": [5, 6, 7, 8]}}</answer>',
        True,
        True,
        [1, 2, 3, 4],
    ),  # 11
    (f'{T}<answer>{{"bbox_2d": [1, 2, 3]}}</answer>', False, False, None),  # 12 three numbers
    (f"{T}<answer>[1, 2, 3, 4, 5]</answer>", False, False, None),  # 13 five numbers
    (f'{T}<answer>{{"bbox_2d": [NaN, 2, 3, 4]}}</answer>', False, False, None),  # 14 NaN
    (f"{T}<answer>[1, 2, inf, 4]</answer>", False, False, None),  # 15 inf
    (f"{T}<answer></answer>", False, False, None),  # 16 empty answer
    ("asdf", False, False, None),  # 17 garbage
    ("", False, False, None),  # 18 empty
    (f'{T}<answer>{{"bbox_2d": [ 1, 2, 3, 4 ]}}</answer>', True, True, [1, 2, 3, 4]),  # 19 spaces in brackets
    (f'{T}<answer>{{"bbox_2d":[1,2,3,4]}}</answer>', True, True, [1, 2, 3, 4]),  # 20 compact
    (f"<answer>{B}</answer>{T}", False, False, [10, 20, 30, 40]),  # 21 think after answer
    (f"<think>t <answer>{B}</answer>", False, False, [10, 20, 30, 40]),  # 22 unterminated think
    (f"<think>line1\nline2</think>\n<answer>\n{B}\n</answer>", True, True, [10, 20, 30, 40]),  # 23 newlines
    (
        f'{T}<answer>{{"labels": ["a", "b"], "bbox_2d": [1, 2, 3, 4]}}</answer>',
        True,
        True,
        [1, 2, 3, 4],
    ),  # 24
    (
        f'{T}<answer>{{"labels": ["a", "b", "c", "d"], "bbox_2d": [1, 2, 3, 4]}}</answer>',
        False,
        False,
        None,
    ),  # 25
    (f"{T}<answer>[1e2, 2, 300, 4e1]</answer>", True, True, [100, 2, 300, 40]),  # 26 exponents
    (
        f"{T}<answer>none</answer><answer>[1, 2, 3, 4]</answer>",
        False,
        False,
        None,
    ),  # 27 box only in 2nd block
    (f"<THINK>t</THINK><ANSWER>{B}</ANSWER>", False, False, None),  # 28 upper-case tags
    (
        "<think>the box is [1, 2, 3, 4]</think><answer>the ship</answer>",
        False,
        False,
        None,
    ),  # 29 box in think
    (f"{T}<answer>{{</answer> [1,2,3,4] }}</answer>", False, False, None),  # 30 VLM-R1 greedy crossing
    (f"{T}<answer>[+1, 2, 3, 4]</answer>", True, True, [1, 2, 3, 4]),  # 31 explicit plus
    (f'{T}<answer>["1", "2", "3", "4"]</answer>', False, False, None),  # 32 quoted numbers
    (f"{T}<answer>[1, 2, 1e999, 4]</answer>", False, False, None),  # 33 overflow to inf
]
