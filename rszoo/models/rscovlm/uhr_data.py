"""LRS-VQA-Zoom-style data from synthetic large scenes: UHR questions with the region to zoom into (paper §III-D).

The paper builds LRS-VQA-Zoom from DOTA / GLH-Bridge / STAR detection labels in three subsets; here the same recipes
run on the synthetic world's scene graph (:mod:`rszoo.data.synth`), so every answer is exact:

1. **Template questions** (§III-D.1). *Counting*: the image is split into a 3x3 grid; a category with at least
   ``dense_threshold`` instances is counted in one grid region (its box is the zoom region), a sparser one over the
   whole image (no single region: a plain VQA sample, as RSCoVLM does for multi-box samples). An object belongs to
   the region holding its centre (:func:`rszoo.data.synth.relations.grid_cell`). *Comparison*: which of two
   categories has more instances (``yes``/``no`` or the category's plural), over the whole image.
2. **Unique references** (§III-D.2, templated instead of GPT-4V): an object that a short phrase singles out -- the
   only instance of its category in the image (``the helicopter``) or in a grid region (``the storage tank in the
   top left of the image``), or the only object of its colour in a region (``the yellow object at the top of the
   image``) -- is asked about its colour, shape or category. The zoom region is the object's box padded by ``pad``
   pixels and grown to at least ``min_side`` (the "coarse region"), kept inside the image.
3. **Multiple choice** (§III-D.3): a fraction of the non-yes/no questions is also written as a 4-option MCQ; the
   three distractors are drawn from the scene's vocabulary (colours, categories, shapes present, nearby counts),
   options are shuffled with the seeded RNG and the answer is a letter. The prompt is RSCoVLM's MCQ prompt.

Files written by :func:`write_lrs_vqa_zoom` (paths relative to ``out_dir``; same seed -> same bytes):

* ``scenes/NNNN/`` -- one synthetic large scene each (:func:`rszoo.data.synth.write_large`: ``large.tif`` tiled
  GeoTIFF or ``large.png``, ``scene.json``, COCO and DOTA labels);
* ``lrs_vqa_zoom_eval.jsonl`` -- LRS-VQA format (``question_id`` prefixed ``SYN``, ``image``, ``text``,
  ``ground_truth``, ``category``; plus ``type``, ignored by the scorers) for the last ``eval_scenes`` scenes,
  scored by :func:`rszoo.metrics.vqa.lrs_vqa`;
* ``lrs_vqa_zoom_train.jsonl`` -- RSCoVLM ``visual_cot`` rows (``question``/``answer`` or MCQ ``Text``/``Ground
  truth``/``Answer choices``; ``bbox_info.crop_hbox`` in native pixels; ``image_ori_width/height``) for the others;
* ``messages.jsonl`` -- the same training samples as rszoo chat rows
  (:func:`rszoo.models.rscovlm.zoom.zoom_chain_messages`), ready for the SFT stage;
* ``manifest.json``.

Scale: tests use 2,048-8,192 px scenes; the generator goes up to the LRS-VQA range (27,000 x 20,000 px) with
GeoTIFF output (streamed chunk by chunk), but generating and rendering such a scene takes minutes per image.

Example:
    >>> from rszoo.data.synth import generate_large_scene
    >>> scene = generate_large_scene(1, 2048, 2048)
    >>> qs = zoom_questions(scene, per_type=1)
    >>> sorted({q["type"] for q in qs}) == sorted({"count", "comparison", "colour", "shape", "category"})
    True
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rszoo.data.resize import QWEN2_5_VL_FACTOR
from rszoo.data.synth.categories import CATEGORIES, CATEGORY_SPECS, COLOUR_RGB
from rszoo.data.synth.graph import Scene, SceneObject
from rszoo.data.synth.relations import CELL_NAMES, grid_cell
from rszoo.data.synth.seeding import stream
from rszoo.data.synth.text import CELL_PHRASES

__all__ = [
    "LRSVQA_CATEGORY",
    "MCQ_INSTRUCTION",
    "SHAPE_VOCABULARY",
    "SHORT_ANSWER",
    "coarse_region",
    "grid_regions",
    "mcq_prompt",
    "object_shape",
    "write_lrs_vqa_zoom",
    "zoom_questions",
]

#: LRS-VQA category of each question type (comparisons of quantities are filed under "reasoning").
LRSVQA_CATEGORY = {
    "count": "count",
    "comparison": "reasoning",
    "colour": "object color",
    "shape": "object shape",
    "category": "object category",
}

#: Appended to open-ended questions (LLaVA's short-answer instruction; RSCoVLM strips it for MCQ prompts).
SHORT_ANSWER = "\nAnswer the question using a single word or phrase."

#: RSCoVLM's MCQ instruction (``visual_cot_dataset.get_messages`` and the MME-RealWorld eval).
MCQ_INSTRUCTION = (
    "Select the best answer to the above multiple-choice question based on the image. Respond with only the letter "
    "(A, B, C, D, or E) of the correct option."
)

#: Shape words answers and MCQ distractors are drawn from.
SHAPE_VOCABULARY = ("rectangular", "circular", "L-shaped", "cross-shaped", "triangular")

_RECTANGULAR = frozenset(
    {"tennis-court", "basketball-court", "soccer-ball-field", "swimming-pool", "large-vehicle"}
)
_LETTERS = "ABCD"


def object_shape(obj: SceneObject) -> str | None:
    """The outline shape of an object, from its category and drawing style; None when no plain word fits.

    ``circular``: storage tanks (disc outlines). ``L-shaped``: buildings of style ``l-shape``. ``rectangular``:
    other buildings, courts, fields, pools and large vehicles. ``cross-shaped``: planes. Cars (rounded),
    ships (pointed), helicopters and bridges get None.
    """
    if obj.category == "storage-tank":
        return "circular"
    if obj.category == "building":
        return "L-shaped" if obj.style == "l-shape" else "rectangular"
    if obj.category in _RECTANGULAR:
        return "rectangular"
    if obj.category == "plane":
        return "cross-shaped"
    return None


def grid_regions(width: int, height: int) -> dict[str, list[int]]:
    """The 3x3 grid regions ``{name: [x1, y1, x2, y2]}`` in integer pixels, each covering its whole cell.

    Cell ``(row, col)`` holds the centres ``c`` with ``col = floor(3 cx / W)`` (and likewise rows), i.e.
    ``col * W / 3 <= cx < (col + 1) * W / 3``; the box rounds those edges outward.

    Example:
        >>> grid_regions(100, 90)["center"]
        [33, 30, 67, 60]
    """
    xs = [(c * width // 3, -(-(c + 1) * width // 3)) for c in range(3)]
    ys = [(r * height // 3, -(-(r + 1) * height // 3)) for r in range(3)]
    return {CELL_NAMES[r][c]: [xs[c][0], ys[r][0], xs[c][1], ys[r][1]] for r in range(3) for c in range(3)}


def _span(lo: int, hi: int, need: int, limit: int) -> tuple[int, int]:
    """Grow ``[lo, hi)`` symmetrically to at least ``need`` (capped at ``limit``), shifted to stay in ``[0, limit]``."""
    need = min(need, limit)
    if hi - lo >= need:
        return lo, hi
    lo = max(0, min(lo - (need - (hi - lo)) // 2, limit - need))
    return lo, lo + need


def coarse_region(
    hbox: Sequence[float], width: int, height: int, *, pad: int = 128, min_side: int = 512
) -> list[int]:
    """The "coarse region" around a box: padded by ``pad`` px, grown to ``min_side`` px, inside the image.

    Example:
        >>> coarse_region([10, 20, 30, 40], 1000, 800, pad=16, min_side=100)
        [0, 0, 100, 100]
        >>> coarse_region([500, 400, 520, 410], 1000, 800, pad=16, min_side=100)
        [460, 355, 560, 455]
    """
    x1 = max(0, math.floor(hbox[0]) - pad)
    y1 = max(0, math.floor(hbox[1]) - pad)
    x2 = min(width, math.ceil(hbox[2]) + pad)
    y2 = min(height, math.ceil(hbox[3]) + pad)
    x1, x2 = _span(x1, x2, min_side, width)
    y1, y2 = _span(y1, y2, min_side, height)
    return [x1, y1, x2, y2]


def mcq_prompt(text: str, choices: Sequence[str]) -> str:
    """RSCoVLM's MCQ prompt: the question, ``The choices are listed below:``, one choice per line, instruction.

    Example:
        >>> prompt = mcq_prompt("What is it?" + SHORT_ANSWER, ["(A) a ship", "(B) a plane"])
        >>> prompt.splitlines()[:3]
        ['What is it? The choices are listed below: ', '(A) a ship', '(B) a plane']
        >>> prompt.endswith("correct option.\\nThe best answer is:")
        True
    """
    # the reference's rstrip takes a *set* of characters; for a question ending in "?" it removes exactly the
    # short-answer sentence, which is what it is meant to do
    stem = text.rstrip("\n Answer the question using a single word or phrase.")  # noqa: B005
    return (
        stem
        + " The choices are listed below: \n"
        + "".join(c + "\n" for c in choices)
        + MCQ_INSTRUCTION
        + ("\nThe best answer is:")
    )


# ---------------------------------------------------------------------------------------------------- questions


def _where(cell: str) -> str:
    return f"{CELL_PHRASES[cell]} of the image"


def _count_questions(
    scene: Scene, rng: random.Random, per_type: int, dense_threshold: int, cells: dict[int, str]
) -> list[dict[str, Any]]:
    by_cat = Counter(o.category for o in scene.objects)
    present = [c for c in CATEGORIES if by_cat[c] > 0]
    regions = grid_regions(scene.width, scene.height)
    out = []
    for cat in rng.sample(present, min(per_type, len(present))):
        plural = CATEGORY_SPECS[cat].plural
        if by_cat[cat] < dense_threshold:
            out.append(
                {
                    "type": "count",
                    "question": f"How many {plural} are there in the image?",
                    "answer": str(by_cat[cat]),
                    "crop_hbox": None,
                    "facts": {"category": cat, "cell": None, "count": by_cat[cat]},
                }
            )
            continue
        per_cell = Counter(cells[o.id] for o in scene.objects if o.category == cat)
        cell = rng.choice([name for row in CELL_NAMES for name in row if per_cell[name] > 0])
        out.append(
            {
                "type": "count",
                "question": f"How many {plural} are there in the {cell} part of the image?",
                "answer": str(per_cell[cell]),
                "crop_hbox": regions[cell],
                "facts": {"category": cat, "cell": cell, "count": per_cell[cell]},
            }
        )
    return out


def _comparison_questions(scene: Scene, rng: random.Random, per_type: int) -> list[dict[str, Any]]:
    by_cat = Counter(o.category for o in scene.objects)
    present = [c for c in CATEGORIES if by_cat[c] > 0]
    pairs = [(a, b) for i, a in enumerate(present) for b in present[i + 1 :] if by_cat[a] != by_cat[b]]
    out = []
    for a, b in rng.sample(pairs, min(per_type, len(pairs))):
        if rng.random() < 0.5:
            a, b = b, a
        pa, pb = CATEGORY_SPECS[a].plural, CATEGORY_SPECS[b].plural
        if rng.random() < 0.5:
            question, answer, form = (
                f"Are there more {pa} than {pb} in the image?",
                ("yes" if by_cat[a] > by_cat[b] else "no"),
                "yes-no",
            )
        else:
            question = f"Which are more numerous in the image, {pa} or {pb}?"
            answer, form = (pa if by_cat[a] > by_cat[b] else pb), "which"
        out.append(
            {
                "type": "comparison",
                "question": question,
                "answer": answer,
                "crop_hbox": None,
                "facts": {"categories": [a, b], "counts": [by_cat[a], by_cat[b]], "form": form},
            }
        )
    return out


def _unique_references(scene: Scene, cells: dict[int, str]) -> list[tuple[SceneObject, dict[str, Any], str]]:
    """``(object, reference attributes, phrase)`` for every object a category / category+region phrase singles out."""
    by_cat = Counter(o.category for o in scene.objects)
    by_cat_cell = Counter((o.category, cells[o.id]) for o in scene.objects)
    out = []
    for obj in scene.objects:
        label = CATEGORY_SPECS[obj.category].label
        if by_cat[obj.category] == 1:
            out.append((obj, {"category": obj.category, "colour": None, "cell": None}, f"the {label}"))
        elif by_cat_cell[(obj.category, cells[obj.id])] == 1:
            cell = cells[obj.id]
            out.append(
                (obj, {"category": obj.category, "colour": None, "cell": cell}, f"the {label} {_where(cell)}")
            )
    return out


def _attribute_questions(
    scene: Scene, rng: random.Random, per_type: int, pad: int, min_side: int, cells: dict[int, str]
) -> list[dict[str, Any]]:
    refs = _unique_references(scene, cells)

    def item(
        kind: str, obj: SceneObject, reference: dict[str, Any], question: str, answer: str
    ) -> dict[str, Any]:
        return {
            "type": kind,
            "question": question,
            "answer": answer,
            "crop_hbox": coarse_region(obj.hbox, scene.width, scene.height, pad=pad, min_side=min_side),
            "facts": {"target_id": obj.id, "reference": reference, "hbox": list(obj.hbox)},
        }

    out = []
    # colour: skip categories that only come in one colour (the answer would be given by the category)
    colour_refs = [r for r in refs if len(CATEGORY_SPECS[r[0].category].colours) > 1]
    for obj, reference, phrase in rng.sample(colour_refs, min(per_type, len(colour_refs))):
        out.append(item("colour", obj, reference, f"What is the color of {phrase}?", obj.colour))
    shape_refs = [r for r in refs if object_shape(r[0]) is not None]
    for obj, reference, phrase in rng.sample(shape_refs, min(per_type, len(shape_refs))):
        out.append(item("shape", obj, reference, f"What is the shape of {phrase}?", str(object_shape(obj))))
    # category: the only object of its colour in a grid region (the phrase must not name the category)
    by_colour_cell = Counter((o.colour, cells[o.id]) for o in scene.objects)
    singles = [o for o in scene.objects if by_colour_cell[(o.colour, cells[o.id])] == 1]
    for obj in rng.sample(singles, min(per_type, len(singles))):
        cell = cells[obj.id]
        reference = {"category": None, "colour": obj.colour, "cell": cell}
        question = f"What type of object is the {obj.colour} object {_where(cell)}?"
        out.append(item("category", obj, reference, question, CATEGORY_SPECS[obj.category].label))
    return out


def _distractors(q: dict[str, Any], scene: Scene, rng: random.Random) -> list[str] | None:
    """Three wrong options from the scene's vocabulary (then the global one); None for yes/no questions."""
    answer = q["answer"]
    if answer in ("yes", "no"):
        return None
    kind = q["type"]
    if kind == "colour":
        local = sorted({o.colour for o in scene.objects})
        pool = list(COLOUR_RGB)
    elif kind == "category":
        local = [CATEGORY_SPECS[c].label for c in CATEGORIES if any(o.category == c for o in scene.objects)]
        pool = [CATEGORY_SPECS[c].label for c in CATEGORIES]
    elif kind == "shape":
        local = sorted({s for s in (object_shape(o) for o in scene.objects) if s is not None})
        pool = list(SHAPE_VOCABULARY)
    elif kind == "comparison":
        local = [CATEGORY_SPECS[c].plural for c in q["facts"]["categories"]]
        local += [CATEGORY_SPECS[c].plural for c in CATEGORIES if any(o.category == c for o in scene.objects)]
        pool = [CATEGORY_SPECS[c].plural for c in CATEGORIES]
    else:  # counts: nearby numbers first
        n = int(answer)
        local = [str(v) for v in range(max(0, n - 3), n + 4)]
        pool = [str(v) for v in range(max(0, n - 10), n + 11)]
    chosen: list[str] = []
    # the other category of a comparison is always an option; the rest are sampled
    if kind == "comparison":
        chosen = [v for v in local[:2] if v != answer]
    local = [v for v in dict.fromkeys(local) if v != answer and v not in chosen]
    chosen += rng.sample(local, min(3 - len(chosen), len(local)))
    rest = [v for v in pool if v != answer and v not in chosen]
    chosen += rng.sample(rest, 3 - len(chosen))
    return chosen


