"""Parity of rszoo.data.resize with transformers' Qwen2-VL resize rule, qwen_vl_utils, and the real processor."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from rszoo.data.resize import box_to_input, box_to_original, input_size_for, smart_resize

# (min_pixels, max_pixels): Qwen2.5-VL checkpoints, the RSCoVLM paper's 224^2..1008^2, transformers' class default
PIXEL_RANGES = [(3136, 12845056), (224 * 224, 1008 * 1008), (56 * 56, 28 * 28 * 1280)]
FACTORS = [28, 32]
SIDES = [
    14,
    15,
    16,
    27,
    28,
    41,
    42,
    56,
    100,
    224,
    333,
    512,
    608,
    800,
    1000,
    1024,
    2048,
    3000,
    4000,
    8192,
    10000,
]
SIDES += [20000, 27328, 30000]
MAX_ASPECT = 150


def grid_sizes() -> list[tuple[int, int]]:
    """Every (height, width) pair from SIDES with aspect ratio <= 1:150, plus seeded log-uniform random sizes."""
    sizes = [(h, w) for h, w in itertools.product(SIDES, SIDES) if max(h, w) / min(h, w) <= MAX_ASPECT]
    rng = random.Random(0)
    while len(sizes) < len(SIDES) ** 2 + 1500:
        h = round(math.exp(rng.uniform(math.log(14), math.log(30000))))
        w = round(h * math.exp(rng.uniform(-math.log(MAX_ASPECT), math.log(MAX_ASPECT))))
        if 14 <= w <= 30000 and max(h, w) / min(h, w) <= MAX_ASPECT:
            sizes.append((h, w))
    return sizes


@pytest.fixture(scope="module")
def hf_smart_resize():
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as reference

    return reference


@pytest.mark.parametrize("factor", FACTORS)
@pytest.mark.parametrize(("min_pixels", "max_pixels"), PIXEL_RANGES)
def test_parity_with_transformers(hf_smart_resize, factor, min_pixels, max_pixels):
    sizes = grid_sizes()
    assert (27328, 20000) in sizes and (4000, 3000) in sizes and (14, 2048) in sizes
    mismatches = []
    for h, w in sizes:
        ours = smart_resize(h, w, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
        theirs = hf_smart_resize(h, w, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
        if ours != tuple(theirs):
            mismatches.append(((h, w), ours, theirs))
    assert not mismatches, mismatches[:5]


# rscovlm notes section 3, with min 224^2 and max 1008^2 (an area budget, not a side limit); (h, w) -> (h, w)
NOTES_TABLE = [
    ((512, 512), (504, 504)),
    ((1024, 1024), (1008, 1008)),
    ((800, 800), (812, 812)),
    ((608, 608), (616, 616)),
    ((200, 200), (224, 224)),
    ((14, 14), (224, 224)),
    ((4000, 3000), (1148, 868)),
    ((27328, 20000), (1176, 840)),
]


@pytest.mark.parametrize(("size", "expected"), NOTES_TABLE)
def test_notes_table(size, expected):
    assert smart_resize(*size, min_pixels=224 * 224, max_pixels=1008 * 1008) == expected


def test_defaults_are_the_qwen25_checkpoint_range():
    assert smart_resize(800, 800) == (812, 812)
    assert smart_resize(27328, 20000) == smart_resize(27328, 20000, 28, 3136, 12845056)
    assert smart_resize(27328, 20000)[0] * smart_resize(27328, 20000)[1] <= 12845056


def qwen_vl_utils_resize(h: int, w: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """qwen_vl_utils.vision_process.smart_resize as written in the notes (section 3), independently of rszoo."""
    h_bar = max(factor, round(h / factor) * factor)
    w_bar = max(factor, round(w / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(h * w / max_pixels)
        h_bar = math.floor(h / beta / factor) * factor
        w_bar = math.floor(w / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        h_bar = math.ceil(h * beta / factor) * factor
        w_bar = math.ceil(w * beta / factor) * factor
    return h_bar, w_bar


@pytest.mark.parametrize("factor", FACTORS)
@pytest.mark.parametrize(("min_pixels", "max_pixels"), PIXEL_RANGES)
def test_parity_with_qwen_vl_utils_convention(factor, min_pixels, max_pixels):
    for h, w in grid_sizes():
        ours = smart_resize(h, w, factor, min_pixels, max_pixels, convention="qwen_vl_utils")
        assert ours == qwen_vl_utils_resize(h, w, factor, min_pixels, max_pixels), (h, w)


def test_conventions_differ_only_below_half_a_factor():
    # 14 px rounds to 0 under transformers (then the min-pixels branch upsizes); qwen_vl_utils keeps one factor
    assert smart_resize(14, 2100) == (28, 700)
    assert smart_resize(14, 2100, convention="qwen_vl_utils") == (28, 2100)
    for h, w in grid_sizes():
        a = smart_resize(h, w, 28, 224 * 224, 1008 * 1008)
        b = smart_resize(h, w, 28, 224 * 224, 1008 * 1008, convention="qwen_vl_utils")
        if a != b:
            assert min(h, w) <= 14, (h, w)  # round(14 / 28) == 0 (banker's rounding); 15 / 28 rounds to 1


def test_invalid_inputs():
    with pytest.raises(ValueError, match="positive"):
        smart_resize(0, 10)
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 2010)
    with pytest.raises(ValueError, match="convention"):
        smart_resize(10, 10, convention="pil")  # type: ignore[arg-type]


PROCESSOR_IMAGES = [
    (512, 512),
    (800, 600),
    (3000, 200),
    (20, 700),
    (1366, 911),
    (4000, 3000),
]  # PIL (width, height)


@pytest.mark.parametrize(
    ("patch_size", "min_pixels", "max_pixels"), [(14, 224 * 224, 1008 * 1008), (16, 3136, 2**20)]
)
def test_processor_grid_equals_smart_resize(patch_size, min_pixels, max_pixels):
    from PIL import Image
    from transformers import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    processors = [
        cls(min_pixels=min_pixels, max_pixels=max_pixels, patch_size=patch_size, merge_size=2)
        for cls in (Qwen2VLImageProcessor, Qwen2VLImageProcessorPil)
    ]
    for width, height in PROCESSOR_IMAGES:
        expected = smart_resize(
            height, width, factor=patch_size * 2, min_pixels=min_pixels, max_pixels=max_pixels
        )
        image = Image.new("RGB", (width, height), (90, 120, 30))
        for processor in processors:
            t, grid_h, grid_w = processor(images=[image], return_tensors="pt")["image_grid_thw"][0].tolist()
            assert (t, grid_h * patch_size, grid_w * patch_size) == (1, *expected), (
                type(processor),
                width,
                height,
            )
        assert input_size_for((width, height), patch_size * 2, min_pixels, max_pixels) == expected[::-1]


def test_box_mapping_round_trip_and_vlm_r1_rule():
    rng = random.Random(1)
    for _ in range(200):
        orig_w, orig_h = rng.randint(20, 30000), rng.randint(20, 30000)
        if max(orig_w, orig_h) / min(orig_w, orig_h) > MAX_ASPECT:
            continue
        input_w, input_h = input_size_for((orig_w, orig_h), min_pixels=224 * 224, max_pixels=1008 * 1008)
        box = (
            sorted(rng.uniform(0, input_w) for _ in range(2)),
            sorted(rng.uniform(0, input_h) for _ in range(2)),
        )
        model_box = [box[0][0], box[1][0], box[0][1], box[1][1]]
        # VLM-R1 / supervision rescale rule, written out: x *= W_orig / input_w, y *= H_orig / input_h
        expected = [
            model_box[0] * orig_w / input_w,
            model_box[1] * orig_h / input_h,
            model_box[2] * orig_w / input_w,
            model_box[3] * orig_h / input_h,
        ]
        mapped = box_to_original(model_box, (input_w, input_h), (orig_w, orig_h))
        assert mapped == pytest.approx(expected, rel=1e-12)
        back = box_to_input(mapped, (input_w, input_h), (orig_w, orig_h))
        assert back == pytest.approx(model_box, rel=1e-9, abs=1e-9)
    # the docstring example: the model's full input frame maps to the full original frame
    assert box_to_original([0, 0, 812, 406], (812, 812), (800, 800)) == [0.0, 0.0, 800.0, 400.0]
    assert box_to_input([0, 0, 4000, 3000], (1148, 868), (4000, 3000)) == [0.0, 0.0, 1148.0, 868.0]
    with pytest.raises(ValueError, match=r"\[x1, y1, x2, y2\]"):
        box_to_original([1, 2, 3], (10, 10), (10, 10))
