"""RSCoVLM's Zoom-in Chain for ultra-high-resolution (UHR) images: the training conversation, the tool-call parser
and the two-view inference loop (paper §III-D, eq. 5).

The chain mimics a person at a screen: look at the whole (downsampled) image, pick a region, zoom in, answer::

    system:    ZOOM_TOOL_SYSTEM_PROMPT (declares the tool ``image_zoom_in(bbox: list[int])``)
    user:      [full image, smart-resized to <= max_pixels] "{question}\\nZoom in to the region of interest and ..."
    assistant: <tool_call>\\n{"name": "image_zoom_in", "arguments": {"bbox": [x1, y1, x2, y2]}}\\n</tool_call>
    user:      [the region, cropped from the native-resolution image] "Here's the zoomed-in image. You can ..."
    assistant: {answer}

The box in the tool call is in pixels of the *resized* full view (Qwen2.5-VL's absolute "scalable" coordinates);
training loss covers both assistant turns (rszoo's SFT stage masks every assistant turn and its ``<|im_end|>``).

Training vs inference in the released code (notes §0.7): training crops the native image at the annotated box, but
the released inference crops the *already resized* full view (its rescale factor is 1), so the zoomed image carries
no extra detail. :func:`zoom_in_answer` follows the paper (``native_crop=True``: the box is mapped back to original
pixels and that window is read at native resolution) and offers ``native_crop=False`` to reproduce the released code.

Reading UHR rasters: the full view is a decimated read (GeoTIFF/COG: GDAL serves it from the overviews, never
decoding the whole raster) and the zoomed view is a windowed read of only the tiles under the box, so memory and
visual tokens stay bounded by two views whatever the image size. PNG/JPEG cannot be read partially and are decoded
whole (within PIL's decompression-bomb limit): convert UHR images to a tiled GeoTIFF first.

Example:
    >>> msgs = zoom_chain_messages("big.tif", "What colour is the ship?", "white", [4000, 3000, 4512, 3512],
    ...                            original_size=(8000, 6000), min_pixels=224 * 224, max_pixels=1008 * 1008)
    >>> msgs[2]["content"]
    '<tool_call>\\n{"name": "image_zoom_in", "arguments": {"bbox": [574, 434, 647, 508]}}\\n</tool_call>'
    >>> parse_tool_call(msgs[2]["content"])
    [574, 434, 647, 508]
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rszoo.data.images import NATIVE_READ_FACTOR  # re-exported: the rule the zoom views are read by
from rszoo.data.resize import QWEN2_5_VL_FACTOR, smart_resize
from rszoo.data.zoom_chain import (
    ZOOM_INSTRUCTION,
    ZOOM_TOOL_NAME,
    ZOOM_TOOL_SYSTEM_PROMPT,
    ZOOMED_IMAGE_TURN,
    format_tool_call,
    zoom_chain_messages,
)

__all__ = [
    "NATIVE_READ_FACTOR",
    "ZOOMED_IMAGE_TURN",
    "ZOOM_INSTRUCTION",
    "ZOOM_TOOL_NAME",
    "ZOOM_TOOL_SYSTEM_PROMPT",
    "format_tool_call",
    "parse_tool_call",
    "read_full_view",
    "read_zoom_view",
    "zoom_chain_messages",
    "zoom_in_answer",
]

_BICUBIC = 3  # PIL.Image.Resampling.BICUBIC: what Qwen's image processor resamples with
Box = list[int]


# ------------------------------------------------------------------------------------------------ tool-call parser

_TOOL_OPEN = "<tool_call>"
_TOOL_CLOSE = "</tool_call>"
_BBOX_RE = re.compile(r'"?bbox(?:_2d)?"?\s*[:=]\s*\[([^\[\]]*)\]', re.IGNORECASE)
_NAME_RE = re.compile(r'"name"\s*:\s*"([^"]*)"')
_FENCE_RE = re.compile(r"^```(?:json)?\s*|\s*```$")


def _tool_payloads(text: str) -> list[str]:
    """The text inside each ``<tool_call>`` (to ``</tool_call>`` or the end); the whole text when untagged."""
    if _TOOL_OPEN not in text:
        return [text]
    payloads = []
    for chunk in text.split(_TOOL_OPEN)[1:]:
        payloads.append(chunk.split(_TOOL_CLOSE, 1)[0])
    return payloads


def _json_objects(payload: str) -> list[Any]:
    """The payload decoded as JSON, else every top-level JSON object found in it (left to right)."""
    payload = _FENCE_RE.sub("", payload.strip())
    try:
        return [json.loads(payload)]
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    found: list[Any] = []
    start = payload.find("{")
    while start != -1:
        try:
            obj, end = decoder.raw_decode(payload, start)
        except ValueError:
            start = payload.find("{", start + 1)
            continue
        found.append(obj)  # skip what it spans: an inner object is not a call of its own
        start = payload.find("{", end)
    return found


def _bbox_from_object(obj: Any) -> Any:
    """The raw ``bbox`` of a decoded tool call, or None (wrong tool name, missing keys)."""
    if not isinstance(obj, dict):
        return None
    name = obj.get("name")
    if name is not None and name != ZOOM_TOOL_NAME:
        return None  # a call to some other tool
    args = obj.get("arguments", obj.get("parameters", obj))
    if isinstance(args, str):  # OpenAI-style arguments given as a JSON string
        try:
            args = json.loads(args)
        except ValueError:
            return None
    if not isinstance(args, dict):
        return None
    return args.get("bbox", args.get("bbox_2d"))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _repair_box(raw: Any) -> Box | None:
    """Apply the documented repair rules of :func:`parse_tool_call` to a raw bbox value."""
    if not isinstance(raw, list | tuple) or len(raw) != 4:
        return None
    values = [_number(v) for v in raw]
    if any(v is None for v in values):
        return None
    x1, y1, x2, y2 = (float(v) for v in values)  # type: ignore[arg-type]
    if all(0.0 <= v <= 1.0 for v in values) and any(not float(v).is_integer() for v in values):  # type: ignore[arg-type]
        return None  # normalised [0, 1] coordinates: not pixels of the resized view
    x1, x2 = min(x1, x2), max(x1, x2)
    y1, y2 = min(y1, y2), max(y1, y2)
    # outward rounding never shrinks the region; negatives are clamped to the image edge at 0
    box = [max(0, math.floor(x1)), max(0, math.floor(y1)), max(0, math.ceil(x2)), max(0, math.ceil(y2))]
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    return box


def parse_tool_call(text: Any) -> Box | None:
    """The ``image_zoom_in`` box of a model reply, in resized full-view pixels; None if there is none. Never raises.

    Rules, in order:

    1. Payloads: the text after each ``<tool_call>`` up to ``</tool_call>`` (or the end of the reply, if the model
       stopped early); a reply without the tag is one payload (a bare JSON call is accepted).
    2. Each payload is decoded as JSON (``json`` code fences removed), else every ``{...}`` that decodes inside it is
       tried (top-level objects only). A decoded call with a ``name`` other than ``image_zoom_in`` is ignored; ``arguments`` may be an object
       or a JSON string; the box is ``arguments.bbox`` (``bbox_2d`` also accepted).
    3. If no JSON decodes, a ``"bbox": [a, b, c, d]`` (or ``bbox=[...]``) pattern in the payload is used (e.g.
       the reply stopped before its closing braces), unless the payload names another tool.
    4. The box must have exactly 4 finite numbers (numeric strings accepted; booleans not). Repairs: inverted
       corners are swapped; floats are rounded **outward** (floor the top-left, ceil the bottom-right); negative
       values are clamped to 0. Boxes whose values all lie in ``[0, 1]`` with a fractional part (normalised
       coordinates) and boxes of zero width or height after repair give None.

    The first payload that yields a box wins. Clipping to the image's right/bottom edge is left to the caller, which
    knows the image size.

    Example:
        >>> parse_tool_call('<tool_call>\\n{"name": "image_zoom_in", "arguments": {"bbox": [30, 8.5, 10, 40]}}')
        [10, 8, 30, 40]
        >>> parse_tool_call("The answer is 3.") is None
        True
    """
    if not isinstance(text, str) or not text:
        return None
    try:
        for payload in _tool_payloads(text):
            objects = _json_objects(payload)
            for obj in objects:
                box = _repair_box(_bbox_from_object(obj))
                if box is not None:
                    return box
            if not objects:
                named = _NAME_RE.search(payload)
                match = _BBOX_RE.search(payload)
                if match is not None and (named is None or named.group(1) == ZOOM_TOOL_NAME):
                    box = _repair_box([v for v in match.group(1).split(",") if v.strip()])
                    if box is not None:
                        return box
    except (RecursionError, MemoryError):  # pathological nesting in a generated reply: treat as no call
        return None
    return None


# --------------------------------------------------------------------------------------------------- inference


def _processor_geometry(model: Any) -> tuple[Any, int, int, int, int]:
    """``(image_processor, patch_size, merge_size, min_pixels, max_pixels)`` of the model's processor."""
    processor = model.processor.image_processor
    patch = int(processor.patch_size)
    merge = int(processor.merge_size)
    size = getattr(processor, "size", None) or {}
    lo = getattr(processor, "min_pixels", None) or size.get("shortest_edge")
    hi = getattr(processor, "max_pixels", None) or size.get("longest_edge")
    if lo is None or hi is None:
        raise ValueError(
            f"{type(processor).__name__} exposes no min/max pixels; pass min_pixels= and max_pixels= explicitly"
        )
    return processor, patch, merge, int(lo), int(hi)


def _visual_tokens(model: Any, image: Any) -> tuple[int, tuple[int, int]]:
    """Visual tokens the model's processor makes of ``image`` and the ``(width, height)`` the model sees."""
    processor, patch, merge, _, _ = _processor_geometry(model)
    grid = processor(images=[image], return_tensors="pt")["image_grid_thw"][0].tolist()
    t, h, w = (int(v) for v in grid)
    return t * h * w // (merge * merge), (w * patch, h * patch)


def _read_resized(path: str | Path, window: tuple[int, int, int, int], target: tuple[int, int]) -> Any:
    """PIL RGB of ``window`` at ``target`` in bounded memory (:func:`rszoo.data.images.read_view`)."""
    from rszoo.data.images import read_view

    return read_view(path, window, target)


def _sane_window(
    box: Sequence[float], size: tuple[int, int], factor: int
) -> tuple[int, int, int, int] | None:
    """Integer ``(x, y, w, h)`` of ``box`` clipped to the image; sides grown to >= ``factor`` px and the aspect
    ratio kept <= 100 (so smart_resize accepts it); None when nothing of the box lies inside the image."""
    width, height = size
    x1, y1 = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
    x2, y2 = min(width, math.ceil(box[2])), min(height, math.ceil(box[3]))
    if x2 <= x1 or y2 <= y1:
        return None

    def grow(lo: int, hi: int, need: int, limit: int) -> tuple[int, int]:
        need = min(need, limit)
        if hi - lo >= need:
            return lo, hi
        lo = max(0, min(lo - (need - (hi - lo)) // 2, limit - need))
        return lo, lo + need

    x1, x2 = grow(x1, x2, factor, width)
    y1, y2 = grow(y1, y2, factor, height)
    x1, x2 = grow(x1, x2, math.ceil((y2 - y1) / 100), width)
    y1, y2 = grow(y1, y2, math.ceil((x2 - x1) / 100), height)
    return x1, y1, x2 - x1, y2 - y1


def read_full_view(
    image_path: str | Path, *, min_pixels: int, max_pixels: int, factor: int = QWEN2_5_VL_FACTOR
) -> tuple[Any, dict[str, Any]]:
    """The chain's first view: the whole image at ``smart_resize(original, min_pixels, max_pixels)``.

    A raster much larger than the view is read decimated (overviews), never decoded whole; see
    :data:`NATIVE_READ_FACTOR`.

    Returns:
        ``(PIL RGB image, {"window": [0, 0, W, H], "out_size": [w, h]})``.
    """
    from rszoo.data.images import raster_size

    width, height = raster_size(image_path)
    view_h, view_w = smart_resize(height, width, factor, min_pixels, max_pixels)
    window = (0, 0, width, height)
    return _read_resized(image_path, window, (view_w, view_h)), {
        "window": list(window),
        "out_size": [view_w, view_h],
    }


def read_zoom_view(
    image_path: str | Path,
    box: Sequence[float],
    *,
    min_pixels: int,
    max_pixels: int,
    factor: int = QWEN2_5_VL_FACTOR,
    image_size: tuple[int, int] | None = None,
) -> tuple[Any, dict[str, Any]] | None:
    """The chain's second view: the region ``box`` (original pixels) read by window at native resolution.

    The box is clipped to the image and rounded outward; sides shorter than ``factor`` px are grown (and the aspect
    ratio capped at 100) so the view is valid for the model. The view is ``smart_resize(window, min_pixels,
    max_pixels)``: a region within the budget keeps its native resolution (up to rounding each side to a multiple of
    ``factor``), a bigger one is shrunk (read decimated when more than :data:`NATIVE_READ_FACTOR` times the view).

    Returns:
        ``(PIL RGB image, {"window": [x, y, w, h], "out_size": [w', h'], "box": [x1, y1, x2, y2]})``, or None when
        the box lies wholly outside the image.
    """
    from rszoo.data.images import raster_size

    size = image_size if image_size is not None else raster_size(image_path)
    window = _sane_window(box, size, factor)
    if window is None:
        return None
    x, y, w, h = window
    crop_h, crop_w = smart_resize(h, w, factor, min_pixels, max_pixels)
    view = _read_resized(image_path, window, (crop_w, crop_h))
    return view, {"window": list(window), "out_size": [crop_w, crop_h], "box": [x, y, x + w, y + h]}


def zoom_in_answer(
    model: Any,
    image_path: str | Path,
    question: str,
    *,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    max_new_tokens: int = 128,
    native_crop: bool = True,
    **generate_kwargs: Any,
) -> dict[str, Any]:
    """Answer ``question`` about a (UHR) image with the Zoom-in Chain: at most two views, two generations.

    1. Turn 1: the full image read **decimated** to ``smart_resize(original, min_pixels, max_pixels)`` with the tool
       system prompt and ``question + "\\n" + ZOOM_INSTRUCTION``.
    2. The reply is parsed with :func:`parse_tool_call`. The box (pixels of the model input, ``grid * patch``) is
       mapped back to **original** pixels, clipped to the image, and that window is read at native resolution
       (shrunk to the ``max_pixels`` budget by a decimated window read if larger) -- or, with
       ``native_crop=False``, cropped from the already resized full view as RSCoVLM's released inference does.
    3. Turn 2: the conversation continues with the reply and the zoomed view + :data:`ZOOMED_IMAGE_TURN`.

    Fallbacks (RSCoVLM's inference): a reply without any tool call (no ``<tool_call>`` and no ``image_zoom_in``)
    is the answer itself (``mode="direct"``, one generation); a reply that tries to call the tool but does not
    parse (or whose box lies wholly outside the image) gets the full view re-sent as the "zoomed" image
    (``mode="resend_full_view"``). ``tool_call_parsed`` says whether a box was parsed. Model replies never raise.

    Args:
        model: a :class:`~rszoo.models.vlm.model.VLMModel` (``chat`` + ``processor``).
        image_path: GeoTIFF/COG (read by windows/overviews) or PNG/JPEG (decoded whole).
        question: the question (e.g. an LRS-VQA ``text``).
        min_pixels: smart_resize lower bound of each view; default the processor's.
        max_pixels: smart_resize upper bound (area budget) of each view; default the processor's. Views larger
            than the processor's own limit would be shrunk again by it.
        max_new_tokens: generation budget of each turn.
        native_crop: crop the native image (the paper) instead of the resized full view (the released code).
        **generate_kwargs: passed to ``model.chat`` (greedy by default, as the reference evaluates).

    Returns:
        ``answer`` (stripped final reply), ``mode`` (``"zoom"``, ``"direct"`` or ``"resend_full_view"``),
        ``tool_call_parsed``, ``box`` (the zoom window ``[x1, y1, x2, y2]`` in original pixels, or None),
        ``box_model`` (the parsed box in model-input pixels), ``replies`` (raw texts of each generation),
        ``visual_tokens`` (``full_view``, ``zoom_view`` -- 0 without a zoom -- and ``prompt_total``, the visual
        tokens of all prompts: turn 2 repeats the full view), ``sizes`` (``original``, ``full_view``,
        ``full_view_model_input``, ``zoom_view``) and ``reads`` (window and out_size of each raster read).

    Raises:
        FileNotFoundError, rszoo.data.images.ImageReadError: the image cannot be read.
    """
    from rszoo.data.images import raster_size

    _, patch, merge, proc_min, proc_max = _processor_geometry(model)
    factor = patch * merge
    lo = proc_min if min_pixels is None else int(min_pixels)
    hi = proc_max if max_pixels is None else int(max_pixels)
    width, height = raster_size(image_path)
    full_view, full_read = read_full_view(image_path, min_pixels=lo, max_pixels=hi, factor=factor)
    view_w, view_h = full_view.size
    full_tokens, full_input = _visual_tokens(model, full_view)
    gen = {"do_sample": False, **generate_kwargs, "max_new_tokens": max_new_tokens}

    conversation: list[dict[str, Any]] = [
        {"role": "system", "content": ZOOM_TOOL_SYSTEM_PROMPT},
        {
            "role": "user",
            "content": [
                {"type": "image", "image": full_view},
                {"type": "text", "text": f"{question}\n{ZOOM_INSTRUCTION}"},
            ],
        },
    ]
    first = model.chat([conversation], [[full_view]], **gen)[0]
    result: dict[str, Any] = {
        "answer": first.strip(),
        "mode": "direct",
        "tool_call_parsed": False,
        "box": None,
        "box_model": None,
        "native_crop": native_crop,
        "replies": [first],
        "visual_tokens": {"full_view": full_tokens, "zoom_view": 0, "prompt_total": full_tokens},
        "sizes": {
            "original": [width, height],
            "full_view": [view_w, view_h],
            "full_view_model_input": list(full_input),
            "zoom_view": None,
        },
        "reads": {"full_view": full_read, "zoom_view": None},
    }
    box_model = parse_tool_call(first)
    if box_model is None and _TOOL_OPEN not in first and ZOOM_TOOL_NAME not in first:
        return result  # no tool call at all: the first reply is the answer

    zoom_view = None
    if box_model is not None:
        result["box_model"] = box_model
        in_w, in_h = full_input
        if native_crop:
            sx, sy = width / in_w, height / in_h
            box = [box_model[0] * sx, box_model[1] * sy, box_model[2] * sx, box_model[3] * sy]
            read = read_zoom_view(
                image_path, box, min_pixels=lo, max_pixels=hi, factor=factor, image_size=(width, height)
            )
            if read is not None:
                zoom_view, record = read
                result["box"] = record.pop("box")
                result["reads"]["zoom_view"] = record
        else:
            sx, sy = view_w / in_w, view_h / in_h
            window = _sane_window(
                [box_model[0] * sx, box_model[1] * sy, box_model[2] * sx, box_model[3] * sy],
                (view_w, view_h),
                factor,
            )
            if window is not None:
                x, y, w, h = window
                crop_h, crop_w = smart_resize(h, w, factor, lo, hi)
                zoom_view = full_view.crop((x, y, x + w, y + h))
                result["reads"]["zoom_view"] = {
                    "crop_of_full_view": [x, y, x + w, y + h],
                    "size": [crop_w, crop_h],
                }
                if zoom_view.size != (crop_w, crop_h):
                    zoom_view = zoom_view.resize((crop_w, crop_h), resample=_BICUBIC)
                ox, oy = width / view_w, height / view_h
                result["box"] = [
                    math.floor(x * ox),
                    math.floor(y * oy),
                    math.ceil((x + w) * ox),
                    math.ceil((y + h) * oy),
                ]
    result["tool_call_parsed"] = box_model is not None
    if (
        zoom_view is None
    ):  # a tool call that does not parse (or lies outside the image): re-send the full view
        zoom_view = full_view
        result["mode"] = "resend_full_view"
    else:
        result["mode"] = "zoom"
    zoom_tokens, _ = _visual_tokens(model, zoom_view) if zoom_view is not full_view else (full_tokens, None)
    conversation = [
        *conversation,
        {"role": "assistant", "content": first},
        {
            "role": "user",
            "content": [{"type": "image", "image": zoom_view}, {"type": "text", "text": ZOOMED_IMAGE_TURN}],
        },
    ]
    second = model.chat([conversation], [[full_view, zoom_view]], **gen)[0]
    result["answer"] = second.strip()
    result["replies"].append(second)
    result["visual_tokens"] = {
        "full_view": full_tokens,
        "zoom_view": zoom_tokens,
        "prompt_total": 2 * full_tokens + zoom_tokens,
    }
    result["sizes"]["zoom_view"] = list(zoom_view.size)
    return result
