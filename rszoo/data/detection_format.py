"""Autoregressive oriented-detection responses (RSCoVLM / LMMRotate): prompts, target writers and a robust parser.

A VLM "detects" by writing text. RSCoVLM's dense-detection target for one image lists every object as a quad in
absolute pixels of the **resized model input** (Qwen2.5-VL "scalable boxes"), one object per line::

    12,40,30,44,28,55,10,51 small vehicle
    80,12,96,12,96,30,80,30 storage tank

(plain text, the released default; trailing newline), or the JSON form::

    ```json
    [
    \t{"quadrant bbox": [12, 40, 30, 44, 28, 55, 10, 51], "label": "small vehicle"},
    \t{"quadrant bbox": [80, 12, 96, 12, 96, 30, 80, 30], "label": "storage tank"}
    ]
    ```

and ``There are none.`` for an image without objects. Labels are ``name.replace("-", " ").lower()``; categories are
ranked by that same key. Coordinates are scaled to the input size and truncated with ``int()`` (not rounded);
vertices are ordered by :func:`rszoo.data.geometry.normalize_quad` (clockwise on screen from the top-most vertex).

Object order (``sort_key``):

* ``"start_vertex"`` (default) -- category rank, then the start vertex's y, then its x: the paper's stated rule
  ("grouped by category ... ordered according to the position of their designated starting vertex"), as LMMRotate
  implements it.
* ``"released"`` -- RSCoVLM's released code: ``(rank, hbb_y1, hbb_x1)`` with the COCO ``bbox`` (``[x, y, w, h]`` in
  the object's ``"bbox"``, else the polygon's horizontal box) scaled with ``int()``. ``hbb_y1`` equals the start
  vertex's y, but ties are broken by the box's left edge instead of the start vertex's x.

The parser never raises on model output: it repairs the usual malformations (``()`` instead of ``[]``, doubled or
missing commas, repeated ``"label":`` keys, code fences, blank lines, floats, more than 8 numbers), maps labels to the
category list (exact, then normalised, then ``difflib`` fuzzy matching above ``label_cutoff``), maps coordinates back
to original pixels, and counts what it did. ``strict=True`` reproduces RSCoVLM's ``parse_plain_output`` /
``parse_json_output`` instead (same repairs, same drops), and ``label_cutoff=0`` maps every label to its closest
category as the reference does -- the reference uses rapidfuzz ``WRatio``, we use ``difflib``'s ratio, so a garbage
label may land on a different class.

Example:
    >>> objs = [{"label": "small-vehicle", "poly": [10, 20, 30, 20, 30, 40, 10, 40]}]
    >>> text = format_quad_response(objs, ["plane", "small-vehicle"], original_size=(100, 100), input_size=(50, 50))
    >>> text
    '5,10,15,10,15,20,5,20 small vehicle\\n'
    >>> parsed = parse_detection_response(text, ["plane", "small-vehicle"], original_size=(100, 100),
    ...                                   input_size=(50, 50))
    >>> parsed.detections
    [{'label': 'small-vehicle', 'poly': [10.0, 20.0, 30.0, 20.0, 30.0, 40.0, 10.0, 40.0], 'score': 1.0}]
    >>> parse_detection_response("(1, 2, 3 4, 5,,6, 7, 8, 9) ship", ["ship"]).counts["repaired"]
    1
"""

from __future__ import annotations

import difflib
import json
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rszoo.data.geometry import normalize_quad

__all__ = [
    "DOTA_V1_CATEGORIES",
    "EMPTY_RESPONSE",
    "MAIN_HBB_TEMPLATE",
    "MAIN_ORIENTED_TEMPLATE",
    "PLAIN_TEMPLATE",
    "PROXY_HBB_TEMPLATES",
    "PROXY_ORIENTED_TEMPLATES",
    "SYSTEM_PROMPTS",
    "ParsedDetections",
    "build_dense_det_messages",
    "categories_text",
    "format_detection_response",
    "format_quad_response",
    "label_text",
    "map_label",
    "parse_detection_response",
    "select_json_template",
    "sorted_categories",
    "user_prompt",
]

Box = Literal["quad", "hbb", "obb"]
Fmt = Literal["plain", "json"]
SortKey = Literal["start_vertex", "released"]