def _as_mcq(q: dict[str, Any], scene: Scene, rng: random.Random) -> dict[str, Any] | None:
    wrong = _distractors(q, scene, rng)
    if wrong is None:
        return None
    options = [q["answer"], *wrong]
    rng.shuffle(options)
    choices = [f"({_LETTERS[i]}) {opt}" for i, opt in enumerate(options)]
    letter = _LETTERS[options.index(q["answer"])]
    return {**q, "format": "mcq", "choices": choices, "answer": letter, "answer_text": q["answer"]}


def zoom_questions(
    scene: Scene,
    *,
    seed: int | None = None,
    per_type: int = 2,
    dense_threshold: int = 30,
    pad: int = 128,
    min_side: int = 512,
    mcq_fraction: float = 0.3,
) -> list[dict[str, Any]]:
    """LRS-VQA-Zoom-style questions about one scene (see the module docstring), deterministic per seed.

    Args:
        scene: a (large) synthetic scene.
        seed: question RNG seed; default ``scene.seed``.
        per_type: at most this many questions of each type (count, comparison, colour, shape, category).
        dense_threshold: categories with at least this many instances are counted in one grid region.
        pad: padding of the coarse region around a referenced object (pixels).
        min_side: smallest side of a coarse region (pixels; capped at the image size).
        mcq_fraction: probability that a non-yes/no question is also emitted as an MCQ.

    Returns:
        Dicts with ``type`` (count / comparison / colour / shape / category), ``format`` (``open`` / ``mcq``),
        ``category`` (LRS-VQA), ``question`` (open text, ending with :data:`SHORT_ANSWER`), ``answer`` (a letter
        for MCQs, whose ``answer_text`` is the open answer and ``choices`` the ``(A) ...`` lines), ``crop_hbox``
        (``[x1, y1, x2, y2]`` native pixels, or None for whole-image questions) and ``facts`` (the ground truth the
        answer was computed from).
    """
    if not 0.0 <= mcq_fraction <= 1.0:
        raise ValueError(f"mcq_fraction must be in [0, 1], got {mcq_fraction}")
    if per_type < 0 or dense_threshold < 1 or pad < 0 or min_side < 1:
        raise ValueError(
            f"need per_type >= 0, dense_threshold >= 1, pad >= 0, min_side >= 1; got {per_type}, "
            f"{dense_threshold}, {pad}, {min_side}"
        )
    rng = stream(scene.seed if seed is None else seed, "lrs-vqa-zoom")
    cells = {o.id: grid_cell(o.center, scene.width, scene.height) for o in scene.objects}
    base = (
        _count_questions(scene, rng, per_type, dense_threshold, cells)
        + _comparison_questions(scene, rng, per_type)
        + _attribute_questions(scene, rng, per_type, pad, min_side, cells)
    )
    out = []
    for q in base:
        q = {
            **q,
            "format": "open",
            "category": LRSVQA_CATEGORY[q["type"]],
            "question": q["question"] + SHORT_ANSWER,
        }
        out.append(q)
        if rng.random() < mcq_fraction:
            mcq = _as_mcq(q, scene, rng)
            if mcq is not None:
                out.append(mcq)
    return out


