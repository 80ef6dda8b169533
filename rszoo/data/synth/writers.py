"""Data set writers: scenes, bi-temporal pairs and large images on disk (one job: files).

:func:`write_dataset` writes, under ``out_dir``::

    images/<id>.png          rendered scenes (also the DOTA images: dota/ reuses images/, nothing is copied)
    scenes.jsonl             full scene graphs (Scene.to_dict), one per line, in image order
    messages.jsonl           chat samples (OpenAI messages, see rszoo.data.records): caption, vqa, grounding,
                             detection; grounding answers are Qwen2.5-VL JSON {"bbox_2d": [x1, y1, x2, y2],
                             "label": "<category>"} in original-image integer pixels (rounded half up)
    grounding.jsonl          GroundingRecord rows (box in original pixels, float) with structured facts
    coco.json                COCO detection: bbox xywh, segmentation polygon (the object outline), area, iscrowd 0,
                             plus the oriented box ("obb", 8 numbers) and attributes
    dota/labelTxt/<id>.txt   DOTA lines "x1 y1 x2 y2 x3 y3 x4 y4 category difficult" (no header lines)
    manifest.json            generator version, seed, size, arguments, counts per file / task / category

Every file goes through a temporary name and a rename, and the same arguments give byte-identical files (PNG
included: the encoder settings are fixed and nothing time-dependent is written).

Example:
    >>> import tempfile
    >>> manifest = write_dataset(tempfile.mkdtemp(), num_scenes=2, seed=1, size=64)
    >>> manifest["files"]["images"]
    2
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rszoo.data.records import GroundingRecord, write_jsonl
from rszoo.data.synth.categories import CATEGORIES, CATEGORY_SPECS
from rszoo.data.synth.clouds import cloud_mask
from rszoo.data.synth.generate import GENERATOR_VERSION, synthesize
from rszoo.data.synth.geometry import poly_area
from rszoo.data.synth.graph import Scene, SceneObject
from rszoo.data.synth.render import render
from rszoo.data.synth.seeding import mix, stream
from rszoo.data.synth.temporal import change_mask, generate_pair
from rszoo.data.synth.text import scene_text
from rszoo.utils.io import atomic_write, atomic_write_bytes, atomic_write_text

__all__ = [
    "CAPTION_PROMPTS",
    "DIFFICULT_MIN_SIDE",
    "TASKS",
    "coco_document",
    "dota_lines",
    "grounding_answer",
    "png_bytes",
    "write_dataset",
    "write_large",
    "write_pairs",
]

TASKS = ("caption", "vqa", "grounding", "detection")
CAPTION_PROMPTS = (
    "Describe this remote sensing image.",
    "Write a detailed caption for this aerial image.",
    "What does this satellite image show?",
)
_VQA_SUFFIX = {
    "count": " Answer with a number.",
    "presence": " Answer yes or no.",
    "comparison": " Answer yes or no.",
    "landcover": " Answer yes or no.",
    "colour": " Answer with one colour word.",
    "location": "",
}
DIFFICULT_MIN_SIDE = 6.0  # objects narrower than this (pixels) are marked difficult in DOTA labels
Progress = Callable[[int], Any] | None


def png_bytes(image: np.ndarray, compress_level: int = 1) -> bytes:
    """Encode an RGB array as PNG with fixed settings (deterministic bytes)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def _int_box(box: Sequence[float]) -> list[int]:
    return [math.floor(v + 0.5) for v in box]


def grounding_answer(box: Sequence[float], label: str) -> str:
    """Qwen2.5-VL grounding answer: ``{"bbox_2d": [x1, y1, x2, y2], "label": ...}`` with integer pixels."""
    return json.dumps({"bbox_2d": _int_box(box), "label": label})


def _is_difficult(obj: SceneObject, clouds: np.ndarray | None) -> int:
    if min(obj.width, obj.height) < DIFFICULT_MIN_SIDE:
        return 1
    if clouds is not None:
        x = min(clouds.shape[1] - 1, max(0, int(obj.center[0])))
        y = min(clouds.shape[0] - 1, max(0, int(obj.center[1])))
        if clouds[y, x]:
            return 1
    return 0


def dota_lines(scene: Scene) -> list[str]:
    """DOTA label lines of a scene: 4 corners (clockwise from the top), category, difficult flag.

    ``difficult`` is 1 for objects thinner than :data:`DIFFICULT_MIN_SIDE` px or whose centre is under cloud.
    """
    clouds = (
        cloud_mask(scene) if scene.acquisition is not None and scene.acquisition.cloud_cover > 0 else None
    )
    lines = []
    for obj in scene.objects:
        coords = " ".join(f"{v:.2f}" for p in obj.poly for v in p)
        lines.append(f"{coords} {obj.category} {_is_difficult(obj, clouds)}")
    return lines


def _coco_annotation(obj: SceneObject, ann_id: int, image_id: int) -> dict[str, Any]:
    x1, y1, x2, y2 = obj.hbox
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": CATEGORIES.index(obj.category) + 1,
        "bbox": [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)],
        "segmentation": [[v for p in obj.shape for v in p]],
        "area": round(poly_area(obj.shape), 2),
        "iscrowd": 0,
        "obb": [v for p in obj.poly for v in p],
        "angle": obj.angle,
        "colour": obj.colour,
        "size_class": obj.size_class,
        "object_id": obj.id,
    }


def _coco_image(scene: Scene, file_name: str, image_id: int) -> dict[str, Any]:
    return {
        "id": image_id,
        "file_name": file_name,
        "width": scene.width,
        "height": scene.height,
        "scene_id": scene.id,
    }


def _coco(
    images: list[dict[str, Any]], annotations: list[dict[str, Any]], description: str
) -> dict[str, Any]:
    return {
        "info": {"description": description, "version": GENERATOR_VERSION},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": k + 1, "name": name, "supercategory": _supercategory(name)}
            for k, name in enumerate(CATEGORIES)
        ],
    }


def coco_document(scenes: Sequence[Scene], file_names: Sequence[str], description: str) -> dict[str, Any]:
    """A COCO detection document for rendered scenes (categories numbered from 1 in ``CATEGORIES`` order)."""
    images, annotations = [], []
    for k, (scene, name) in enumerate(zip(scenes, file_names), start=1):
        images.append(_coco_image(scene, name, k))
        for obj in scene.objects:
            annotations.append(_coco_annotation(obj, len(annotations) + 1, k))
    return _coco(images, annotations, description)


def _supercategory(name: str) -> str:
    if name.endswith("vehicle"):
        return "vehicle"
    if name in ("plane", "helicopter"):
        return "aircraft"
    if name in ("tennis-court", "basketball-court", "soccer-ball-field", "swimming-pool"):
        return "sports"
    return name


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def _user(image: str, text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]}


def _scene_messages(
    scene: Scene, image: str, text: dict[str, Any], tasks: Sequence[str]
) -> list[dict[str, Any]]:
    rng = stream(scene.seed, "messages")
    stem = f"synth-{scene.id}"
    rows: list[dict[str, Any]] = []
    if "caption" in tasks:
        rows.append(
            {
                "id": f"{stem}-cap",
                "task": "caption",
                "messages": [
                    _user(image, rng.choice(CAPTION_PROMPTS)),
                    {"role": "assistant", "content": text["captions"][0]},
                ],
            }
        )
    if "vqa" in tasks:
        for k, qa in enumerate(text["vqa"]):
            rows.append(
                {
                    "id": f"{stem}-vqa{k:02d}",
                    "task": "vqa",
                    "vqa_type": qa["type"],
                    "messages": [
                        _user(image, qa["question"] + _VQA_SUFFIX[qa["type"]]),
                        {"role": "assistant", "content": qa["answer"]},
                    ],
                }
            )
    if "grounding" in tasks:
        for k, e in enumerate(text["referring_expressions"]):
            rows.append(
                {
                    "id": f"{stem}-g{k:02d}",
                    "task": "grounding",
                    "messages": [
                        _user(
                            image, f"Locate {e['expression']}, output its bbox coordinates using JSON format."
                        ),
                        {"role": "assistant", "content": grounding_answer(e["box"], e["category"])},
                    ],
                }
            )
    if "detection" in tasks and scene.objects:
        present = sorted({o.category for o in scene.objects}, key=CATEGORIES.index)
        cat = rng.choice(present)
        boxes = [{"bbox_2d": _int_box(o.hbox), "label": cat} for o in scene.objects if o.category == cat]
        rows.append(
            {
                "id": f"{stem}-det",
                "task": "detection",
                "messages": [
                    _user(
                        image,
                        f"Locate every {CATEGORY_SPECS[cat].label} in the image, output their bbox coordinates "
                        "using JSON format.",
                    ),
                    {"role": "assistant", "content": json.dumps(boxes)},
                ],
            }
        )
    return rows


