"""The Zoom-in Chain's training conversation (RSCoVLM, paper Sec. III-D, eq. 5): data-layer format only.

Five turns: the tool system block declaring ``image_zoom_in(bbox: list[int])``; the user's question with the full image
smart-resized to the budget; the assistant's tool call with the box in resized full-view pixels; the region cropped
from the native-resolution image (an image part with ``"crop"``, read by window); the assistant's answer. The inference
loop and the tool-call parser live in :mod:`rszoo.models.rscovlm.zoom`.

Example:
    >>> msgs = zoom_chain_messages("big.tif", "What colour is the ship?", "white", [4000, 3000, 4512, 3512],
    ...                            original_size=(8000, 6000), min_pixels=224 * 224, max_pixels=1008 * 1008)
    >>> msgs[2]["content"]
    '<tool_call>\\n{"name": "image_zoom_in", "arguments": {"bbox": [574, 434, 647, 508]}}\\n</tool_call>'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rszoo.data.resize import QWEN2_5_VL_FACTOR, smart_resize

__all__ = [
    "ZOOMED_IMAGE_TURN",
    "ZOOM_INSTRUCTION",
    "ZOOM_TOOL_NAME",
    "ZOOM_TOOL_SYSTEM_PROMPT",
    "format_tool_call",
    "zoom_chain_messages",
]

ZOOM_TOOL_NAME = "image_zoom_in"

#: The system turn of the chain, byte-identical to RSCoVLM's ``visual_cot_dataset.SYSTEM_PROMPT`` (Qwen2.5's
#: function-calling block declaring ``image_zoom_in`` with one ``bbox`` parameter of type ``list[int]``).
ZOOM_TOOL_SYSTEM_PROMPT = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with "
    "function signatures within <tools></tools> XML tags:\n<tools>\n"
    '{"type": "function", "function": {"name": "image_zoom_in", "description": "Zoom in to the region of interest '
    "on the given image. Input the bounding box of the region of interest and return the zoomed-in image to help "
    'to focus and view more clearly.", "parameters": {"name": "bbox", "type": "list[int]", "description": "The '
    "bounding box of the region of interest as an array [x1, y1, x2, y2], where (x1, y1) and (x2, y2) indicate "
    "the positions' absolute coordinates of the left top and right down corners, respectively.\", "
    '"required": true}}}\n</tools>\n\nFor each function call, return a json object with function name and '
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)

#: Appended to the question (after a newline) in the first user turn.
ZOOM_INSTRUCTION = "Zoom in to the region of interest and answer the question."

#: The second user turn's text, after the zoomed-in image.
ZOOMED_IMAGE_TURN = "Here's the zoomed-in image. You can complete your task now."


#: ones are read decimated (memory stays within a few views whatever the image size).


def _plain_number(value: float) -> int | float:
    """Integral floats as ints, so JSON rows read ``[12, 40, ...]`` like the annotations they came from."""
    return int(value) if float(value).is_integer() else float(value)


def format_tool_call(box: Sequence[int]) -> str:
    """The assistant's tool-call turn for ``box`` (integers, resized full-view pixels), exactly as RSCoVLM writes it.

    Example:
        >>> format_tool_call([1, 2, 30, 40])
        '<tool_call>\\n{"name": "image_zoom_in", "arguments": {"bbox": [1, 2, 30, 40]}}\\n</tool_call>'
    """
    if len(box) != 4:
        raise ValueError(f"format_tool_call: a box is [x1, y1, x2, y2]; got {list(box)!r}")
    x1, y1, x2, y2 = (int(v) for v in box)
    return (
        f'<tool_call>\n{{"name": "{ZOOM_TOOL_NAME}", "arguments": {{"bbox": [{x1}, {y1}, {x2}, {y2}]}}}}\n'
        "</tool_call>"
    )


# ----------------------------------------------------------------------------------------------- training messages


def _single_crop_box(crop_hbox: Any) -> list[float] | None:
    """``[x1, y1, x2, y2]``, or None when there is no single region (None, ``[]`` or several boxes)."""
    if crop_hbox is None:
        return None
    if not isinstance(crop_hbox, Sequence) or isinstance(crop_hbox, str):
        raise ValueError(
            f"crop_hbox must be [x1, y1, x2, y2], a list of such boxes, or None; got {type(crop_hbox).__name__}"
        )
    if len(crop_hbox) == 0:
        return None
    if all(isinstance(v, Sequence) and not isinstance(v, str) for v in crop_hbox):
        # the reference stores a list of boxes and chains only when there is exactly one
        if len(crop_hbox) != 1:
            return None
        crop_hbox = crop_hbox[0]
    if len(crop_hbox) != 4 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in crop_hbox
    ):
        raise ValueError(f"crop_hbox must be 4 finite numbers [x1, y1, x2, y2]; got {crop_hbox!r}")
    return [float(v) for v in crop_hbox]


def zoom_chain_messages(
    image_path: str | Path,
    question: str,
    answer: str,
    crop_hbox: Sequence[float] | Sequence[Sequence[float]] | None,
    *,
    original_size: tuple[int, int],
    min_pixels: int,
    max_pixels: int,
    factor: int = QWEN2_5_VL_FACTOR,
) -> list[dict[str, Any]]:
    """The 5-turn Zoom-in Chain training conversation (rszoo messages; paths stay as given).

    Follows RSCoVLM's ``visual_cot_dataset.get_messages``: the full image is shown at
    ``smart_resize(original, min_pixels, max_pixels)`` (an image part with ``resized_width``/``resized_height``);
    the tool call's box is ``crop_hbox`` scaled to that size with ``int()`` (truncation) per coordinate; the
    second image is the **native** image cropped at the unscaled ``crop_hbox`` (an image part with ``"crop"``, read
    by window), shown at ``smart_resize(crop size, min_pixels, max_pixels)`` -- what the reference's processor does
    with the same limits, made explicit so the sample does not depend on the processor's settings.

    Args:
        image_path: the image (relative paths are resolved against the JSONL file's folder by the loaders).
        question: the question text (an MCQ prompt included).
        answer: the final answer (the second assistant turn).
        crop_hbox: the region in original pixels, ``[x1, y1, x2, y2]`` or the reference's ``[[x1, y1, x2, y2]]``.
            None, ``[]`` or several boxes give the reference's plain 2-turn VQA sample (no tool, no zoom).
        original_size: ``(width, height)`` of the image in pixels (the reference's ``image_ori_width/height``).
        min_pixels: smart_resize lower bound.
        max_pixels: smart_resize upper bound (an area budget: 1008 * 1008 in the paper).
        factor: patch size x merge size (28 for Qwen2.5-VL, 32 for Qwen3-VL).

    Returns:
        The messages: system, user, assistant, user, assistant (or user, assistant without a single region).

    Raises:
        ValueError: a non-positive ``original_size``, or a crop box that is not 4 numbers inside the image with
            ``x1 < x2`` and ``y1 < y2``, or whose aspect ratio exceeds smart_resize's 200.
    """
    if len(original_size) != 2 or int(original_size[0]) <= 0 or int(original_size[1]) <= 0:
        raise ValueError(f"original_size is (width, height) with positive values; got {original_size!r}")
    width, height = int(original_size[0]), int(original_size[1])
    resized_h, resized_w = smart_resize(height, width, factor, min_pixels, max_pixels)
    full_part = {
        "type": "image",
        "image": str(image_path),
        "resized_width": resized_w,
        "resized_height": resized_h,
    }
    box = _single_crop_box(crop_hbox)
    if box is None:
        return [
            {"role": "user", "content": [full_part, {"type": "text", "text": question}]},
            {"role": "assistant", "content": answer},
        ]
    x1, y1, x2, y2 = box
    if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        raise ValueError(
            f"crop_hbox {box} must satisfy 0 <= x1 < x2 <= {width} and 0 <= y1 < y2 <= {height} (original pixels "
            f"of {image_path}); fix the annotation's bbox_info.crop_hbox"
        )
    # the reference computes int(v * resized / original) per coordinate (truncation, in this operation order)
    scaled = [
        int(x1 * resized_w / width),
        int(y1 * resized_h / height),
        int(x2 * resized_w / width),
        int(y2 * resized_h / height),
    ]
    # PIL's crop rounds a float box; the crop keeps its native pixels and is then smart-resized on its own
    crop_w = max(1, round(x2) - round(x1))
    crop_h = max(1, round(y2) - round(y1))
    try:
        crop_rh, crop_rw = smart_resize(crop_h, crop_w, factor, min_pixels, max_pixels)
    except ValueError as exc:
        raise ValueError(f"crop_hbox {box} of {image_path} cannot be shown to the model: {exc}") from None
    crop_part = {
        "type": "image",
        "image": str(image_path),
        "crop": [_plain_number(v) for v in box],
        "resized_width": crop_rw,
        "resized_height": crop_rh,
    }
    return [
        {"role": "system", "content": ZOOM_TOOL_SYSTEM_PROMPT},
        {"role": "user", "content": [full_part, {"type": "text", "text": f"{question}\n{ZOOM_INSTRUCTION}"}]},
        {"role": "assistant", "content": format_tool_call(scaled)},
        {"role": "user", "content": [crop_part, {"type": "text", "text": ZOOMED_IMAGE_TURN}]},
        {"role": "assistant", "content": answer},
    ]
