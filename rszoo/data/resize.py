"""Qwen-VL dynamic resolution: ``smart_resize`` and box mapping between original and model-input pixels.

Qwen2.5-VL (patch 14, merge 2: factor 28) and Qwen3-VL (patch 16, merge 2: factor 32) resize every image to a size
divisible by ``factor`` whose area lies in ``[min_pixels, max_pixels]``. The model reads and writes boxes in absolute
pixels of that *resized* input ("scalable boxes"), so boxes must be mapped back to original pixels with the same
ratio.

Example:
    >>> smart_resize(800, 800)
    (812, 812)
    >>> smart_resize(512, 512, min_pixels=224 * 224, max_pixels=1008 * 1008)
    (504, 504)
    >>> box_to_original([0, 0, 812, 406], input_size=(812, 812), original_size=(800, 800))
    [0.0, 0.0, 800.0, 400.0]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

__all__ = [
    "QWEN2_5_VL_FACTOR",
    "QWEN3_VL_FACTOR",
    "box_to_input",
    "box_to_original",
    "input_size_for",
    "smart_resize",
]

QWEN2_5_VL_FACTOR = 28  # patch_size 14 x spatial merge 2
QWEN3_VL_FACTOR = 32  # patch_size 16 x spatial merge 2
MAX_ASPECT_RATIO = 200


def smart_resize(
    height: int,
    width: int,
    factor: int = QWEN2_5_VL_FACTOR,
    min_pixels: int = 4 * 28 * 28,
    max_pixels: int = 16384 * 28 * 28,
    convention: Literal["transformers", "qwen_vl_utils"] = "transformers",
) -> tuple[int, int]:
    """Return ``(resized_height, resized_width)`` exactly as Qwen's resize rule computes it.

    Args:
        height: original image height in pixels.
        width: original image width in pixels.
        factor: patch size x spatial merge size (28 for Qwen2.5-VL, 32 for Qwen3-VL).
        min_pixels: lower bound on the resized area (Qwen2.5-VL checkpoints ship 3136).
        max_pixels: upper bound on the resized area (Qwen2.5-VL checkpoints ship 12,845,056).
        convention: ``"transformers"`` reproduces ``Qwen2VLImageProcessor`` (what the model actually sees through a
            processor); ``"qwen_vl_utils"`` adds ``max(factor, .)`` to the first rounding, as ``qwen_vl_utils`` does.
            They differ only for images at most ``factor / 2`` pixels on a side (banker's rounding sends
            exactly ``factor / 2`` to 0).

    Both use Python's ``round`` (banker's rounding), so 14 px rounds to 0 and 42 px to 56 with factor 28.

    Raises:
        ValueError: for non-positive sizes or an aspect ratio above 200.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"smart_resize: image size must be positive, got height={height}, width={width}")
    if not 0 < min_pixels <= max_pixels:
        raise ValueError(
            f"smart_resize: need 0 < min_pixels <= max_pixels, got {min_pixels} and {max_pixels}"
        )
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(
            f"smart_resize: aspect ratio {max(height, width) / min(height, width):.1f} exceeds {MAX_ASPECT_RATIO}; "
            "crop or tile the image first"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if convention == "qwen_vl_utils":
        h_bar, w_bar = max(factor, h_bar), max(factor, w_bar)
    elif convention != "transformers":
        raise ValueError(
            f"smart_resize: convention must be 'transformers' or 'qwen_vl_utils', got {convention!r}"
        )
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def input_size_for(
    original_size: tuple[int, int],
    factor: int = QWEN2_5_VL_FACTOR,
    min_pixels: int = 4 * 28 * 28,
    max_pixels: int = 16384 * 28 * 28,
) -> tuple[int, int]:
    """``(width, height)`` of the model input for an original ``(width, height)`` (PIL order)."""
    w, h = original_size
    rh, rw = smart_resize(h, w, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    return rw, rh


def _scale(box: Sequence[float], sx: float, sy: float) -> list[float]:
    if len(box) != 4:
        raise ValueError(f"a box is [x1, y1, x2, y2]; got {len(box)} values: {list(box)!r}")
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1 * sx, y1 * sy, x2 * sx, y2 * sy]


def box_to_original(
    box: Sequence[float], input_size: tuple[int, int], original_size: tuple[int, int]
) -> list[float]:
    """Map a box from model-input pixels to original pixels. Sizes are ``(width, height)``."""
    (iw, ih), (ow, oh) = input_size, original_size
    return _scale(box, ow / iw, oh / ih)


def box_to_input(
    box: Sequence[float], input_size: tuple[int, int], original_size: tuple[int, int]
) -> list[float]:
    """Map a box from original pixels to model-input pixels. Sizes are ``(width, height)``."""
    (iw, ih), (ow, oh) = input_size, original_size
    return _scale(box, iw / ow, ih / oh)