#: DOTA v1.0's 15 classes, in the dataset's own order (RSCoVLM's default dense-detection category list).
DOTA_V1_CATEGORIES = (
    "plane", "baseball-diamond", "bridge", "ground-track-field", "small-vehicle", "large-vehicle", "ship",
    "tennis-court", "basketball-court", "storage-tank", "soccer-ball-field", "roundabout", "harbor",
    "swimming-pool", "helicopter",
)  # fmt: skip

#: The target for an image without objects (RSCoVLM code; the paper's text says "There is none.").
EMPTY_RESPONSE = "There are none."

#: System prompts by (box, format), verbatim from RSCoVLM (including the "corrdinates" typo). JSON HBB has none.
SYSTEM_PROMPTS: dict[tuple[str, str], str | None] = {
    ("quad", "plain"): "As an AI assistant, you specialize in accurate oriented object detection, delivering "
    "coordinates of the polygon vertices in plain text format 'x1,y1,x2,y2,x3,y3,x4,y4 object'.",
    (
        "quad",
        "json",
    ): "You are an AI assistant specializing in oriented object detection. Represent objects with "
    "quadrant bbox: the corrdinates of each vertices of the oriented bounding boxes in clock-wise order.",
    ("obb", "plain"): "As an AI assistant, you specialize in accurate oriented object detection, delivering "
    "coordinates in plain text format 'x,y,w,h,a object'.",
    (
        "obb",
        "json",
    ): "You are an AI assistant specializing in oriented object detection. Represent objects with: "
    "center (x,y), width (w), height (h), and rotation angle.",
    ("hbb", "plain"): "As an AI assistant, you specialize in accurate image object detection, delivering "
    "coordinates in plain text format 'x1,y1,x2,y2 object'.",
    ("hbb", "json"): None,
}

#: Plain-text user prompt; evaluation appends a period (``find the {categories}.``), training does not.
PLAIN_TEMPLATE = "find the {categories}"
MAIN_ORIENTED_TEMPLATE = (
    "Locate every item from the category list in the image and output the oriented bbox coordinates in JSON format. "
    "The category set includes {categories}."
)
PROXY_ORIENTED_TEMPLATES: tuple[str, ...] = (
    "Give me the oriented bboxes and names of {categories} using JSON format",
    "Output the category names and oriented bboxes of the {categories} in the image using JSON format.",
    "From this image, provide the oriented bboxes and categories for {categories} using JSON format",
    "Please provide the oriented bbox coordinates of the following objects: {categories}",
    "Locate {categories} in the given image and provide the oriented bboxes using JSON format",
)
MAIN_HBB_TEMPLATE = (
    "Locate every item from the category list in the image and output the coordinates in JSON format. "
    "The category set includes {categories}."
)
#: As released: a missing comma fuses the first two strings, so the pool has 5 entries and seeded choices match.
PROXY_HBB_TEMPLATES: tuple[str, ...] = (
    "Please output bbox coordinates and names of {categories} in JSON format."
    "Give me the bboxes and names of {categories} using JSON format",
    "Output the category names and bboxes of the {categories} in the image using JSON format.",
    "From this image, provide the bboxes and categories for {categories} using JSON format",
    "Please provide the bbox coordinates of the following objects: {categories}.",
    "Locate {categories} in the given image and provide the bboxes using JSON format",
)
_JSON_KEYS = {"quad": "quadrant bbox", "hbb": "bbox_2d", "obb": "oriented bbox"}
_N_VALUES = {"quad": 8, "hbb": 4, "obb": 5}


# --------------------------------------------------------------------------------------------------------------
# categories and prompts
# --------------------------------------------------------------------------------------------------------------
def label_text(name: str) -> str:
    """The label a response uses for a category name: ``name.replace("-", " ").lower()``."""
    return name.replace("-", " ").lower()


def sorted_categories(names: Sequence[str]) -> list[str]:
    """Category names in response order (sorted by :func:`label_text`).

    Example:
        >>> sorted_categories(["plane", "Small-Vehicle", "bridge"])
        ['bridge', 'plane', 'Small-Vehicle']
    """
    return sorted(names, key=label_text)