def _check_common(num: int, seed: int, size: int, what: str) -> None:
    if num < 1:
        raise ValueError(f"{what} must be >= 1, got {num}")
    if size < 16:
        raise ValueError(f"size must be >= 16 px, got {size}")
    if not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")


def _fact_object(f: dict[str, Any], id_key: str) -> dict[str, Any]:
    return {
        "id": f[id_key],
        "category": f["category"],
        "color": f["colour"],
        "size": f["size_class"],
        "grid": f["cell"],
        "hbox": f["hbox"],
    }


def record_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """A referring expression's facts in the grounding-record schema of :mod:`rszoo.data.records`.

    The generator's own facts (``target_id``, ``colour``, ``size_class``, ``cell`` ...) are what :func:`resolve`
    checks; records use the documented, generator-independent schema (``target``/``anchor`` objects), plus
    ``superlative``, ``strategy`` and ``uses`` describing how the expression disambiguates its target.
    """
    anchor = facts.get("anchor")
    return {
        "target": _fact_object(facts, "target_id"),
        "anchor": _fact_object(anchor, "id") if anchor else None,
        "relation": facts.get("relation") if anchor else None,
        "distractors": facts["distractors"],
        "superlative": facts.get("superlative"),
        "strategy": facts.get("strategy"),
        "uses": list(facts.get("uses", [])),
    }


def write_dataset(
    out_dir: str | Path,
    num_scenes: int = 64,
    seed: int = 0,
    size: int = 256,
    tasks: Sequence[str] = TASKS,
    *,
    gsd: float | None = None,
    density: float = 1.0,
    cloud_cover: float = 0.0,
    max_expressions: int = 6,
    compress_level: int = 1,
    progress: Progress = None,
) -> dict[str, Any]:
    """Generate ``num_scenes`` scenes and write images, graphs, text tasks and detection labels.

    Args:
        out_dir: output folder (created; existing files of the same names are replaced).
        num_scenes: how many scenes.
        seed: data set seed (scene ``i`` uses seed ``mix(seed, i)``).
        size: square image size in pixels.
        tasks: any of ``caption``, ``vqa``, ``grounding`` (messages + grounding.jsonl), ``detection`` (messages +
            coco.json + dota/).
        gsd: fix the ground sample distance (default: drawn per scene in [0.3, 0.8] m).
        density: object density multiplier.
        cloud_cover: cloud fraction of every scene (0 = clear).
        max_expressions: referring expressions (grounding samples) per scene.
        compress_level: PNG zlib level (fixed, so files repeat byte for byte; 1 is ~2x faster than 6 and
            within 3% of its size on these noisy images).
        progress: called with 1 after each scene (e.g. ``tqdm.update``).

    Returns:
        The manifest (also written to ``manifest.json``).

    Raises:
        ValueError: for an unknown task, ``num_scenes < 1`` or ``size < 16``.
    """
    _check_common(num_scenes, seed, size, "num_scenes")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; choose from {list(TASKS)}")
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    want_messages = any(t in tasks for t in TASKS)
    files: dict[str, Any] = {"images": 0, "scenes.jsonl": 0}
    by_task: Counter[str] = Counter()
    by_vqa: Counter[str] = Counter()
    by_category: Counter[str] = Counter()
    coco_images: list[dict[str, Any]] = []
    coco_annotations: list[dict[str, Any]] = []
    n_grounding = n_messages = n_dota_files = n_dota_objects = 0
    # JSONL files are streamed (temp file + rename at the end), so memory does not grow with the data set
    with contextlib.ExitStack() as stack:
        scenes_fh = stack.enter_context(atomic_write(out / "scenes.jsonl"))
        messages_fh = stack.enter_context(atomic_write(out / "messages.jsonl")) if want_messages else None
        grounding_fh = (
            stack.enter_context(atomic_write(out / "grounding.jsonl")) if "grounding" in tasks else None
        )
        for i in range(num_scenes):
            scene_seed = mix(seed, "dataset-scene", i) & 0x7FFFFFFF
            scene, image = synthesize(
                scene_seed, size, gsd=gsd, density=density, cloud_cover=cloud_cover, scene_id=f"{i:06d}"
            )
            name = f"images/{scene.id}.png"
            atomic_write_bytes(out / name, png_bytes(image, compress_level))
            files["images"] += 1
            scenes_fh.write(_dump(scene.to_dict()))
            files["scenes.jsonl"] += 1
            by_category.update(o.category for o in scene.objects)
            text = scene_text(scene, max_expressions)
            if messages_fh is not None:
                for row in _scene_messages(scene, name, text, tasks):
                    messages_fh.write(_dump(row))
                    n_messages += 1
                    by_task[row["task"]] += 1
                    if row["task"] == "vqa":
                        by_vqa[row["vqa_type"]] += 1
            if grounding_fh is not None:
                for k, e in enumerate(text["referring_expressions"]):
                    record = GroundingRecord(
                        id=f"synth-{scene.id}-g{k:02d}",
                        image=name,
                        width=scene.width,
                        height=scene.height,
                        expression=e["expression"],
                        box=e["box"],
                        category=e["category"],
                        unique=e["unique"],
                        source="synth",
                        facts=record_facts(e["facts"]),
                    )
                    grounding_fh.write(_dump(record.to_dict()))
                    n_grounding += 1
            if "detection" in tasks:
                image_id = len(coco_images) + 1
                coco_images.append(_coco_image(scene, name, image_id))
                for obj in scene.objects:
                    coco_annotations.append(_coco_annotation(obj, len(coco_annotations) + 1, image_id))
                lines = dota_lines(scene)
                atomic_write_text(
                    out / "dota" / "labelTxt" / f"{scene.id}.txt", "".join(ln + "\n" for ln in lines)
                )
                n_dota_files += 1
                n_dota_objects += len(lines)
            if progress is not None:
                progress(1)
    if messages_fh is not None:
        files["messages.jsonl"] = n_messages
    if grounding_fh is not None:
        files["grounding.jsonl"] = n_grounding
    if "detection" in tasks:
        coco = _coco(coco_images, coco_annotations, f"rszoo synthetic scenes, seed {seed}")
        atomic_write_text(out / "coco.json", json.dumps(coco, separators=(",", ":")) + "\n")
        files["coco.json"] = {
            "images": len(coco["images"]),
            "annotations": len(coco["annotations"]),
            "categories": len(coco["categories"]),
        }
        files["dota/labelTxt"] = n_dota_files
        files["dota_objects"] = n_dota_objects
    manifest = {
        "generator": GENERATOR_VERSION,
        "kind": "scenes",
        "seed": seed,
        "size": size,
        "num_scenes": num_scenes,
        "arguments": {
            "tasks": list(tasks),
            "gsd": gsd,
            "density": density,
            "cloud_cover": cloud_cover,
            "max_expressions": max_expressions,
            "compress_level": compress_level,
        },
        "files": files,
        "messages_by_task": dict(sorted(by_task.items())),
        "vqa_by_type": dict(sorted(by_vqa.items())),
        "objects": sum(by_category.values()),
        "objects_by_category": dict(sorted(by_category.items(), key=lambda t: CATEGORIES.index(t[0]))),
        "dota_images": "images",
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def write_pairs(
    out_dir: str | Path,
    num_pairs: int = 16,
    seed: int = 0,
    size: int = 256,
    *,
    cloud_cover: tuple[float, float] = (0.0, 0.2),
    days: int | None = None,
    change_rate: float = 1.0,
    compress_level: int = 1,
    progress: Progress = None,
) -> dict[str, Any]:
    """Write bi-temporal pairs for change detection.

    Layout: ``A/<id>.png`` (t0), ``B/<id>.png`` (t1), ``label/<id>.png`` (change mask, 0/255), ``pairs.jsonl``
    (``{"id", "image_a", "image_b", "label", "t0": scene, "t1": scene}``), ``changes.jsonl`` (``{"id",
    "changes": [Change...]}``, one line per pair) and ``manifest.json`` (counts per change kind).
    """
    _check_common(num_pairs, seed, size, "num_pairs")
    out = Path(out_dir)
    pairs, change_rows = [], []
    kinds: Counter[str] = Counter()
    for i in range(num_pairs):
        pair_seed = mix(seed, "dataset-pair", i) & 0x7FFFFFFF
        t0, t1, changes = generate_pair(
            pair_seed, size, cloud_cover=cloud_cover, days=days, change_rate=change_rate
        )
        pid = f"{i:06d}"
        names = {"image_a": f"A/{pid}.png", "image_b": f"B/{pid}.png", "label": f"label/{pid}.png"}
        atomic_write_bytes(out / names["image_a"], png_bytes(render(t0), compress_level))
        atomic_write_bytes(out / names["image_b"], png_bytes(render(t1), compress_level))
        mask = change_mask(t0, t1, changes).astype(np.uint8) * 255
        buf = io.BytesIO()
        Image.fromarray(mask, "L").save(buf, format="PNG", compress_level=compress_level)
        atomic_write_bytes(out / names["label"], buf.getvalue())
        pairs.append({"id": pid, **names, "t0": t0.to_dict(), "t1": t1.to_dict()})
        change_rows.append({"id": pid, "changes": [c.to_dict() for c in changes]})
        kinds.update(c.kind for c in changes)
        if progress is not None:
            progress(1)
    write_jsonl(out / "pairs.jsonl", pairs)
    write_jsonl(out / "changes.jsonl", change_rows)
    manifest = {
        "generator": GENERATOR_VERSION,
        "kind": "pairs",
        "seed": seed,
        "size": size,
        "num_pairs": num_pairs,
        "arguments": {
            "cloud_cover": list(cloud_cover),
            "days": days,
            "change_rate": change_rate,
            "compress_level": compress_level,
        },
        "files": {
            "A": num_pairs,
            "B": num_pairs,
            "label": num_pairs,
            "pairs.jsonl": len(pairs),
            "changes.jsonl": len(change_rows),
        },
        "changes_by_kind": dict(sorted(kinds.items())),
        "changes": sum(kinds.values()),
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def write_large(
    out_dir: str | Path,
    seed: int = 0,
    width: int = 4096,
    height: int = 4096,
    *,
    density: float = 1.0,
    gsd: float | None = None,
    geotiff: bool = False,
    png: bool = True,
    compress_level: int = 1,
    progress: Progress = None,
) -> dict[str, Any]:
    """Write one large scene: ``large.png`` and/or ``large.tif`` (GeoTIFF, UTM CRS, streamed chunk by chunk),
    ``scene.json``, ``coco.json``, ``dota/labelTxt/large.txt`` and ``manifest.json``."""
    from rszoo.data.synth.large import generate_large_scene, geo_reference, write_geotiff
    from rszoo.data.synth.render import iter_chunks

    if width < 16 or height < 16:
        raise ValueError(f"width and height must be >= 16 px, got {width}x{height}")
    if not (png or geotiff):
        raise ValueError("nothing to write: pass png=True and/or geotiff=True")
    out = Path(out_dir)
    scene = generate_large_scene(seed, width, height, density=density, gsd=gsd)
    files: dict[str, Any] = {}
    if png:
        image = np.empty((height, width, 3), dtype=np.uint8)
        for x, y, tile in iter_chunks(scene):
            image[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
            if progress is not None:
                progress(1)
        atomic_write_bytes(out / "large.png", png_bytes(image, compress_level))
        del image
        files["large.png"] = 1
    if geotiff:
        write_geotiff(scene, out / "large.tif")
        files["large.tif"] = 1
    atomic_write_text(out / "scene.json", json.dumps(scene.to_dict(), separators=(",", ":")) + "\n")
    coco = coco_document(
        [scene], ["large.png" if png else "large.tif"], f"rszoo synthetic large scene, seed {seed}"
    )
    atomic_write_text(out / "coco.json", json.dumps(coco, separators=(",", ":")) + "\n")
    lines = dota_lines(scene)
    atomic_write_text(out / "dota" / "labelTxt" / "large.txt", "".join(line + "\n" for line in lines))
    files.update({"scene.json": 1, "coco.json": {"images": 1, "annotations": len(coco["annotations"])}})
    files["dota_objects"] = len(lines)
    manifest: dict[str, Any] = {
        "generator": GENERATOR_VERSION,
        "kind": "large",
        "seed": seed,
        "width": width,
        "height": height,
        "gsd": scene.gsd,
        "arguments": {
            "density": density,
            "gsd": gsd,
            "geotiff": geotiff,
            "png": png,
            "compress_level": compress_level,
        },
        "files": files,
        "objects": len(scene.objects),
        "objects_by_category": dict(
            sorted(Counter(o.category for o in scene.objects).items(), key=lambda t: CATEGORIES.index(t[0]))
        ),
    }
    if geotiff:
        crs, transform = geo_reference(scene)
        manifest["crs"] = crs
        manifest["transform"] = list(transform)[:6]
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest
