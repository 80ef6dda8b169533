"""The grounding answer format: ``<think>...</think><answer>{"bbox_2d": [x1, y1, x2, y2]}</answer>``.

This is VLM-R1's REC convention for Qwen2.5-VL: the box is in absolute pixels of the *resized* model input (see
:mod:`rszoo.data.resize`), written as JSON because Qwen2.5-VL's native grounding output is ``{"bbox_2d": [...]}``.

Three things live here:

* :func:`format_answer` writes a target completion (SFT data, golden tests).
* :func:`parse_box` / :func:`parse_answer` read a model completion. Model output never raises: anything that is not a
  box gives ``None`` (and :class:`ParsedAnswer` says why).
* :func:`has_valid_format` is the format check behind the ``format`` reward, with exact VLM-R1 modes for parity.

Parsing rules of the tolerant parser (``style="tolerant"``, the default):

1. Take the first ``<answer>...</answer>`` block (non-greedy, across lines). No block -> ``None``.
2. Inside it, look at the innermost ``[...]`` lists in order (so ``{"bbox_2d": [...]}``, a bare ``[a, b, c, d]``, a
   Qwen-style fenced ```` ```json [{"bbox_2d": [...], "label": "..."}] ``` ```` and ``[[a, b, c, d]]`` all work).
   Lists that do not have exactly 4 comma-separated items are skipped (e.g. a list of labels).
3. The first 4-item list *is* the box: each item must be a plain decimal number (integer or float, optional sign and
   exponent). ``NaN``, ``inf``, quoted numbers, or a value that overflows to infinity make the whole answer ``None``
   -- a later list is not consulted, because "the first box" is what the model committed to.

Negative numbers parse (``[-3, 4, 10, 12]`` -> ``[-3.0, 4.0, 10.0, 12.0]``); judging them (negative, inverted or
out-of-image boxes) is the reward's job, which can then count *why* a box was rejected.

Example:
    >>> text = format_answer("The plane is at the top left.", [10.4, 20, 110, 80.6])
    >>> text
    '<think>The plane is at the top left.</think><answer>{"bbox_2d": [10, 20, 110, 81]}</answer>'
    >>> parse_box(text)
    [10.0, 20.0, 110.0, 81.0]
    >>> parse_box("<answer>```json\\n[{\\"bbox_2d\\": [1.5, 2, 30, 40], \\"label\\": \\"ship\\"}]\\n```</answer>")
    [1.5, 2.0, 30.0, 40.0]
    >>> parse_box("<answer>[NaN, 1, 2, 3]</answer>") is None
    True
    >>> has_valid_format(text), has_valid_format(text, mode="vlmr1_rec")
    (True, True)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "FORMAT_MODES",
    "PARSE_STYLES",
    "REC_PROMPT_TEMPLATE",
    "VLMR1_ANSWER_PATTERN",
    "VLMR1_EVAL_BOX_PATTERN",
    "VLMR1_JSONL_FORMAT_PATTERN",
    "VLMR1_REC_FORMAT_PATTERN",
    "VLMR1_REWARD_BOX_PATTERN",
    "ParsedAnswer",
    "format_answer",
    "has_valid_format",
    "parse_answer",
    "parse_box",
]

# VLM-R1's REC prompt: {Question} is the referring expression. No system turn (Qwen2.5-VL's template adds its default).
REC_PROMPT_TEMPLATE = (
    "{Question} First output the thinking process in <think> </think> tags and then output the final answer in "
    "<answer> </answer> tags. Output the final answer in JSON format."
)

# --- VLM-R1's regular expressions, verbatim (om-ai-lab/VLM-R1, src/open-r1-multimodal/src/open_r1) ---------------
#: ``vlm_modules/qwen_module.py: format_reward_rec`` (``re.search`` with DOTALL).
VLMR1_REC_FORMAT_PATTERN = r"<think>.*?</think>\s*<answer>.*?\{.*\[\d+,\s*\d+,\s*\d+,\s*\d+\].*\}.*?</answer>"
#: ``grpo_jsonl.py: format_reward`` (``re.fullmatch`` with DOTALL; no box check at all).
VLMR1_JSONL_FORMAT_PATTERN = r"<think>.*?</think>\s*<answer>.*?</answer>"
#: ``qwen_module.py: iou_reward`` answer block and box (``re.search``; first match wins).
VLMR1_ANSWER_PATTERN = r"<answer>(.*?)</answer>"
VLMR1_REWARD_BOX_PATTERN = r"\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)]"
#: ``src/eval/test_rec_r1.py: extract_bbox_answer`` (braces required; the greedy ``.*`` makes it pick the *last*
#: 4-integer list that is followed by a ``}``).
VLMR1_EVAL_BOX_PATTERN = r"\{.*\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)]\s*.*\}"

FORMAT_MODES = ("search", "fullmatch", "vlmr1_rec", "vlmr1_jsonl")
PARSE_STYLES = ("tolerant", "vlmr1", "vlmr1_eval")

_ANSWER_RE = re.compile(VLMR1_ANSWER_PATTERN, re.DOTALL)
_THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_THINK_ANSWER_RE = re.compile(r"<think>(.*?)</think>\s*<answer>(.*?)</answer>", re.DOTALL)
_INNER_LIST_RE = re.compile(r"\[([^\[\]]*)\]")
_NUMBER_RE = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_VLMR1_REC_RE = re.compile(VLMR1_REC_FORMAT_PATTERN, re.DOTALL)
_VLMR1_JSONL_RE = re.compile(VLMR1_JSONL_FORMAT_PATTERN, re.DOTALL)
_VLMR1_BOX_RE = re.compile(VLMR1_REWARD_BOX_PATTERN)
_VLMR1_EVAL_BOX_RE = re.compile(VLMR1_EVAL_BOX_PATTERN, re.DOTALL)

ParseStyle = Literal["tolerant", "vlmr1", "vlmr1_eval"]
FormatMode = Literal["search", "fullmatch", "vlmr1_rec", "vlmr1_jsonl"]


@dataclass(frozen=True)
class ParsedAnswer:
    """Everything read from one completion.

    Attributes:
        think: text inside the first ``<think>...</think>`` (``None`` if there is no closed think block).
        answer: text inside the first ``<answer>...</answer>`` (``None`` if there is none).
        box: the parsed box as 4 floats, or ``None``.
        has_format: :func:`has_valid_format` in mode ``"search"`` (``"vlmr1_rec"`` for the VLM-R1 parse styles).
        reason: empty when ``box`` parsed, else one of ``"no_answer_tag"``, ``"empty_answer"``, ``"no_box"``,
            ``"too_few_numbers"``, ``"not_a_number"``, ``"non_finite"``, ``"not_text"`` (why ``box`` is ``None``); when
            the box parsed but the format failed it is ``"no_think_before_answer"``.
    """

    think: str | None
    answer: str | None
    box: list[float] | None
    has_format: bool
    reason: str


def _parse_number(token: str) -> float | None:
    token = token.strip()
    if not _NUMBER_RE.fullmatch(token):
        return None
    value = float(token)
    return value if math.isfinite(value) else None


def _box_from_answer_tolerant(answer: str) -> tuple[list[float] | None, str]:
    if not answer.strip():
        return None, "empty_answer"
    saw_short_list = False
    for match in _INNER_LIST_RE.finditer(answer):
        items = match.group(1).split(",")
        if len(items) != 4:
            saw_short_list = saw_short_list or (len(items) < 4 and any(_NUMBER_RE.search(i) for i in items))
            continue
        values = [_parse_number(item) for item in items]
        bad = [item.strip() for item, v in zip(items, values) if v is None]
        if not bad:
            return [float(v) for v in values if v is not None], ""
        # NaN/inf spelled out, or a decimal that overflows float, are "non_finite"; anything else is not a number.
        non_finite = all(
            re.fullmatch(r"[-+]?(nan|inf|infinity)", b, re.IGNORECASE) or _NUMBER_RE.fullmatch(b) for b in bad
        )
        return None, "non_finite" if non_finite else "not_a_number"
    return None, "too_few_numbers" if saw_short_list else "no_box"


def _box_from_answer_vlmr1(answer: str, eval_style: bool) -> list[float] | None:
    match = (_VLMR1_EVAL_BOX_RE if eval_style else _VLMR1_BOX_RE).search(answer.strip())
    return [float(int(g)) for g in match.groups()] if match else None


def parse_answer(text: str, style: ParseStyle = "tolerant") -> ParsedAnswer:
    """Read think text, answer text and box from a completion; never raises.

    Args:
        text: the decoded completion (special tokens already removed, as trl and VLM-R1 decode).
        style: ``"tolerant"`` (module docstring rules), ``"vlmr1"`` (exactly ``Qwen2VLModule.iou_reward``: first
            answer block, first ``[int, int, int, int]``, non-negative integers only), or ``"vlmr1_eval"`` (exactly
            ``test_rec_r1.extract_bbox_answer``, but returning ``None`` instead of its ``[0, 0, 0, 0]`` fallback).

    Returns:
        A :class:`ParsedAnswer`.
    """
    if not isinstance(text, str):
        return ParsedAnswer(None, None, None, False, "not_text")
    think_match = _THINK_RE.search(text)
    think = think_match.group(1) if think_match else None
    answer_match = _ANSWER_RE.search(text)
    if answer_match is None:
        return ParsedAnswer(think, None, None, False, "no_answer_tag")
    answer = answer_match.group(1)
    if style == "tolerant":
        box, reason = _box_from_answer_tolerant(answer)
    elif style in ("vlmr1", "vlmr1_eval"):
        box = _box_from_answer_vlmr1(answer, eval_style=style == "vlmr1_eval")
        reason = "" if box is not None else ("empty_answer" if not answer.strip() else "no_box")
    else:
        raise ValueError(f"parse_answer: style must be one of {PARSE_STYLES}, got {style!r}")
    has_format = has_valid_format(text, mode="search" if style == "tolerant" else "vlmr1_rec")
    if box is not None and not has_format:
        reason = "no_think_before_answer"
    return ParsedAnswer(think, answer, box, has_format, reason)


def parse_box(text: str, style: ParseStyle = "tolerant") -> list[float] | None:
    """The first box of the first ``<answer>`` block as 4 floats, or ``None``; never raises.

    See :func:`parse_answer` for ``style``.

    Example:
        >>> parse_box('<think>..</think><answer>{"bbox_2d": [-3, 4.5, 10, 1e2]}</answer>')
        [-3.0, 4.5, 10.0, 100.0]
        >>> parse_box('<answer>{"bbox_2d": [1, 2, 3]}</answer>') is None
        True
        >>> parse_box('<answer>[1.5, 2, 30, 40]</answer>', style="vlmr1") is None  # VLM-R1 reads integers only
        True
    """
    return parse_answer(text, style=style).box


def has_valid_format(text: str, mode: FormatMode = "search") -> bool:
    """Whether a completion has the think + answer + box format; never raises.

    Modes:
        * ``"search"`` (default): somewhere in the text a ``<think>...</think>`` is followed (after optional
          whitespace) by an ``<answer>...</answer>`` whose content holds a box by the tolerant parser (floats,
          negatives, no braces needed). Text before and after is allowed, like ``format_reward_rec``.
        * ``"fullmatch"``: the whole text, after stripping surrounding whitespace, is exactly
          ``<think>...</think>\\s*<answer>...</answer>`` (like ``grpo_jsonl.format_reward``) *and* the first answer
          block holds a box by the tolerant parser.
        * ``"vlmr1_rec"``: exactly VLM-R1's ``format_reward_rec``: ``re.search`` of
          :data:`VLMR1_REC_FORMAT_PATTERN` -- braces around a list of 4 non-negative *integers* are required;
          floats and negative numbers fail; the greedy ``.*`` may match the box anywhere in the answer.
        * ``"vlmr1_jsonl"``: exactly VLM-R1's ``grpo_jsonl.format_reward``: ``re.fullmatch`` of
          :data:`VLMR1_JSONL_FORMAT_PATTERN` on the unstripped text (no box check; a trailing newline fails).

    How they relate: ``"search"`` accepts floats, negatives, missing braces and whitespace inside the brackets, which
    ``"vlmr1_rec"`` rejects; ``"vlmr1_rec"`` accepts an answer whose first list is not a box as long as *some*
    4-integer list sits inside braces, which ``"search"`` rejects (it reads only the first 4-item list). For the
    completions :func:`format_answer` writes, all four modes agree (True).
    """
    if not isinstance(text, str):
        return False
    if mode == "vlmr1_rec":
        return _VLMR1_REC_RE.search(text) is not None
    if mode == "vlmr1_jsonl":
        return _VLMR1_JSONL_RE.fullmatch(text) is not None
    if mode == "search":
        match = _THINK_ANSWER_RE.search(text)
        answer = match.group(2) if match else None
    elif mode == "fullmatch":
        stripped = text.strip()
        match = _THINK_ANSWER_RE.fullmatch(stripped)
        # fullmatch lets the answer group run across a "</answer><answer>" pair; the box must be in the first block
        first = _ANSWER_RE.search(stripped, match.end(1)) if match else None
        answer = first.group(1) if first else None
    else:
        raise ValueError(f"has_valid_format: mode must be one of {FORMAT_MODES}, got {mode!r}")
    return answer is not None and _box_from_answer_tolerant(answer)[0] is not None


def format_answer(reasoning: str, box: Sequence[float]) -> str:
    """Write ``<think>{reasoning}</think><answer>{"bbox_2d": [x1, y1, x2, y2]}</answer>`` with integer coordinates.

    Coordinates are rounded with Python's ``round`` (half to even), matching how integer targets are usually
    produced. The result passes every :func:`has_valid_format` mode.

    Args:
        reasoning: the thinking text; it must not contain ``<think>``/``</think>``/``<answer>``/``</answer>`` tags.
        box: ``[x1, y1, x2, y2]`` in model-input pixels; finite and non-negative (VLM-R1's format reward only
            accepts non-negative integers).

    Raises:
        ValueError: for a box that is not 4 finite non-negative numbers, or reasoning containing the tags.
    """
    values = list(box)
    if len(values) != 4 or not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
        raise ValueError(f"format_answer: box must be 4 finite numbers [x1, y1, x2, y2], got {box!r}")
    if any(v < 0 for v in values):
        raise ValueError(f"format_answer: box coordinates must be >= 0 (model-input pixels), got {box!r}")
    for tag in ("<think>", "</think>", "<answer>", "</answer>"):
        if tag in reasoning:
            raise ValueError(
                f"format_answer: reasoning must not contain the tag {tag!r}; got {reasoning[:80]!r}..."
            )
    coords = [round(float(v)) for v in values]
    return f"<think>{reasoning}</think><answer>{json.dumps({'bbox_2d': coords})}</answer>"