# ------------------------------------------------------------------------------------------------------ writing


def _type_name(q: dict[str, Any]) -> str:
    return q["type"] if q["format"] == "open" else f"{q['type']}-mcq"


def _prompt(q: dict[str, Any]) -> str:
    return mcq_prompt(q["question"], q["choices"]) if q["format"] == "mcq" else q["question"]


def _visual_cot_row(qid: str, image: str, q: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    row: dict[str, Any] = {"question_id": qid, "image": image}
    if q["format"] == "mcq":
        row.update({"Text": q["question"], "Ground truth": q["answer"], "Answer choices": q["choices"]})
    else:
        row.update({"question": q["question"], "answer": q["answer"]})
    row.update(
        {
            "bbox_info": {"crop_hbox": [] if q["crop_hbox"] is None else [q["crop_hbox"]]},
            "image_ori_width": size[0],
            "image_ori_height": size[1],
            "category": q["category"],
            "type": _type_name(q),
        }
    )
    return row


def write_lrs_vqa_zoom(
    out_dir: str | Path,
    *,
    num_scenes: int = 4,
    seed: int = 0,
    sizes: Sequence[tuple[int, int]] = ((4096, 4096),),
    density: float = 1.0,
    eval_scenes: int = 1,
    geotiff: bool = True,
    min_pixels: int = 224 * 224,
    max_pixels: int = 1008 * 1008,
    factor: int = QWEN2_5_VL_FACTOR,
    per_type: int = 2,
    dense_threshold: int = 30,
    pad: int = 128,
    min_side: int = 512,
    mcq_fraction: float = 0.3,
) -> dict[str, Any]:
    """Write synthetic LRS-VQA-Zoom data (scenes, eval JSONL, visual_cot and messages JSONL; see module docstring).

    Args:
        out_dir: output folder.
        num_scenes: number of large scenes; scene ``i`` uses seed ``seed + i``.
        seed: base seed (same seed -> same bytes).
        sizes: ``(width, height)`` per scene, cycled (e.g. ``[(2048, 2048), (8192, 6144)]``; up to 27,000 x 20,000).
        density: object density of the scenes (see :func:`rszoo.data.synth.generate_large_scene`).
        eval_scenes: the last ``eval_scenes`` scenes form the LRS-VQA-format eval split, the rest train.
        geotiff: write tiled GeoTIFFs (windowed reads; needed for UHR sizes) instead of PNGs.
        min_pixels: smart_resize lower bound of the training conversations' views.
        max_pixels: smart_resize upper bound (the paper: 1008 * 1008).
        factor: patch x merge size of the target model (28 Qwen2.5-VL, 32 Qwen3-VL).
        per_type: see :func:`zoom_questions`.
        dense_threshold: see :func:`zoom_questions`.
        pad: see :func:`zoom_questions`.
        min_side: see :func:`zoom_questions`.
        mcq_fraction: see :func:`zoom_questions`.

    Returns:
        The manifest (also written to ``manifest.json``).
    """
    from rszoo.data.records import write_jsonl
    from rszoo.data.synth import write_large
    from rszoo.models.rscovlm.zoom import zoom_chain_messages
    from rszoo.utils.io import atomic_write_text

    if num_scenes < 1 or not 0 <= eval_scenes <= num_scenes:
        raise ValueError(
            f"need num_scenes >= 1 and 0 <= eval_scenes <= num_scenes; got {num_scenes}, {eval_scenes}"
        )
    if not sizes or any(len(s) != 2 or int(s[0]) < 16 or int(s[1]) < 16 for s in sizes):
        raise ValueError(
            f"sizes must be a non-empty list of (width, height) of at least 16 px; got {sizes!r}"
        )
    out = Path(out_dir)
    train_rows: list[dict[str, Any]] = []
    message_rows: list[dict[str, Any]] = []
    eval_rows: list[dict[str, Any]] = []
    scenes = []
    for i in range(num_scenes):
        width, height = (int(v) for v in sizes[i % len(sizes)])
        folder = f"scenes/{i:04d}"
        write_large(out / folder, seed + i, width, height, density=density, geotiff=geotiff, png=not geotiff)
        scene = Scene.from_dict(
            json.loads((out / folder / "scene.json").read_text()), f"{out / folder}/scene.json"
        )
        image = f"{folder}/{'large.tif' if geotiff else 'large.png'}"
        split = "eval" if i >= num_scenes - eval_scenes else "train"
        questions = zoom_questions(
            scene,
            seed=seed + i,
            per_type=per_type,
            dense_threshold=dense_threshold,
            pad=pad,
            min_side=min_side,
            mcq_fraction=mcq_fraction,
        )
        for k, q in enumerate(questions):
            qid = f"SYN_{i:04d}_{k:03d}"
            if split == "eval":
                eval_rows.append(
                    {
                        "question_id": qid,
                        "image": image,
                        "text": _prompt(q),
                        "ground_truth": q["answer"],
                        "category": q["category"],
                        "type": _type_name(q),
                    }
                )
                continue
            train_rows.append(_visual_cot_row(qid, image, q, (width, height)))
            messages = zoom_chain_messages(
                image,
                _prompt(q),
                q["answer"],
                q["crop_hbox"],
                original_size=(width, height),
                min_pixels=min_pixels,
                max_pixels=max_pixels,
                factor=factor,
            )
            message_rows.append({"id": qid, "task": "vqa_zoom", "messages": messages})
        scenes.append(
            {
                "folder": folder,
                "seed": seed + i,
                "width": width,
                "height": height,
                "split": split,
                "objects": len(scene.objects),
                "questions": len(questions),
            }
        )
    files = {}
    if train_rows:
        files["lrs_vqa_zoom_train.jsonl"] = write_jsonl(out / "lrs_vqa_zoom_train.jsonl", train_rows)
        files["messages.jsonl"] = write_jsonl(out / "messages.jsonl", message_rows)
    if eval_rows:
        files["lrs_vqa_zoom_eval.jsonl"] = write_jsonl(out / "lrs_vqa_zoom_eval.jsonl", eval_rows)
    all_rows = [*train_rows, *eval_rows]
    manifest = {
        "kind": "lrs_vqa_zoom",
        "seed": seed,
        "arguments": {
            "num_scenes": num_scenes,
            "sizes": [list(s) for s in sizes],
            "density": density,
            "eval_scenes": eval_scenes,
            "geotiff": geotiff,
            "min_pixels": min_pixels,
            "max_pixels": max_pixels,
            "factor": factor,
            "per_type": per_type,
            "dense_threshold": dense_threshold,
            "pad": pad,
            "min_side": min_side,
            "mcq_fraction": mcq_fraction,
        },
        "files": files,
        "scenes": scenes,
        "questions_by_type": dict(sorted(Counter(r["type"] for r in all_rows).items())),
        "zoom_samples": sum(1 for r in message_rows if r["messages"][0]["role"] == "system"),
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest
