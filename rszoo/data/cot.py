"""Chain-of-thought SFT data for RSGround-R1 Stage 1 (CoT-SFT for position awareness).

Two sources:

(a) :func:`write_position_aware_cot` -- a deterministic writer that turns a :class:`GroundingRecord` with structured
    ``facts`` (schema in :mod:`rszoo.data.records`) into position-aware reasoning, in this order: what the
    expression asks for -> the target's category and how many candidates of that category exist -> the 3x3 grid
    cell -> the relation to the anchor object (with the anchor's approximate position) -> size/colour cues -> the
    box. The answer is ``{"bbox_2d": [...]}`` in **resized-input pixels**
    (:func:`rszoo.data.resize.smart_resize`), the space Qwen2.5-VL reads and writes. Phrasing variants are chosen by
    a ``random.Random`` seeded with ``(seed, record.id)``, so the output is identical on every run and machine.
    :func:`cot_sft_sample` wraps it into a messages-format sample with VLM-R1's REC prompt
    (:data:`REC_PROMPT_TEMPLATE`).

(b) :func:`load_external_cot` -- CoT written by an external MLLM (the paper used Qwen2.5-VL-72B, prompted with the
    question and GT box to answer ``<think>thinking process here</think><answer>GT coordinates</answer>``), with the
    paper's three filters: incomplete reasoning, inconsistent coordinate format, wrong box.

Example:
    >>> from rszoo.data.records import GroundingRecord
    >>> facts = {"target": {"id": 1, "category": "ship", "color": "white", "size": "small", "grid": "top left",
    ...                     "hbox": [40, 30, 80, 60]},
    ...          "anchor": {"id": 2, "category": "harbor", "color": "grey", "size": "large", "hbox": [100, 20, 300, 120]},
    ...          "relation": "left of", "distractors": 2}
    >>> record = GroundingRecord("s1", "img.png", 400, 400, "the small ship left of the harbor", [40, 30, 80, 60],
    ...                          category="ship", facts=facts)
    >>> sample = write_position_aware_cot(record, seed=0)
    >>> sample.box_input, sample.input_size
    ([39, 29, 78, 59], (392, 392))
    >>> from rszoo.data.answers import has_valid_format
    >>> has_valid_format(sample.response, mode="fullmatch") and has_valid_format(sample.response, mode="vlmr1_rec")
    True
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rszoo.data.answers import REC_PROMPT_TEMPLATE, format_answer
from rszoo.data.records import GroundingRecord, iter_jsonl
from rszoo.data.resize import QWEN2_5_VL_FACTOR, box_to_input, input_size_for
from rszoo.rewards.functional import iou

__all__ = [
    "GRID_CELLS",
    "REC_PROMPT_TEMPLATE",
    "CoTFilterReport",
    "CoTSample",
    "ExternalCoT",
    "build_cot_sft",
    "build_external_cot_sft",
    "cot_sft_sample",
    "external_cot_to_sft",
    "grid_cell",
    "load_external_cot",
    "write_position_aware_cot",
]

#: VLM-R1's REC question template (``Qwen2VLModule.get_question_template("rec")``), used for SFT and RL alike.
GRID_CELLS = (
    ("top left", "top", "top right"),
    ("left", "center", "right"),
    ("bottom left", "bottom", "bottom right"),
)
RELATIONS = ("left of", "right of", "above", "below", "next to")
DEFAULT_MIN_PIXELS = 4 * 28 * 28
DEFAULT_MAX_PIXELS = 16384 * 28 * 28

_GRID_PHRASE = {
    "top left": "top-left corner",
    "top": "top middle",
    "top right": "top-right corner",
    "left": "middle of the left side",
    "center": "center",
    "right": "middle of the right side",
    "bottom left": "bottom-left corner",
    "bottom": "bottom middle",
    "bottom right": "bottom-right corner",
}
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def grid_cell(box: Sequence[float], width: float, height: float) -> str:
    """The 3x3 grid cell (``GRID_CELLS`` name) containing the centre of ``box`` in a ``width x height`` image.

    Example:
        >>> grid_cell([0, 0, 10, 10], 300, 300), grid_cell([140, 140, 160, 160], 300, 300)
        ('top left', 'center')
    """
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    col = min(max(int(cx / width * 3), 0), 2)
    row = min(max(int(cy / height * 3), 0), 2)
    return GRID_CELLS[row][col]


# -- small English helpers ---------------------------------------------------------------------------------------
def _noun(category: str) -> str:
    return category.replace("-", " ").replace("_", " ").strip() or "object"


def _plural(noun: str) -> str:
    if re.search(r"(s|x|z|ch|sh)$", noun):
        return noun + "es"
    if re.search(r"[^aeiou]y$", noun):
        return noun[:-1] + "ies"
    return noun + "s"


def _article(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _count(n: int) -> str:
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)


def _describe(obj: Mapping[str, Any]) -> str:
    words = [str(obj[k]) for k in ("size", "color") if obj.get(k)]
    return " ".join([*words, _noun(str(obj.get("category", "")))])


@dataclass(frozen=True)
class CoTSample:
    """A written chain of thought.

    Attributes:
        id: the record id.
        reasoning: the text inside ``<think>``.
        box_input: the GT box in resized-input pixels, rounded to integers (what the answer holds).
        input_size: ``(W, H)`` of the resized model input.
        response: ``<think>...</think><answer>{"bbox_2d": [...]}</answer>``.
    """

    id: str
    reasoning: str
    box_input: list[int]
    input_size: tuple[int, int]
    response: str


def _validate_facts(record: GroundingRecord) -> dict[str, Any]:
    facts = record.facts or {}
    if not facts:
        return {}
    where = f"grounding record {record.id!r} facts"
    target = facts.get("target")
    if not isinstance(target, Mapping):
        raise ValueError(f"{where}: 'target' must be an object with category/color/size/grid/hbox")
    grid = target.get("grid")
    if grid is not None and grid not in _GRID_PHRASE:
        raise ValueError(f"{where}: target.grid {grid!r} is not one of {list(_GRID_PHRASE)}")
    anchor, relation = facts.get("anchor"), facts.get("relation")
    if (anchor is None) != (relation is None):
        raise ValueError(f"{where}: 'anchor' and 'relation' must both be set or both be null")
    if relation is not None and relation not in RELATIONS:
        raise ValueError(f"{where}: relation {relation!r} is not one of {list(RELATIONS)}")
    if anchor is not None:
        hbox = anchor.get("hbox") if isinstance(anchor, Mapping) else None
        if not isinstance(hbox, Sequence) or len(hbox) != 4:
            raise ValueError(f"{where}: anchor.hbox must be [x1, y1, x2, y2], got {hbox!r}")
    distractors = facts.get("distractors")
    if distractors is not None and (not isinstance(distractors, int) or distractors < 0):
        raise ValueError(f"{where}: distractors must be a non-negative integer, got {distractors!r}")
    return dict(facts)


def write_position_aware_cot(
    record: GroundingRecord,
    seed: int = 0,
    *,
    factor: int = QWEN2_5_VL_FACTOR,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> CoTSample:
    """Write position-aware reasoning and the answer for one record (deterministic in ``seed`` and ``record.id``).

    Without ``facts`` the writer still works from the record itself (category, grid cell from the box), skipping
    the candidate count and anchor steps. All coordinates in the text are resized-input pixels, like the answer.

    Args:
        record: the grounding record (box in original pixels).
        seed: phrasing seed.
        factor, min_pixels, max_pixels: smart_resize settings of the model to be trained.

    Raises:
        ValueError: for ``facts`` that do not follow the schema (the message names the record and key).
    """
    facts = _validate_facts(record)
    rng = random.Random(f"rszoo-cot:{seed}:{record.id}")
    original = (record.width, record.height)
    input_size = input_size_for(original, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    box_input = [round(v) for v in box_to_input(record.box, input_size, original)]
    target = facts.get("target") or {}
    category = _noun(str(target.get("category") or record.category or "object"))
    expression = record.expression.strip()
    steps: list[str] = []

    steps.append(
        rng.choice(
            (
                f'The question asks me to locate "{expression}".',
                f'I need to find "{expression}" in this image.',
                f'The referring expression is "{expression}", so I have to find that object.',
            )
        )
    )

    distractors = facts.get("distractors")
    if distractors is None:
        steps.append(
            rng.choice((f"The target is {_article(category)}.", f"I am looking for {_article(category)}."))
        )
    elif distractors == 0:
        steps.append(
            rng.choice(
                (
                    f"The target is {_article(category)}, and it is the only {category} in the scene, "
                    "so the category alone identifies it.",
                    f"There is just one {category} in this image, so there is no ambiguity about which object is meant.",
                )
            )
        )
    else:
        total = distractors + 1
        steps.append(
            rng.choice(
                (
                    f"The target is {_article(category)}, and I can see {_count(total)} {_plural(category)} in the "
                    "scene, so the category alone is not enough and I must use position.",
                    f"There are {_count(total)} {_plural(category)} in this image; {_count(distractors)} of them "
                    f"{'is a distractor' if distractors == 1 else 'are distractors'}, so I need spatial cues to "
                    "pick the right one.",
                )
            )
        )

    superlative = facts.get("superlative")
    if superlative and distractors:
        steps.append(
            rng.choice(
                (
                    f"Comparing the {_plural(category)}, the target is the {superlative} one.",
                    f"Of these {_plural(category)}, the expression picks the {superlative}.",
                )
            )
        )

    grid = target.get("grid") or grid_cell(record.box, record.width, record.height)
    place = _GRID_PHRASE[grid]
    steps.append(
        rng.choice(
            (
                f"The target lies in the {place} of the image.",
                f"Spatially, it is in the {place} of the image.",
                f"Looking at the 3x3 layout of the image, the target is in the {place}.",
            )
        )
    )

    anchor, relation = facts.get("anchor"), facts.get("relation")
    if anchor is not None:
        anchor_box = box_to_input([float(v) for v in anchor["hbox"]], input_size, original)
        ax, ay = round((anchor_box[0] + anchor_box[2]) / 2), round((anchor_box[1] + anchor_box[3]) / 2)
        anchor_place = _GRID_PHRASE[grid_cell(anchor["hbox"], record.width, record.height)]
        anchor_name = _describe(anchor)
        tx, ty = round((box_input[0] + box_input[2]) / 2), round((box_input[1] + box_input[3]) / 2)
        steps.append(
            rng.choice(
                (
                    f"It is {relation} the {anchor_name}, which is at about ({ax}, {ay}) in the {anchor_place} of "
                    f"the image; the {category} centred near ({tx}, {ty}) fits that relation.",
                    f"The expression relates it to {_article(anchor_name)}. That {_noun(str(anchor['category']))} "
                    f"sits around ({ax}, {ay}), in the {anchor_place}, and the target near ({tx}, {ty}) is "
                    f"{relation} it.",
                )
            )
        )

    size, color = target.get("size"), target.get("color")
    if size or color:
        cue = " and ".join(str(c) for c in (size, color) if c)
        steps.append(
            rng.choice(
                (
                    f"It is {cue}, which matches the description.",
                    f"Its appearance ({cue}) is consistent with the expression.",
                )
            )
        )

    x1, y1, x2, y2 = box_input
    steps.append(
        rng.choice(
            (
                f"So the {category} spans from ({x1}, {y1}) to ({x2}, {y2}).",
                f"Therefore its bounding box is [{x1}, {y1}, {x2}, {y2}].",
            )
        )
    )
    reasoning = " ".join(steps)
    return CoTSample(record.id, reasoning, box_input, input_size, format_answer(reasoning, box_input))


def cot_sft_sample(record: GroundingRecord, seed: int = 0, **resize: Any) -> dict[str, Any]:
    """A messages-format SFT sample (see :mod:`rszoo.data.records`) with VLM-R1's REC prompt and the CoT response.

    There is no system turn (VLM-R1's REC path has none; Qwen's chat template adds its default one). ``resize``
    takes ``factor``, ``min_pixels``, ``max_pixels``.
    """
    sample = write_position_aware_cot(record, seed, **resize)
    return {
        "id": f"{record.id}-cot",
        "task": "grounding_cot",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "image": record.image},
                    {"type": "text", "text": REC_PROMPT_TEMPLATE.format(Question=record.expression.strip())},
                ],
            },
            {"role": "assistant", "content": sample.response},
        ],
    }


def build_cot_sft(records: Iterable[GroundingRecord], seed: int = 0, **resize: Any) -> list[dict[str, Any]]:
    """:func:`cot_sft_sample` for every record (write them with :func:`rszoo.data.records.write_jsonl`)."""
    return [cot_sft_sample(record, seed, **resize) for record in records]


# -- (b) external CoT ------------------------------------------------------------------------------------------------
_KEY_ALIASES = {
    "question": ("question", "problem"),
    "box": ("box", "gt_box", "bbox"),
    "response": ("response", "output"),
}
_STRUCTURE_RE = re.compile(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", re.DOTALL)
FILTER_CATEGORIES = ("incomplete_reasoning", "inconsistent_format", "wrong_box")


@dataclass(frozen=True)
class ExternalCoT:
    """One external CoT row that passed the filters.

    Attributes:
        id: the row's ``id`` or ``<file stem>-<line>``.
        image: image path as written in the row.
        question: the referring expression.
        gt_box: GT box in original pixels.
        think: the reasoning text (stripped).
        answer_box: the box the response gave, in ``response_box_space``.
        width, height: original image size, when known.
        line: 1-based line in the JSONL file.
    """

    id: str
    image: str
    question: str
    gt_box: list[float]
    think: str
    answer_box: list[float]
    width: int | None
    height: int | None
    line: int


@dataclass
class CoTFilterReport:
    """Counts of kept and dropped rows.

    Attributes:
        path: the JSONL read.
        total, kept: rows read and kept.
        dropped: per filter category (``incomplete_reasoning``, ``inconsistent_format``, ``wrong_box``).
        reasons: per fine-grained reason (e.g. ``unterminated_think``, ``not_json``, ``iou_below_threshold``).
        first_line: the first line number that hit each reason (to inspect examples).
    """

    path: str
    total: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    first_line: dict[str, int] = field(default_factory=dict)

    def drop(self, category: str, reason: str, line: int) -> None:
        self.dropped[category] += 1
        self.reasons[reason] += 1
        self.first_line.setdefault(reason, line)

    def summary(self) -> str:
        """One line, e.g. ``cot.jsonl: 2/13 kept; dropped incomplete_reasoning 5, inconsistent_format 4, ...``."""
        parts = ", ".join(f"{c} {self.dropped.get(c, 0)}" for c in FILTER_CATEGORIES)
        return f"{Path(self.path).name}: {self.kept}/{self.total} kept; dropped {parts}"


def _field(row: Mapping[str, Any], name: str, where: str) -> Any:
    for key in _KEY_ALIASES.get(name, (name,)):
        if key in row:
            return row[key]
    raise ValueError(f"{where}: missing {name!r} (accepted keys: {list(_KEY_ALIASES.get(name, (name,)))})")


def _check_reasoning(response: Any, min_think_chars: int) -> tuple[str, str] | tuple[None, str]:
    """``(think, "")`` when the reasoning is complete, else ``(None, reason)``."""
    if not isinstance(response, str) or not response.strip():
        return None, "empty_response"
    if "<think>" not in response:
        return None, "missing_think"
    after = response.split("<think>", 1)[1]
    if "</think>" not in after:
        return None, "unterminated_think"
    think = after.split("</think>", 1)[0].strip()
    if len(think) < min_think_chars:
        return None, "empty_think"
    rest = after.split("</think>", 1)[1]
    if "<answer>" not in rest or "</answer>" not in rest.split("<answer>", 1)[1]:
        return None, "truncated"
    return think, ""


def _check_answer_format(answer: str, require_int: bool) -> tuple[list[float] | None, str]:
    """The box of an answer in the expected format (``{"bbox_2d": [4 numbers]}`` or ``[4 numbers]``)."""
    try:
        value = json.loads(answer)
    except json.JSONDecodeError:
        return None, "not_json"
    if isinstance(value, Mapping):
        value = value.get("bbox_2d")
    if not isinstance(value, list) or len(value) != 4:
        return None, "not_a_box"
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return None, "not_a_box"
    if require_int and not all(isinstance(v, int) for v in value):
        return None, "non_integer"
    box = [float(v) for v in value]
    if min(box) < 0:
        return None, "negative"
    if not (box[2] > box[0] and box[3] > box[1]):
        return None, "inverted"
    return box, ""


def load_external_cot(
    path: str | Path,
    *,
    min_iou: float = 0.8,
    response_box_space: Literal["original", "input"] = "original",
    min_think_chars: int = 20,
    require_int: bool = True,
    image_root: str | Path | None = None,
    factor: int = QWEN2_5_VL_FACTOR,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[list[ExternalCoT], CoTFilterReport]:
    """Read externally written CoT JSONL and apply the paper's three filters.

    Row schema (one JSON object per line)::

        {"id": "optional", "image": "images/00001.jpg", "question": "the ship left of the harbor",
         "box": [x1, y1, x2, y2],                 # GT, original pixels (aliases: gt_box, bbox)
         "response": "<think>...</think><answer>{\\"bbox_2d\\": [x1, y1, x2, y2]}</answer>",
         "width": 800, "height": 800}             # original size; needed when response_box_space="input"
                                                  # (else read from the image under image_root)

    ``question`` may be called ``problem`` and ``response`` ``output``. Malformed JSON or a missing key raises (it is
    your script's output); the *response* is model output and only ever gets filtered.

    Filters, applied in order (a row is dropped by the first it fails and counted once):

    1. **incomplete reasoning** -- empty response, no ``<think>``, ``<think>`` without ``</think>``, reasoning shorter
       than ``min_think_chars`` characters, or no closed ``<answer>...</answer>`` after the reasoning (truncated).
    2. **inconsistent coordinate format** -- the response is not exactly ``<think>...</think><answer>...</answer>``
       (text after ``</answer>``, repeated blocks), or the answer is not JSON ``{"bbox_2d": [4 numbers]}`` / ``[4
       numbers]``, has non-integers (when ``require_int``), negative values or an inverted box.
    3. **wrong box** -- IoU between the answer box and the GT (in ``response_box_space``) below ``min_iou``.

    Why ``min_iou = 0.8``: the generator was *given* the GT box and asked to restate it, so a correct row only differs
    by integer rounding (plus smart_resize rounding if it answered in input pixels). Rounding every side by up to
    half a pixel keeps IoU above 0.8 for boxes of 10 px and more, while a box in the wrong coordinate space (e.g. 812
    vs 800 px) or a different object falls below it for the small targets common in RSVG. 0.5 (the Acc@0.5
    threshold) would keep boxes that teach wrong coordinates.

    Args:
        path: the JSONL file.
        min_iou: wrong-box threshold (see above).
        response_box_space: ``"original"`` if the answer restates GT pixels, ``"input"`` if it is in resized-input
            pixels (then the GT is mapped with smart_resize before comparing).
        min_think_chars: shortest acceptable reasoning.
        require_int: demand integer coordinates (the format VLM-R1's reward and our SFT targets use).
        image_root: folder that row ``image`` paths are relative to (default: the JSONL's folder); used only to read
            image sizes when rows lack ``width``/``height``.
        factor, min_pixels, max_pixels: smart_resize settings for ``response_box_space="input"``.

    Returns:
        ``(rows, report)``.
    """
    path = Path(path)
    base = Path(image_root) if image_root is not None else path.parent
    report = CoTFilterReport(str(path))
    kept: list[ExternalCoT] = []
    for lineno, row in iter_jsonl(path):
        report.total += 1
        where = f"{path}:{lineno}"
        image, question = str(_field(row, "image", where)), str(_field(row, "question", where))
        raw_gt, response = _field(row, "box", where), _field(row, "response", where)
        try:
            gt = [float(v) for v in raw_gt]
        except (TypeError, ValueError):
            gt = []
        if len(gt) != 4 or not all(math.isfinite(v) for v in gt):
            raise ValueError(f"{where}: GT 'box' must be 4 finite numbers [x1, y1, x2, y2], got {raw_gt!r}")
        width, height = row.get("width"), row.get("height")

        think, reason = _check_reasoning(response, min_think_chars)
        if think is None:
            report.drop("incomplete_reasoning", reason, lineno)
            continue
        structure = _STRUCTURE_RE.fullmatch(response)
        if structure is None or response.count("<answer>") != 1 or response.count("<think>") != 1:
            report.drop("inconsistent_format", "bad_structure", lineno)
            continue
        box, reason = _check_answer_format(structure.group(2).strip(), require_int)
        if box is None:
            report.drop("inconsistent_format", reason, lineno)
            continue

        reference = gt
        if response_box_space == "input":
            if width is None or height is None:
                image_path = Path(image) if Path(image).is_absolute() else base / image
                if not image_path.is_file():
                    raise ValueError(
                        f"{where}: response_box_space='input' needs the original size: add width/height to the row "
                        f"or make the image readable at {image_path}"
                    )
                from PIL import Image

                with Image.open(image_path) as img:
                    width, height = img.size
            size = (int(width), int(height))
            reference = box_to_input(gt, input_size_for(size, factor, min_pixels, max_pixels), size)
        elif response_box_space != "original":
            raise ValueError(f"response_box_space must be 'original' or 'input', got {response_box_space!r}")
        if float(iou(box, reference)) < min_iou:
            report.drop("wrong_box", "iou_below_threshold", lineno)
            continue
        kept.append(
            ExternalCoT(
                id=str(row.get("id", f"{path.stem}-{lineno}")),
                image=image,
                question=question,
                gt_box=gt,
                think=think,
                answer_box=box,
                width=None if width is None else int(width),
                height=None if height is None else int(height),
                line=lineno,
            )
        )
    report.kept = len(kept)
    return kept, report


def build_external_cot_sft(rows: Iterable[ExternalCoT], **resize: Any) -> list[dict[str, Any]]:
    """:func:`external_cot_to_sft` for every filtered row; ``resize`` takes ``factor``, ``min_pixels``, ``max_pixels``."""
    return [external_cot_to_sft(row, **resize) for row in rows]


def external_cot_to_sft(
    row: ExternalCoT,
    *,
    factor: int = QWEN2_5_VL_FACTOR,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> dict[str, Any]:
    """A messages-format SFT sample from a filtered external row.

    The reasoning is kept verbatim; the answer is rewritten as ``{"bbox_2d": [...]}`` holding the **GT** box mapped
    to resized-input pixels (the filtered answer agrees with it up to rounding), so every SFT target uses the same
    coordinate space as RL. Coordinates quoted *inside* the reasoning are not rewritten.

    Raises:
        ValueError: if the row has no ``width``/``height`` (needed for smart_resize).
    """
    if row.width is None or row.height is None:
        raise ValueError(
            f"external CoT row {row.id!r} (line {row.line}) has no width/height; add them to the JSONL"
        )
    size = (row.width, row.height)
    box_input = box_to_input(row.gt_box, input_size_for(size, factor, min_pixels, max_pixels), size)
    return {
        "id": f"{row.id}-cot",
        "task": "grounding_cot",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "image": row.image},
                    {"type": "text", "text": REC_PROMPT_TEMPLATE.format(Question=row.question.strip())},
                ],
            },
            {"role": "assistant", "content": format_answer(row.think, box_input)},
        ],
    }