def categories_text(names: Sequence[str]) -> str:
    """The ``{categories}`` string of the prompts: sorted labels joined by ``", "``."""
    return ", ".join(label_text(c) for c in sorted_categories(names))


def select_json_template(box: Box, rng: random.Random, prob_proxy_prompt: float = 0.5) -> str:
    """Draw a JSON user template with RSCoVLM's random calls, in the same order (so a seeded ``rng`` matches).

    The main template is used unless ``rng.random() <= prob_proxy_prompt`` picks a proxy template; then each
    replacement fires independently when ``rng.random() <= prob_proxy_prompt``: ``bbox`` -> ``bounding box`` and
    (quad/obb only) ``oriented`` -> ``rotated``.

    Example:
        >>> select_json_template("quad", random.Random(0), prob_proxy_prompt=0.0) == MAIN_ORIENTED_TEMPLATE
        True
    """
    main, proxies = (
        (MAIN_HBB_TEMPLATE, PROXY_HBB_TEMPLATES)
        if box == "hbb"
        else (MAIN_ORIENTED_TEMPLATE, PROXY_ORIENTED_TEMPLATES)
    )
    template = rng.choice(proxies) if rng.random() <= prob_proxy_prompt else main
    if rng.random() <= prob_proxy_prompt:
        template = template.replace("bbox", "bounding box")
    if box != "hbb" and rng.random() <= prob_proxy_prompt:
        template = template.replace("oriented", "rotated")
    return template


def user_prompt(
    categories: Sequence[str],
    fmt: Fmt = "plain",
    box: Box = "quad",
    rng: random.Random | None = None,
    prob_proxy_prompt: float = 0.5,
    for_eval: bool = False,
) -> str:
    """The user text of a dense-detection request.

    Plain: ``find the {categories}`` (``for_eval`` adds the period RSCoVLM's eval prompt has). JSON: the main
    template at evaluation (or without ``rng``), else a draw from :func:`select_json_template`.

    Example:
        >>> user_prompt(["ship", "plane"], for_eval=True)
        'find the plane, ship.'
    """
    cats = categories_text(categories)
    if fmt == "plain":
        return PLAIN_TEMPLATE.format(categories=cats) + ("." if for_eval else "")
    if fmt != "json":
        raise ValueError(f"user_prompt: fmt must be 'plain' or 'json', got {fmt!r}")
    if for_eval or rng is None:
        template = MAIN_HBB_TEMPLATE if box == "hbb" else MAIN_ORIENTED_TEMPLATE
    else:
        template = select_json_template(box, rng, prob_proxy_prompt)
    return template.format(categories=cats)


# --------------------------------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------------------------------
def _scaled(values: Sequence[float], sizes: tuple[int, int, int, int] | None) -> list[int]:
    """``int(v * resized / original)`` per axis, as RSCoVLM's ``resize_coordinates_in_metadata``.

    The expression order matters: ``(v * resized) / original`` is exact whenever the result is an integer, while
    ``v * (resized / original)`` can land just below it and truncate one pixel lower.
    """
    if sizes is None:
        return [int(v) for v in values]
    ow, oh, iw, ih = sizes
    return [int(v * iw / ow) if i % 2 == 0 else int(v * ih / oh) for i, v in enumerate(values)]


def _obb_values(quad: Sequence[int]) -> list[int]:
    from rszoo.data.geometry import quad_to_rbox

    x, y, w, h, a = quad_to_rbox([int(v) for v in quad], degrees=True)
    return [int(x), int(y), int(w), int(h), int(a)]


def format_detection_response(
    objects: Sequence[Mapping[str, Any]],
    categories: Sequence[str],
    *,
    box: Box = "quad",
    fmt: Fmt = "plain",
    original_size: tuple[int, int] | None = None,
    input_size: tuple[int, int] | None = None,
    sort_key: SortKey = "start_vertex",
    clockwise: bool = True,
) -> str:
    """Write the target response for one image.

    Args:
        objects: dicts with ``"label"`` (a name from ``categories``) and ``"poly"`` (8 numbers, original pixels);
            optionally ``"bbox"`` = COCO ``[x, y, w, h]`` (used by ``box="hbb"`` and the ``"released"`` sort key;
            default: the polygon's horizontal box).
        categories: the dataset's category names.
        box: ``"quad"`` (RSCoVLM dense detection), ``"hbb"`` (``x1,y1,x2,y2``; JSON key ``bbox_2d``) or ``"obb"``
            (``cx,cy,w,h,angle_deg`` of the minimum-area rectangle, long side first, angle in [-90, 90); JSON key
            ``oriented bbox``).
        fmt: ``"plain"`` or ``"json"``.
        original_size / input_size: ``(width, height)``; coordinates are scaled by ``input / original`` and truncated
            with ``int()``. Without them coordinates are only truncated.
        sort_key: ``"start_vertex"`` (paper) or ``"released"`` (RSCoVLM code); see the module docstring. HBB and OBB
            targets always use the released key.
        clockwise: vertex order of quads (``False``: LMMRotate / RefGeo order).

    Raises:
        ValueError / KeyError: a malformed object or a label not in ``categories`` (dataset input must be clean).
    """
    if box not in _N_VALUES:
        raise ValueError(f"format_detection_response: box must be 'quad', 'hbb' or 'obb', got {box!r}")
    if fmt not in ("plain", "json"):
        raise ValueError(f"format_detection_response: fmt must be 'plain' or 'json', got {fmt!r}")
    if sort_key not in ("start_vertex", "released"):
        raise ValueError(
            f"format_detection_response: sort_key must be 'start_vertex' or 'released', got {sort_key!r}"
        )
    if (original_size is None) != (input_size is None):
        raise ValueError("format_detection_response: give both original_size and input_size, or neither")
    sizes = None
    if original_size is not None and input_size is not None:
        sizes = (original_size[0], original_size[1], input_size[0], input_size[1])
    ranks = {name: k for k, name in enumerate(sorted_categories(categories))}
    rows = []
    for i, obj in enumerate(objects):
        if "label" not in obj or "poly" not in obj:
            raise KeyError(f"objects[{i}]: needs 'label' and 'poly' keys, got {sorted(obj)}")
        name = obj["label"]
        if name not in ranks:
            raise ValueError(
                f"objects[{i}]: label {name!r} is not one of the categories {list(categories)!r}"
            )
        poly = list(obj["poly"])
        if len(poly) != 8:
            raise ValueError(f"objects[{i}]['poly']: expected 8 numbers, got {len(poly)}: {poly!r}")
        if "bbox" in obj:
            bx, by, bw, bh = obj["bbox"]
        else:
            xs, ys = poly[0::2], poly[1::2]
            bx, by, bw, bh = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
        hbb = _scaled(
            [bx, by, int(bx + bw), int(by + bh)], sizes
        )  # x2 = int(x1 + w) before scaling, as released
        quad = normalize_quad(_scaled(poly, sizes), clockwise=clockwise)
        if box == "quad" and sort_key == "start_vertex":
            key = (ranks[name], quad[1], quad[0])
        else:
            key = (ranks[name], hbb[1], hbb[0])
        values = quad if box == "quad" else hbb if box == "hbb" else _obb_values(_scaled(poly, sizes))
        rows.append((key, i, values, label_text(name)))
    rows.sort(key=lambda r: r[0])  # stable: equal keys keep input order, as list.sort in the reference
    if not rows:
        return EMPTY_RESPONSE
    if fmt == "plain":
        return (
            "\n".join(",".join(str(v) for v in values) + f" {label}" for _, _, values, label in rows) + "\n"
        )
    items = [json.dumps({_JSON_KEYS[box]: values, "label": label}) for _, _, values, label in rows]
    return "```json\n[\n\t" + ",\n\t".join(items) + "\n]\n```"


def format_quad_response(
    objects: Sequence[Mapping[str, Any]],
    categories: Sequence[str],
    *,
    fmt: Fmt = "plain",
    original_size: tuple[int, int] | None = None,
    input_size: tuple[int, int] | None = None,
    sort_key: SortKey = "start_vertex",
    clockwise: bool = True,
) -> str:
    """:func:`format_detection_response` with ``box="quad"`` (RSCoVLM's dense-detection target)."""
    return format_detection_response(
        objects,
        categories,
        box="quad",
        fmt=fmt,
        original_size=original_size,
        input_size=input_size,
        sort_key=sort_key,
        clockwise=clockwise,
    )


def build_dense_det_messages(
    image: Any,
    objects: Sequence[Mapping[str, Any]],
    categories: Sequence[str],
    *,
    rng: random.Random,
    box: Box = "quad",
    original_size: tuple[int, int] | None = None,
    input_size: tuple[int, int] | None = None,
    prob_plain_text_prompt: float = 1.0,
    prob_proxy_prompt: float = 0.5,
    sort_key: SortKey = "start_vertex",
) -> list[dict[str, Any]]:
    """One training conversation (system, user, assistant) the way RSCoVLM's ``get_*_messages`` builds it.

    Random calls happen in the reference's order on ``rng``: the format (JSON iff ``rng.random() >=
    prob_plain_text_prompt``; the released default 1.0 means always plain), then the JSON template. The image entry
    carries ``resized_width`` / ``resized_height`` when ``input_size`` is given.

    Example:
        >>> msgs = build_dense_det_messages("a.png", [], ["ship"], rng=random.Random(0))
        >>> [m["role"] for m in msgs], msgs[1]["content"][1]["text"], msgs[2]["content"]
        (['system', 'user', 'assistant'], 'find the ship', 'There are none.')
    """
    fmt: Fmt = "json" if rng.random() >= prob_plain_text_prompt else "plain"
    text = user_prompt(categories, fmt=fmt, box=box, rng=rng, prob_proxy_prompt=prob_proxy_prompt)
    response = format_detection_response(
        objects,
        categories,
        box=box,
        fmt=fmt,
        original_size=original_size,
        input_size=input_size,
        sort_key=sort_key,
    )
    image_entry: dict[str, Any] = {"type": "image", "image": image}
    if input_size is not None:
        image_entry["resized_width"], image_entry["resized_height"] = input_size
    messages: list[dict[str, Any]] = []
    system = SYSTEM_PROMPTS[(box, fmt)]
    if system is not None:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": [image_entry, {"type": "text", "text": text}]})
    messages.append({"role": "assistant", "content": response})
    return messages


# --------------------------------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------------------------------
@dataclass
class ParsedDetections:
    """Detections recovered from one response, and what it took.

    ``detections`` are ``{"label", "poly", "score"[, "image"]}`` dicts in original pixels (ready for
    :mod:`rszoo.metrics.detection`); ``counts`` has ``objects`` (candidate lines / JSON objects), ``parsed``,
    ``repaired`` (parsed only after a repair), ``truncated_numbers`` (more values than the box needs; extra
    dropped), ``fuzzy_labels``, ``empty`` (1 for "There are none.") and ``dropped`` (reason -> count).
    """

    detections: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    fmt: str = "plain"


def _new_counts() -> dict[str, Any]:
    return {
        "objects": 0,
        "parsed": 0,
        "repaired": 0,
        "truncated_numbers": 0,
        "fuzzy_labels": 0,
        "empty": 0,
        "dropped": {},
    }


def _drop(counts: dict[str, Any], reason: str) -> None:
    counts["dropped"][reason] = counts["dropped"].get(reason, 0) + 1


def _normalise_label(text: str) -> str:
    text = re.sub(r"[_\-]+", " ", text.strip().lower())
    text = re.sub(r"\s+", " ", text)
    return text.strip(" .,;:!\"'`*")


def map_label(
    text: str, categories: Sequence[str], cutoff: float = 0.6, strict: bool = False
) -> tuple[str | None, str]:
    """Map a predicted label to a category name; returns ``(name or None, how)``.

    ``how`` is ``"exact"`` (equal to a category's label), ``"normalized"`` (after lower-casing, ``-``/``_`` to
    spaces, trimming punctuation, or dropping a plural ``s``), ``"fuzzy"`` (``difflib`` ratio >= ``cutoff``) or
    ``"unknown"``. ``strict=True`` compares ``text.strip().lower()`` only before the fuzzy step, as RSCoVLM.

    Example:
        >>> map_label("Small-Vehicles", ["small-vehicle", "ship"])
        ('small-vehicle', 'normalized')
        >>> map_label("smal vehicle", ["small-vehicle", "ship"])
        ('small-vehicle', 'fuzzy')
        >>> map_label("tree", ["small-vehicle", "ship"])
        (None, 'unknown')
    """
    table = {label_text(c): c for c in categories}
    key = text.strip().lower()
    if key in table:
        return table[key], "exact"
    if not strict:
        key = _normalise_label(text)
        if key in table:
            return table[key], "normalized"
        for singular in (key[:-1] if key.endswith("s") else None, key[:-2] if key.endswith("es") else None):
            if singular and singular in table:
                return table[singular], "normalized"
    match = difflib.get_close_matches(key, list(table), n=1, cutoff=max(0.0, min(1.0, cutoff)))
    if match:
        return table[match[0]], "fuzzy"
    return None, "unknown"


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_LEAD_NUMBERS = re.compile(
    r"^\s*[\[\(\{<]?\s*((?:[-+]?\d+(?:\.\d+)?(?:\s*[,;]+\s*|\s+))*[-+]?\d+(?:\.\d+)?)\s*[\]\)\}>]?\s*(.*)$"
)
_FENCE_LINE = re.compile(r"^\s*```[a-zA-Z]*\s*$")


def _is_empty_response(text: str) -> bool:
    # "There are none." is the trained answer; the paper writes "There is none."
    return text.lower().strip().rstrip(".") in ("there are none", "there is none")


def _strict_plain(line: str) -> list[int] | None:
    try:
        poly_text, _ = line.split(" ", 1)
        return [int(c) for c in poly_text.split(",")]
    except ValueError:
        return None


def _to_number(v: Any) -> float | int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str) and _NUMBER.fullmatch(v.strip()):
        s = v.strip()
        return float(s) if "." in s else int(s)
    return None


class _Collector:
    """Shared tail of both formats: count, map the label, back-scale, emit."""

    def __init__(
        self,
        categories: Sequence[str],
        cutoff: float,
        strict: bool,
        n_values: int,
        box: Box,
        scale: tuple[float, float, float, float] | None,
        image: Any,
    ) -> None:
        self.categories, self.cutoff, self.strict = categories, cutoff, strict
        self.n_values, self.box, self.scale, self.image = n_values, box, scale, image
        self.counts = _new_counts()
        self.detections: list[dict[str, Any]] = []

    def add(self, values: list[Any], label: Any, repaired: bool) -> None:
        c = self.counts
        if not isinstance(label, str) or not label.strip():
            _drop(c, "bad_label")
            return
        if len(values) < self.n_values:
            _drop(c, "too_few_numbers")
            return
        if len(values) > self.n_values:
            c["truncated_numbers"] += 1
            values = values[: self.n_values]
        name, how = map_label(label, self.categories, self.cutoff, self.strict)
        if name is None:
            _drop(c, "unknown_label")
            return
        if how == "fuzzy":
            c["fuzzy_labels"] += 1
        try:
            poly = _box_to_quad(values, self.box)
            if self.scale is not None:
                ow, oh, iw, ih = self.scale
                for k in range(0, 8, 2):  # same expression and order as the reference: v * original / resized
                    poly[k] = poly[k] * ow / iw
                    poly[k + 1] = poly[k + 1] * oh / ih
            poly = [float(v) for v in poly]
        except (OverflowError, ValueError):
            poly = [math.inf]
        if not all(math.isfinite(v) for v in poly):  # e.g. a 400-digit number
            _drop(c, "bad_box")
            return
        det: dict[str, Any] = {"label": name, "poly": poly, "score": 1.0}
        if self.image is not None:
            det = {"image": self.image, **det}
        self.detections.append(det)
        c["parsed"] += 1
        if repaired:
            c["repaired"] += 1


def _box_to_quad(values: list[Any], box: Box) -> list[Any]:
    if box == "quad":
        return list(values)
    if box == "hbb":
        x1, y1, x2, y2 = values
        return [x1, y1, x2, y1, x2, y2, x1, y2]
    from rszoo.data.geometry import rbox_to_quad

    return rbox_to_quad(values, degrees=True)


def _parse_plain(text: str, col: _Collector) -> None:
    for line in text.strip().splitlines():
        if not line.strip():
            continue
        if not col.strict and _FENCE_LINE.match(line):
            continue
        col.counts["objects"] += 1
        strict_vals = _strict_plain(line)
        if col.strict:
            if strict_vals is None:
                _drop(col.counts, "bad_line")
                continue
            col.add(strict_vals, line.split(" ", 1)[1], False)
            continue
        m = _LEAD_NUMBERS.match(line)
        if not m:
            _drop(col.counts, "bad_line")
            continue
        nums = [float(v) if "." in v else int(v) for v in _NUMBER.findall(m.group(1))]
        label = m.group(2)
        repaired = strict_vals is None or strict_vals[: len(nums)] != nums[: len(strict_vals)]
        col.add(nums, label, repaired)


# RSCoVLM's repairs for a JSON response that does not load, in its order
def _reference_json_repairs(text: str) -> str:
    text = text.replace("(", "[").replace(")", "]")
    text = re.sub(r"(, *)+", ", ", text)
    text = re.sub(r"(\d)\s+(\d)", r"\1, \2", text)
    return re.sub(r'("label":\s*)+', '"label": ', text)


def _strict_json_items(text: str, col: _Collector) -> list[Any]:
    text = text.replace("```json\n", "").replace("\n```", "")
    try:
        data = json.loads(text)
    except ValueError:
        text = _reference_json_repairs(text)
        kept = []
        for line in text.splitlines():
            try:
                json.loads(line.strip().strip(","))
            except ValueError:
                continue
            kept.append(line)
        try:
            data = json.loads("[\n" + "\n".join(kept).rstrip(", ") + "\n]")
        except ValueError:
            _drop(col.counts, "bad_json")
            data = []
    if isinstance(data, dict):
        data = list(data)  # the reference iterates the keys; none is an instance
    return data if isinstance(data, list) else []


def _balanced_objects(text: str) -> tuple[list[str], bool]:
    """Top-level ``{...}`` substrings (strings with braces respected) and whether the text ends inside one."""
    out, depth, start, in_str, esc = [], 0, -1, False, False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                out.append(text[start : i + 1])
    return out, depth > 0


def _loads_object(raw: str) -> tuple[Any, bool]:
    """``json.loads`` with escalating repairs; returns ``(object or None, repaired)``."""
    try:
        return json.loads(raw), False
    except ValueError:
        pass
    fixed = _reference_json_repairs(raw)
    fixed = re.sub(r",\s*([\]\}])", r"\1", fixed)  # trailing commas
    for candidate in (fixed, fixed.replace("'", '"')):
        try:
            return json.loads(candidate), True
        except ValueError:
            continue
    return None, True


def _item_fields(item: Any, box: Box) -> tuple[list[Any] | None, Any, bool, str | None]:
    """``(values, label, repaired, drop_reason)`` from one JSON object."""
    if not isinstance(item, dict):
        return None, None, False, "missing_key"
    repaired = False
    keys = [
        _JSON_KEYS[box],
        *{
            "quad": ("quad", "polygon", "poly", "bbox", "box"),
            "hbb": ("bbox", "box", "bbox2d"),
            "obb": ("obb", "rbox", "bbox"),
        }[box],
    ]
    value = None
    for k in keys:
        if k in item:
            value, repaired = item[k], k != keys[0]
            break
    label = item.get("label")
    if label is None:
        for k in ("category", "name", "class"):
            if k in item:
                label, repaired = item[k], True
                break
    if value is None or label is None:
        return None, None, repaired, "missing_key"
    if isinstance(value, list) and value and all(isinstance(p, list) for p in value):  # [[x, y], ...]
        value, repaired = [v for p in value for v in p], True
    if not isinstance(value, list):
        return None, None, repaired, "bad_box"
    nums = [_to_number(v) for v in value]
    if any(n is None for n in nums):
        return None, None, repaired, "bad_box"
    if any(isinstance(v, (str, float)) for v in value):
        repaired = True
    return nums, label, repaired, None


def _parse_json(text: str, col: _Collector) -> None:
    if col.strict:
        for inst in _strict_json_items(text, col):
            col.counts["objects"] += 1
            if not isinstance(inst, dict) or "quadrant bbox" not in inst or "label" not in inst:
                _drop(col.counts, "missing_key")
                continue
            poly, label = inst["quadrant bbox"], inst["label"]
            if not (isinstance(poly, list) and len(poly) >= 8 and all(isinstance(n, int) for n in poly)):
                short = isinstance(poly, list) and len(poly) < 8
                _drop(col.counts, "too_few_numbers" if short else "bad_box")
                continue
            if not isinstance(label, str):
                _drop(col.counts, "bad_label")
                continue
            col.add(list(poly), label.lower(), False)
        return
    body = text
    fence = re.search(r"```(?:json)?\s*\n?(.*?)(?:```|$)", text, flags=re.S)
    if fence:
        body = fence.group(1)
    try:
        data = json.loads(body)
        items = data if isinstance(data, list) else [data]
        whole_ok = True
    except ValueError:
        whole_ok = False
    if whole_ok:
        for item in items:
            col.counts["objects"] += 1
            values, label, repaired, reason = _item_fields(item, col.box)
            if reason:
                _drop(col.counts, reason)
                continue
            col.add(values, label, repaired or not isinstance(data, list))
        return
    raws, unfinished = _balanced_objects(body)
    for raw in raws:
        col.counts["objects"] += 1
        obj, repaired = _loads_object(raw)
        if obj is None:
            _drop(col.counts, "bad_json")
            continue
        values, label, rep2, reason = _item_fields(obj, col.box)
        if reason:
            _drop(col.counts, reason)
            continue
        col.add(values, label, repaired or rep2)
    if unfinished:  # generation stopped inside an object
        col.counts["objects"] += 1
        _drop(col.counts, "truncated_object")


def parse_detection_response(
    text: Any,
    categories: Sequence[str],
    *,
    fmt: Literal["auto", "plain", "json"] = "auto",
    box: Box = "quad",
    original_size: tuple[int, int] | None = None,
    input_size: tuple[int, int] | None = None,
    label_cutoff: float = 0.6,
    strict: bool = False,
    image: Any = None,
) -> ParsedDetections:
    """Parse one model response into detections (never raises on the text).

    Args:
        text: the generated text (anything not a string gives no detections and ``dropped["not_text"]``).
        categories: the dataset's category names; returned labels are these names.
        fmt: ``"plain"``, ``"json"`` or ``"auto"`` (JSON if the text has a ``{``, else plain).
        box: what the numbers are: ``"quad"`` (8), ``"hbb"`` (4, x1 y1 x2 y2) or ``"obb"`` (5, cx cy w h degrees);
            every detection comes back as a quad.
        original_size / input_size: ``(width, height)`` of the original image and the model input; coordinates are
            mapped back with ``v * original / input`` (omit both to keep input pixels).
        label_cutoff: ``difflib`` similarity below which an unknown label is dropped (``0`` maps everything, like
            the reference).
        strict: reproduce RSCoVLM's ``parse_plain_output`` / ``parse_json_output`` exactly (their repairs only;
            integer coordinates only; ``box`` must be ``"quad"``).
        image: if given, added as ``"image"`` to every detection.

    Returns:
        :class:`ParsedDetections`.
    """
    counts_only = ParsedDetections(counts=_new_counts())
    if not isinstance(text, str):
        _drop(counts_only.counts, "not_text")
        return counts_only
    if (original_size is None) != (input_size is None):
        raise ValueError("parse_detection_response: give both original_size and input_size, or neither")
    if box not in _N_VALUES:
        raise ValueError(f"parse_detection_response: box must be 'quad', 'hbb' or 'obb', got {box!r}")
    if strict and box != "quad":
        raise ValueError(
            "parse_detection_response: strict=True reproduces the quad parser only; use box='quad'"
        )
    scale = None
    if original_size is not None and input_size is not None:
        scale = (original_size[0], original_size[1], input_size[0], input_size[1])
    if fmt == "auto":
        fmt = "json" if "{" in text else "plain"
    if fmt not in ("plain", "json"):
        raise ValueError(f"parse_detection_response: fmt must be 'auto', 'plain' or 'json', got {fmt!r}")
    col = _Collector(categories, label_cutoff, strict, _N_VALUES[box], box, scale, image)
    said_none = text.lower().strip().rstrip(".") == "there are none" if strict else _is_empty_response(text)
    if said_none:
        col.counts["empty"] = 1
    elif fmt == "plain":
        _parse_plain(text, col)
    else:
        _parse_json(text, col)
    return ParsedDetections(col.detections, col.counts, fmt)
