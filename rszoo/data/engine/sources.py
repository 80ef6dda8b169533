"""Loaders of public remote-sensing formats into the data engine's unified records (one job: reading sources).

Records are plain dataclasses, one kind per task family; every path in them is absolute and every size is
``(width, height)`` in original pixels:

* :class:`DetectionRecord` -- an image, its size, its category list and :class:`DetObject` s (label, quad in
  original pixels, horizontal box, difficult flag). Images without objects are kept (they train "There are none.").
* :class:`ReferringRecord` -- an image, a referring expression and one box in a declared ``box_type``:
  ``"hbb"`` ``[x1, y1, x2, y2]``, ``"obb"`` ``[cx, cy, w, h, angle_deg]`` or ``"quad"`` (8 numbers).
* :class:`QARecord` -- classification, VQA or captioning: image(s), a question (empty when the prompt pool supplies
  it), one or more reference answers, the answer options (class names, choices) and a question type.
* :class:`ZoomRecord` -- LRS-VQA-Zoom (Zoom-in Chain): an ultra-high-resolution image, a question, an answer and the
  native-pixel crop boxes of the regions of interest.
* :class:`ConversationRecord` -- OpenAI-style ``messages`` (text and image parts), used as they are.

Formats (``source.format`` in a data recipe; :data:`FORMATS` lists their keys):

==================  ===========================================================================================
``dota``            DOTA v1.0 ``labelTxt/*.txt``: ``x1 y1 x2 y2 x3 y3 x4 y4 class difficult`` lines, optional
                    header lines ``imagesource:...`` and ``gsd:...``; images looked up by stem in ``images``.
``coco``            COCO detection JSON (``bbox`` xywh, ``segmentation`` polygons); quads from the polygon.
``refgeo``          refGeo grounding JSON/JSONL (``image_id``, ``dataset``, ``question``, ``bbox``, ``poly``,
                    ``image_width``/``image_height``; RSCoVLM's GeoGround loader), HBB/OBB/quad boxes.
``grounding_jsonl`` rszoo's own grounding JSONL (:mod:`rszoo.data.records`; the synthetic world writes it).
``lrsvqa``          LRS-VQA JSONL (``question_id`` prefixed FAIR/STAR/GLH, ``image``, ``text``, ``ground_truth``,
                    ``category``).
``zoom``            LRS-VQA-Zoom annotations (``image``, ``question``/``answer`` or the MCQ fields ``Text`` /
                    ``Ground truth`` / ``Answer choices``, ``bbox_info.crop_hbox``, ``image_ori_width/height``).
``rsvqa``           RSVQA (LR/HR) official JSON: ``{"questions": [...]}``, ``{"answers": [...]}``,
                    ``{"images": [...]}`` with ``active`` flags and question ``type``; images ``<id>.tif``.
``vrsbench_vqa``    VRSBench VQA JSON list (``image_id``, ``question``, ``ground_truth``, ``question_id``, ``type``).
``llava``           LLaVA-style conversation files (``{"image", "conversations": [{"from": "human"|"gpt",
                    "value"}]}``; ``<image>`` placeholders), as RSCoVLM's ``supervised`` data (VHM, GeoChat ...).
``messages``        rszoo's messages JSONL (the synthetic world's ``messages.jsonl``), optionally filtered by task.
``image_folder``    classification folders ``<root>/<class name>/<image>`` (UC Merced, AID, NWPU-RESISC45).
``synth_scenes``    the synthetic world's ``scenes.jsonl``: scene classification by dominant land cover.
==================  ===========================================================================================

``llava`` and ``messages`` rows feed ``vqa`` / ``caption`` / ``classification`` subsets too when each row is one
question and one answer (user turn with image(s) and text, assistant turn).

Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "labelTxt").mkdir(); (root / "images").mkdir()
    >>> Image.new("RGB", (40, 30)).save(root / "images" / "P1.png")
    >>> _ = (root / "labelTxt" / "P1.txt").write_text("gsd:0.5\\n1 2 11 2 11 8 1 8 ship 0\\n")
    >>> records, stats = load_dota(root / "labelTxt", root / "images")
    >>> records[0].size, records[0].objects[0].label, records[0].objects[0].hbox, records[0].meta["gsd"]
    ((40, 30), 'ship', [1.0, 2.0, 11.0, 8.0], 0.5)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rszoo.data.detection_format import DOTA_V1_CATEGORIES
from rszoo.data.records import check_messages, iter_jsonl

__all__ = [
    "DOTA_V1_CATEGORIES",
    "FORMATS",
    "ConversationRecord",
    "DetObject",
    "DetectionRecord",
    "LoadStats",
    "QARecord",
    "Record",
    "ReferringRecord",
    "SourceFormat",
    "ZoomRecord",
    "llava_to_messages",
    "load_coco",
    "load_dota",
    "load_grounding_jsonl",
    "load_image_folder",
    "load_llava",
    "load_lrsvqa",
    "load_messages",
    "load_refgeo",
    "load_rsvqa",
    "load_source",
    "load_synth_scenes",
    "load_vrsbench_vqa",
    "load_zoom",
    "record_from_dict",
    "record_to_dict",
]

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
BOX_TYPES = ("hbb", "obb", "quad")
_BOX_LEN = {"hbb": 4, "obb": 5, "quad": 8}


# --------------------------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------------------------
@dataclass
class DetObject:
    """One object: category name, quad ``[x1, y1, ..., x4, y4]`` and horizontal box ``[x1, y1, x2, y2]``."""

    label: str
    quad: list[float]
    hbox: list[float]
    difficult: int = 0


@dataclass
class DetectionRecord:
    """An image with all its objects (possibly none) and the dataset's category list."""

    id: str
    image: str
    size: tuple[int, int]
    objects: list[DetObject]
    categories: list[str]
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str = "detection"


@dataclass
class ReferringRecord:
    """A referring expression and its box in ``box_type`` (``hbb``, ``obb`` in degrees, or ``quad``).

    ``quad`` (ordered) and ``hbox`` are the unified forms of ``box``, filled by offline processing.
    """

    id: str
    image: str
    size: tuple[int, int]
    expression: str
    box: list[float]
    box_type: str = "hbb"
    category: str = ""
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    quad: list[float] | None = None
    hbox: list[float] | None = None
    kind: str = "grounding"


@dataclass
class QARecord:
    """Classification / VQA / caption: ``question`` may be empty (the prompt pool then asks)."""

    id: str
    images: list[str]
    question: str
    answers: list[str]
    qtype: str = ""
    options: list[str] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str = "qa"


@dataclass
class ZoomRecord:
    """A Zoom-in Chain sample: the chain is built when there is exactly one crop box.

    ``choices`` (MCQ records) are turned into RSCoVLM's multiple-choice prompt online.
    """

    id: str
    image: str
    size: tuple[int, int]
    question: str
    answer: str
    crop_boxes: list[list[float]]
    choices: list[str] = field(default_factory=list)
    qtype: str = ""
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str = "zoom"


@dataclass
class ConversationRecord:
    """OpenAI-style messages; ``sizes`` lists the ``(width, height)`` of the image parts in order."""

    id: str
    messages: list[dict[str, Any]]
    sizes: list[tuple[int, int]] = field(default_factory=list)
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str = "conversation"


Record = DetectionRecord | ReferringRecord | QARecord | ZoomRecord | ConversationRecord
_KINDS: dict[str, type] = {
    "detection": DetectionRecord,
    "grounding": ReferringRecord,
    "qa": QARecord,
    "zoom": ZoomRecord,
    "conversation": ConversationRecord,
}


def record_to_dict(record: Record) -> dict[str, Any]:
    """A JSON-ready dict of a record (``kind`` says which dataclass)."""
    return asdict(record)


def record_from_dict(obj: dict[str, Any], where: str = "record") -> Record:
    """Inverse of :func:`record_to_dict`; ``where`` names the origin in errors.

    Example:
        >>> r = QARecord("q1", ["/a.png"], "Is it urban?", ["yes"], sizes=[(10, 10)])
        >>> record_from_dict(record_to_dict(r)) == r
        True
    """
    kind = obj.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"{where}: unknown record kind {kind!r}; expected one of {sorted(_KINDS)}")
    values = dict(obj)
    if kind == "detection":
        values["objects"] = [DetObject(**o) for o in values.get("objects", [])]
    for key in ("size",):
        if key in values:
            values[key] = tuple(values[key])
    if "sizes" in values:
        values["sizes"] = [tuple(s) for s in values["sizes"]]
    try:
        return _KINDS[kind](**values)
    except TypeError as exc:
        raise ValueError(f"{where}: {exc}") from None


@dataclass
class LoadStats:
    """What a loader read and skipped (skips never happen silently)."""

    source: str
    loaded: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n


# --------------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------------
def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{what}: file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def _json_or_jsonl_rows(path: Path, what: str) -> Iterable[tuple[str, dict[str, Any]]]:
    """``(where, object)`` of a JSON list file or a JSONL file (decided by the first non-blank character)."""
    if not path.is_file():
        raise FileNotFoundError(f"{what}: file not found: {path}")
    with path.open("r", encoding="utf-8") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith("["):
        items = _read_json(path, what)
        for k, item in enumerate(items):
            if not isinstance(item, dict):
                raise ValueError(f"{path} item {k}: expected a JSON object, got {type(item).__name__}")
            yield f"{path} item {k}", item
    else:
        for lineno, obj in iter_jsonl(path):
            yield f"{path}:{lineno}", obj


def _require(obj: dict[str, Any], keys: Sequence[str], where: str, what: str) -> None:
    missing = [k for k in keys if k not in obj]
    if missing:
        raise ValueError(f"{where}: {what} misses {missing}; required: {list(keys)}")


def _numbers(values: Any, n: int, where: str, what: str) -> list[float]:
    if not isinstance(values, list | tuple):
        raise ValueError(f"{where}: {what} must be a list of {n} numbers, got {values!r}")
    flat = [v for p in values for v in p] if values and isinstance(values[0], list | tuple) else list(values)
    if len(flat) != n or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in flat):
        raise ValueError(f"{where}: {what} must be {n} numbers, got {values!r}")
    if not all(math.isfinite(v) for v in flat):
        raise ValueError(f"{where}: {what} has non-finite values: {values!r}")
    return [float(v) for v in flat]


def _hbox(quad: Sequence[float]) -> list[float]:
    xs, ys = quad[0::2], quad[1::2]
    return [float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys))]


def _size(path: Path) -> tuple[int, int]:
    from rszoo.data.images import raster_size

    return raster_size(path)


def _check_image(path: Path, where: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{where}: image not found: {path} (check the source's image folder)")


# --------------------------------------------------------------------------------------------------------------
# detection
# --------------------------------------------------------------------------------------------------------------
def _find_image(images: Path, stem: str, exts: Sequence[str]) -> Path | None:
    for ext in exts:
        candidate = images / f"{stem}{ext}"
        if candidate.is_file():
            return candidate
    return None


def load_dota(
    labels: str | Path,
    images: str | Path,
    *,
    categories: str | Sequence[str] = "auto",
    image_exts: Sequence[str] = IMAGE_EXTS,
) -> tuple[list[DetectionRecord], LoadStats]:
    """Load DOTA-format labels (``labelTxt``) with their images.

    Each ``<stem>.txt`` holds optional header lines ``imagesource:<text>`` and ``gsd:<metres or null>`` (DOTA v1.0
    train/val files start with them; split patches and the synthetic world do not), then one object per line:
    ``x1 y1 x2 y2 x3 y3 x4 y4 class difficult`` (``difficult`` optional, default 0). The image is
    ``images/<stem><ext>`` for the first ``ext`` of ``image_exts`` that exists; its size comes from the file header.

    Args:
        labels: the ``labelTxt`` folder.
        images: the image folder.
        categories: ``"auto"`` (the classes found, sorted), ``"dota_v1"`` (the 15 DOTA v1.0 classes; other labels
            are an error) or an explicit list (other labels are an error).
        image_exts: extensions tried, in order.

    Returns:
        ``(records, stats)`` sorted by file name; record ids are the stems.
    """
    labels, images = Path(labels), Path(images)
    if not labels.is_dir():
        raise FileNotFoundError(f"load_dota: label folder not found: {labels}")
    stats = LoadStats(f"dota/{labels.name}")
    records: list[DetectionRecord] = []
    seen: set[str] = set()
    for txt in sorted(labels.glob("*.txt")):
        image = _find_image(images, txt.stem, image_exts)
        if image is None:
            raise FileNotFoundError(
                f"{txt}: no image {txt.stem}{{{','.join(image_exts)}}} in {images} (check source.images)"
            )
        meta: dict[str, Any] = {}
        objects: list[DetObject] = []
        for lineno, line in enumerate(txt.read_text(encoding="utf-8").splitlines(), start=1):
            text = line.strip()
            if not text:
                continue
            if text.startswith("imagesource:"):
                meta["imagesource"] = text.split(":", 1)[1].strip()
                continue
            if text.startswith("gsd:"):
                value = text.split(":", 1)[1].strip()
                try:
                    meta["gsd"] = None if value.lower() in ("", "null", "none") else float(value)
                except ValueError:
                    raise ValueError(f"{txt}:{lineno}: gsd must be a number or null, got {value!r}") from None
                continue
            parts = text.split()
            if len(parts) < 9:
                raise ValueError(
                    f"{txt}:{lineno}: expected 'x1 y1 x2 y2 x3 y3 x4 y4 class [difficult]', got {text!r}"
                )
            try:
                quad = [float(v) for v in parts[:8]]
                difficult = int(parts[9]) if len(parts) > 9 else 0
            except ValueError:
                raise ValueError(
                    f"{txt}:{lineno}: coordinates must be numbers and difficult an integer, got {text!r}"
                ) from None
            objects.append(DetObject(parts[8], quad, _hbox(quad), difficult))
            seen.add(parts[8])
        records.append(
            DetectionRecord(
                txt.stem, str(image.resolve()), _size(image), objects, [], f"dota/{txt.stem}", meta
            )
        )
    if categories == "auto":
        names = sorted(seen)
    elif categories == "dota_v1":
        names = list(DOTA_V1_CATEGORIES)
    elif isinstance(categories, str):
        raise ValueError(f"load_dota: categories must be 'auto', 'dota_v1' or a list, got {categories!r}")
    else:
        names = [str(c) for c in categories]
    unknown = sorted(seen - set(names))
    if unknown:
        raise ValueError(f"{labels}: labels {unknown} are not in the category list {names}")
    for r in records:
        r.categories = list(names)
    stats.loaded = len(records)
    return records, stats


def _quad_from_polygon(poly: list[float]) -> list[float]:
    """A polygon's quad: itself if it has 4 vertices, else its minimum-area rectangle."""
    if len(poly) == 8:
        return list(poly)
    from rszoo.data.geometry import quad_to_rbox as min_area_rect
    from rszoo.data.geometry import rbox_to_quad

    return [float(v) for v in rbox_to_quad(min_area_rect(poly))]


def load_coco(
    annotations: str | Path, images: str | Path, *, quad_from: str = "segmentation"
) -> tuple[list[DetectionRecord], LoadStats]:
    """Load a COCO detection file (DOTA/DIOR converted to COCO, or the synthetic world's ``coco.json``).

    Quads (``quad_from``): ``"segmentation"`` -- the first polygon of ``segmentation`` (8 numbers as is, more
    vertices through their minimum-area rectangle; RLE masks fall back to the box), ``"obb"`` -- an 8-number
    ``obb`` field (the synthetic world writes one), ``"bbox"`` -- the axis-aligned box. Objects flagged ``iscrowd``
    or ``ignore`` get ``difficult=1``. Every image of ``images`` is kept, with or without annotations; categories
    are the file's ``categories`` names in file order.
    """
    annotations, images = Path(annotations), Path(images)
    if quad_from not in ("segmentation", "obb", "bbox"):
        raise ValueError(f"load_coco: quad_from must be 'segmentation', 'obb' or 'bbox', got {quad_from!r}")
    doc = _read_json(annotations, "load_coco")
    for key in ("images", "annotations", "categories"):
        if key not in doc:
            raise ValueError(f"{annotations}: COCO file misses {key!r}")
    cats = {c["id"]: c["name"] for c in doc["categories"]}
    names = [c["name"] for c in doc["categories"]]
    stats = LoadStats(f"coco/{annotations.stem}")
    by_image: dict[Any, list[DetObject]] = {img["id"]: [] for img in doc["images"]}
    for k, ann in enumerate(doc["annotations"]):
        where = f"{annotations} annotation {k} (id {ann.get('id')})"
        _require(ann, ("image_id", "category_id", "bbox"), where, "annotation")
        if ann["image_id"] not in by_image:
            raise ValueError(f"{where}: image_id {ann['image_id']!r} is not in 'images'")
        if ann["category_id"] not in cats:
            raise ValueError(f"{where}: category_id {ann['category_id']!r} is not in 'categories'")
        x, y, w, h = _numbers(ann["bbox"], 4, where, "bbox")
        box_quad = [x, y, x + w, y, x + w, y + h, x, y + h]
        seg = ann.get("segmentation")
        if quad_from == "obb":
            if "obb" not in ann:
                raise ValueError(f"{where}: quad_from='obb' but the annotation has no 'obb' field")
            quad = _numbers(ann["obb"], 8, where, "obb")
        elif quad_from == "segmentation" and isinstance(seg, list) and seg and isinstance(seg[0], list):
            poly = [float(v) for v in seg[0]]
            if len(poly) < 6 or len(poly) % 2:
                raise ValueError(f"{where}: segmentation[0] must have an even number (>= 6) of values")
            quad = _quad_from_polygon(poly)
        else:
            if quad_from == "segmentation":
                stats.skip("quad_from_bbox")  # RLE or missing polygon: counted, the box is used
            quad = box_quad
        difficult = int(bool(ann.get("iscrowd", 0)) or bool(ann.get("ignore", 0)))
        by_image[ann["image_id"]].append(DetObject(cats[ann["category_id"]], quad, _hbox(quad), difficult))
    records = []
    for img in doc["images"]:
        where = f"{annotations} image id {img.get('id')}"
        _require(img, ("id", "file_name"), where, "image entry")
        path = images / img["file_name"]
        _check_image(path, where)
        size = (int(img["width"]), int(img["height"])) if "width" in img and "height" in img else _size(path)
        records.append(
            DetectionRecord(
                str(img["id"]), str(path.resolve()), size, by_image[img["id"]], list(names), stats.source
            )
        )
    stats.loaded = len(records)
    return records, stats


# --------------------------------------------------------------------------------------------------------------
# grounding
# --------------------------------------------------------------------------------------------------------------
def load_refgeo(
    annotations: str | Path,
    images: str | Path,
    *,
    box_type: str = "hbb",
    image_pattern: str = "images/{dataset}/{image_id}",
) -> tuple[list[ReferringRecord], LoadStats]:
    """Load refGeo grounding records (the GeoGround / RSCoVLM ``refgeo`` schema), JSON list or JSONL.

    Fields: ``image_id`` (file name), ``dataset`` (sub-dataset folder), ``question`` (the expression),
    ``question_id``, ``bbox`` ``[x1, y1, x2, y2]``, ``poly`` (4 vertices ``[[x, y], ...]`` or 8 numbers),
    ``image_width``, ``image_height``. The image is ``images / image_pattern`` (RSCoVLM:
    ``<data_path>/images/<dataset>/<image_id>``).

    Args:
        box_type: which box the record carries: ``"hbb"`` (``bbox``), ``"quad"`` (``poly``) or ``"obb"`` (the
            minimum-area rectangle of ``poly``, degrees, long side first -- RSCoVLM's ``cv2.minAreaRect`` rule).
    """
    annotations, images = Path(annotations), Path(images)
    if box_type not in BOX_TYPES:
        raise ValueError(f"load_refgeo: box_type must be one of {list(BOX_TYPES)}, got {box_type!r}")
    stats = LoadStats(f"refgeo/{annotations.stem}")
    records = []
    for where, obj in _json_or_jsonl_rows(annotations, "load_refgeo"):
        need = ["image_id", "question", "bbox" if box_type == "hbb" else "poly"]
        _require(obj, need, where, "refGeo record")
        try:
            rel = image_pattern.format(**{k: obj.get(k, "") for k in ("dataset", "image_id", "question_id")})
        except KeyError as exc:
            raise ValueError(
                f"load_refgeo: image_pattern {image_pattern!r} uses an unknown field {exc}"
            ) from None
        path = images / rel
        _check_image(path, where)
        if "image_width" in obj and "image_height" in obj:
            size = (int(obj["image_width"]), int(obj["image_height"]))
        else:
            size = _size(path)
        if box_type == "hbb":
            box = _numbers(obj["bbox"], 4, where, "bbox")
        else:
            quad = _numbers(obj["poly"], 8, where, "poly")
            if box_type == "quad":
                box = quad
            else:
                from rszoo.data.geometry import quad_to_rbox

                box = [float(v) for v in quad_to_rbox(quad, degrees=True)]
        qid = obj.get("question_id", len(records))
        dataset = obj.get("dataset", "")
        records.append(
            ReferringRecord(
                f"{dataset}-{qid}" if dataset else str(qid),
                str(path.resolve()),
                size,
                str(obj["question"]).strip(),
                box,
                box_type,
                str(obj.get("category", obj.get("obj_cls", ""))),
                f"refgeo/{dataset}" if dataset else "refgeo",
            )
        )
    stats.loaded = len(records)
    return records, stats


def load_grounding_jsonl(annotations: str | Path) -> tuple[list[ReferringRecord], LoadStats]:
    """rszoo grounding JSONL (e.g. the synthetic world's ``grounding.jsonl``) as HBB referring records.

    Reuses :func:`rszoo.data.grounding.load_grounding_jsonl` (zero-area boxes are skipped there and counted here).
    """
    from rszoo.data.grounding import load_grounding_jsonl as load

    rows, report = load(annotations, resolve_images=True, check_images=True)
    stats = LoadStats(report.source, len(rows))
    if report.skipped_zero_area:
        stats.skip("zero_area", report.skipped_zero_area)
    records = [
        ReferringRecord(
            r.id, r.image, (r.width, r.height), r.expression, list(r.box), "hbb", r.category, r.source
        )
        for r in rows
    ]
    return records, stats


# --------------------------------------------------------------------------------------------------------------
# question answering
# --------------------------------------------------------------------------------------------------------------
def load_lrsvqa(annotations: str | Path, images: str | Path) -> tuple[list[QARecord], LoadStats]:
    """LRS-VQA JSONL (``LRS_VQA_merged.jsonl``): one question per line, ``qtype`` = ``category``.

    ``meta["source_dataset"]`` is the ``question_id`` prefix (``FAIR``, ``STAR``, ``GLH``), by which the benchmark
    groups its scores; other prefixes are kept and listed in the stats notes.
    """
    annotations, images = Path(annotations), Path(images)
    stats = LoadStats(f"lrsvqa/{annotations.stem}")
    records, other = [], set()
    for where, obj in _json_or_jsonl_rows(annotations, "load_lrsvqa"):
        _require(obj, ("question_id", "image", "text", "ground_truth"), where, "LRS-VQA record")
        qid = str(obj["question_id"])
        prefix = re.split(r"[_\-]", qid, maxsplit=1)[0]
        if prefix not in ("FAIR", "STAR", "GLH"):
            other.add(prefix)
        path = images / str(obj["image"])
        _check_image(path, where)
        records.append(
            QARecord(
                qid,
                [str(path.resolve())],
                str(obj["text"]),
                [str(obj["ground_truth"])],
                str(obj.get("category", "")),
                source=f"lrsvqa/{prefix}",
                meta={"source_dataset": prefix},
            )
        )
    if other:
        stats.notes.append(f"question_id prefixes other than FAIR/STAR/GLH: {sorted(other)}")
    stats.loaded = len(records)
    return records, stats


_MCQ_SUFFIX = "Answer the question using a single word or phrase."


def _zoom_question(obj: dict[str, Any], where: str) -> tuple[str, str, list[str]]:
    if "question" in obj and "answer" in obj:
        return str(obj["question"]), str(obj["answer"]), []
    if all(k in obj for k in ("Text", "Ground truth", "Answer choices")):
        text = str(obj["Text"]).rstrip("\n")
        # RSCoVLM strips with str.rstrip(<that suffix>), a character-set strip that also eats the question's own
        # trailing letters ("... are there" -> "... a"); we remove the exact suffix instead.
        if text.endswith(_MCQ_SUFFIX):
            text = text[: -len(_MCQ_SUFFIX)].rstrip()
        choices = obj["Answer choices"]
        if not isinstance(choices, list) or not choices:
            raise ValueError(f"{where}: 'Answer choices' must be a non-empty list of strings")
        return text, str(obj["Ground truth"]), [str(c) for c in choices]
    raise ValueError(
        f"{where}: a zoom record needs 'question' and 'answer', or 'Text', 'Ground truth' and 'Answer choices'"
    )


def load_zoom(annotations: str | Path, images: str | Path) -> tuple[list[ZoomRecord], LoadStats]:
    """LRS-VQA-Zoom / Zoom-in Chain annotations (RSCoVLM ``visual_cot``), JSON list or JSONL.

    Fields: ``image`` (relative to ``images``), ``question``/``answer`` or the MCQ fields (``Text``, ``Ground
    truth``, ``Answer choices``: the choices become RSCoVLM's MCQ prompt online), ``bbox_info.crop_hbox`` (a list of
    ``[x1, y1, x2, y2]`` in native pixels), ``image_ori_width``/``image_ori_height`` (read from the file header when
    absent), optional ``category``/``question_id``.
    """
    annotations, images = Path(annotations), Path(images)
    stats = LoadStats(f"zoom/{annotations.stem}")
    records = []
    for where, obj in _json_or_jsonl_rows(annotations, "load_zoom"):
        _require(obj, ("image", "bbox_info"), where, "zoom record")
        question, answer, choices = _zoom_question(obj, where)
        info = obj["bbox_info"]
        if not isinstance(info, dict) or "crop_hbox" not in info:
            raise ValueError(
                f"{where}: bbox_info must be an object with 'crop_hbox' (a list of [x1, y1, x2, y2])"
            )
        crops = [_numbers(b, 4, where, "bbox_info.crop_hbox entry") for b in info["crop_hbox"]]
        path = images / str(obj["image"])
        _check_image(path, where)
        if "image_ori_width" in obj and "image_ori_height" in obj:
            size = (int(obj["image_ori_width"]), int(obj["image_ori_height"]))
        else:
            size = _size(path)
        rid = str(obj.get("question_id", obj.get("id", len(records))))
        records.append(
            ZoomRecord(
                rid,
                str(path.resolve()),
                size,
                question,
                answer,
                crops,
                choices,
                str(obj.get("category", "")),
                "zoom",
            )
        )
    stats.loaded = len(records)
    return records, stats


def load_rsvqa(
    questions: str | Path,
    answers: str | Path,
    image_records: str | Path,
    images: str | Path,
    *,
    image_ext: str = ".tif",
    types: Sequence[str] | None = None,
) -> tuple[list[QARecord], LoadStats]:
    """RSVQA (LR or HR) in its official JSON files, e.g. ``LR_split_train_{questions,answers,images}.json``.

    ``questions``: ``{"questions": [{"id", "img_id", "type", "question", "answers_ids", "active"}]}``;
    ``answers``: ``{"answers": [{"id", "question_id", "answer", "active"}]}``; ``image_records``:
    ``{"images": [{"id", "questions_ids", "active"}]}``. Inactive questions, answers and images are skipped (and
    counted); the image is ``images/<img_id><image_ext>``. ``types`` keeps only those question types (``presence``,
    ``comp``, ``count``, ``rural_urban``, ``area``).
    """
    questions, answers, image_records, images = (
        Path(questions),
        Path(answers),
        Path(image_records),
        Path(images),
    )
    qdoc = _read_json(questions, "load_rsvqa questions")
    adoc = _read_json(answers, "load_rsvqa answers")
    idoc = _read_json(image_records, "load_rsvqa images")
    for doc, key, path in (
        (qdoc, "questions", questions),
        (adoc, "answers", answers),
        (idoc, "images", image_records),
    ):
        if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
            raise ValueError(f"{path}: expected {{'{key}': [...]}} (the official RSVQA layout)")
    answer_by_id = {a["id"]: a for a in adoc["answers"]}
    active_images = {i["id"] for i in idoc["images"] if i.get("active", True)}
    stats = LoadStats(f"rsvqa/{questions.stem}")
    records = []
    wanted = set(types) if types is not None else None
    for k, q in enumerate(qdoc["questions"]):
        where = f"{questions} question {k} (id {q.get('id')})"
        _require(q, ("id", "img_id", "type", "question", "answers_ids"), where, "RSVQA question")
        if not q.get("active", True):
            stats.skip("inactive_question")
            continue
        if q["img_id"] not in active_images:
            stats.skip("inactive_image")
            continue
        if wanted is not None and q["type"] not in wanted:
            stats.skip("type_filtered")
            continue
        texts = []
        for aid in q["answers_ids"]:
            if aid not in answer_by_id:
                raise ValueError(f"{where}: answer id {aid!r} is not in {answers}")
            if answer_by_id[aid].get("active", True):
                texts.append(str(answer_by_id[aid]["answer"]))
        if not texts:
            stats.skip("no_active_answer")
            continue
        path = images / f"{q['img_id']}{image_ext}"
        _check_image(path, where)
        records.append(
            QARecord(
                str(q["id"]), [str(path.resolve())], str(q["question"]), texts, str(q["type"]), source="rsvqa"
            )
        )
    stats.loaded = len(records)
    return records, stats


def load_vrsbench_vqa(annotations: str | Path, images: str | Path) -> tuple[list[QARecord], LoadStats]:
    """VRSBench VQA JSON (``VRSBench_EVAL_vqa.json``): ``image_id``, ``question``, ``ground_truth``, ``question_id``,
    ``type``."""
    annotations, images = Path(annotations), Path(images)
    stats = LoadStats(f"vrsbench_vqa/{annotations.stem}")
    records = []
    for where, obj in _json_or_jsonl_rows(annotations, "load_vrsbench_vqa"):
        _require(obj, ("image_id", "question", "ground_truth"), where, "VRSBench VQA record")
        path = images / str(obj["image_id"])
        _check_image(path, where)
        records.append(
            QARecord(
                str(obj.get("question_id", len(records))),
                [str(path.resolve())],
                str(obj["question"]),
                [str(obj["ground_truth"])],
                str(obj.get("type", "")),
                source="vrsbench",
            )
        )
    stats.loaded = len(records)
    return records, stats


# --------------------------------------------------------------------------------------------------------------
# conversations
# --------------------------------------------------------------------------------------------------------------
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


def llava_to_messages(obj: dict[str, Any], images: Path, where: str) -> list[dict[str, Any]]:
    """One LLaVA-style record -> OpenAI messages with absolute image paths.

    ``<image>`` placeholders become image parts in order (the newline next to a placeholder is dropped); without
    placeholders, all images go first in the first user turn (LLaVA's convention).
    """
    if "conversations" not in obj or not isinstance(obj["conversations"], list) or not obj["conversations"]:
        raise ValueError(f"{where}: a LLaVA record needs a non-empty 'conversations' list")
    raw = obj.get("image", obj.get("images"))
    names = [] if raw is None else ([raw] if isinstance(raw, str) else list(raw))
    paths = []
    for name in names:
        path = images / str(name)
        _check_image(path, where)
        paths.append(str(path.resolve()))
    n_holders = sum(str(t.get("value", "")).count("<image>") for t in obj["conversations"])
    if n_holders and n_holders != len(paths):
        raise ValueError(f"{where}: {n_holders} <image> placeholders but {len(paths)} image(s)")
    messages: list[dict[str, Any]] = []
    queue = list(paths)
    for t, turn in enumerate(obj["conversations"]):
        role = _ROLES.get(str(turn.get("from", "")))
        if role is None or "value" not in turn:
            raise ValueError(
                f"{where}: conversations[{t}] needs 'from' (human/gpt/system) and 'value', got {turn!r:.80}"
            )
        value = str(turn["value"])
        if role != "user":
            if "<image>" in value:
                raise ValueError(f"{where}: conversations[{t}] ({turn['from']}) contains <image>")
            messages.append({"role": role, "content": value})
            continue
        parts: list[dict[str, Any]] = []
        if n_holders:
            pieces = value.split("<image>")
            for k, piece in enumerate(pieces):
                if k:
                    parts.append({"type": "image", "image": queue.pop(0)})
                text = piece.strip("\n") if len(pieces) > 1 else piece
                if text.strip():
                    parts.append({"type": "text", "text": text})
        else:
            if not any(m["role"] == "user" for m in messages):
                parts.extend({"type": "image", "image": p} for p in queue)
                queue = []
            parts.append({"type": "text", "text": value})
        messages.append({"role": "user", "content": parts})
    if messages[-1]["role"] != "assistant":
        raise ValueError(f"{where}: the last turn must be the assistant's ('gpt') answer")
    return messages


def load_llava(annotations: str | Path, images: str | Path) -> tuple[list[ConversationRecord], LoadStats]:
    """LLaVA-style conversation JSON list or JSONL (RSCoVLM's ``supervised`` data: VHM, GeoChat, ...)."""
    annotations, images = Path(annotations), Path(images)
    stats = LoadStats(f"llava/{annotations.stem}")
    records = []
    for where, obj in _json_or_jsonl_rows(annotations, "load_llava"):
        records.append(
            ConversationRecord(
                str(obj.get("id", len(records))), llava_to_messages(obj, images, where), source="llava"
            )
        )
    stats.loaded = len(records)
    return records, stats


def load_messages(
    annotations: str | Path, *, tasks: Sequence[str] | None = None
) -> tuple[list[ConversationRecord], LoadStats]:
    """rszoo's messages JSONL (:mod:`rszoo.data.records`), keeping rows whose ``task`` is in ``tasks`` (all if
    None). Images are resolved against the file's folder and must exist; the last message must be the assistant's.
    """
    annotations = Path(annotations)
    stats = LoadStats(f"messages/{annotations.stem}")
    keep = set(tasks) if tasks is not None else None
    records = []
    for lineno, obj in iter_jsonl(annotations):
        where = f"{annotations}:{lineno}"
        task = str(obj.get("task", ""))
        if keep is not None and task not in keep:
            stats.skip("task_filtered")
            continue
        if "messages" not in obj:
            raise ValueError(f"{where}: missing 'messages' (the format is documented in rszoo.data.records)")
        messages = check_messages(obj["messages"], annotations.parent, where)
        records.append(
            ConversationRecord(
                str(obj.get("id", f"{annotations.stem}-{lineno}")),
                messages,
                source="messages",
                meta={"task": task},
            )
        )
    stats.loaded = len(records)
    return records, stats


def _single_turn(record: ConversationRecord) -> tuple[list[str], str, str, str] | None:
    """``(images, question, answer, system)`` of a one-question conversation, else None."""
    msgs = record.messages
    system = ""
    if msgs and msgs[0]["role"] == "system":
        system, msgs = str(msgs[0]["content"]), msgs[1:]
    if len(msgs) != 2 or msgs[0]["role"] != "user" or msgs[1]["role"] != "assistant":
        return None
    content = msgs[0]["content"]
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
    images = [p["image"] for p in parts if p["type"] == "image"]
    question = "\n".join(p["text"] for p in parts if p["type"] == "text")
    answer = msgs[1]["content"]
    if not isinstance(answer, str):
        answer = "".join(p.get("text", "") for p in answer if p.get("type") == "text")
    return images, question, answer, system


def conversations_to_qa(
    records: Sequence[ConversationRecord], where: str, stats: LoadStats
) -> list[QARecord]:
    """Single-turn conversations as QA records (for vqa / caption / classification subsets)."""
    out = []
    for r in records:
        turn = _single_turn(r)
        if turn is None:
            raise ValueError(
                f"{where}: row {r.id!r} is not one question and one answer (user, assistant); only single-turn rows "
                "can feed a vqa/caption/classification subset -- use task: conversation for multi-turn data"
            )
        images, question, answer, system = turn
        meta = dict(r.meta)
        if system:
            meta["system"] = system
        out.append(
            QARecord(
                r.id, images, question, [answer], str(r.meta.get("task", "")), source=r.source, meta=meta
            )
        )
    stats.loaded = len(out)
    return out


# --------------------------------------------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------------------------------------------
def load_image_folder(
    images: str | Path, *, image_exts: Sequence[str] = IMAGE_EXTS
) -> tuple[list[QARecord], LoadStats]:
    """Scene classification from ``<images>/<class>/<file>`` (class names: folder names, ``_`` -> space)."""
    images = Path(images)
    if not images.is_dir():
        raise FileNotFoundError(f"load_image_folder: folder not found: {images}")
    classes = sorted(p.name for p in images.iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"{images}: no class sub-folders (expected <root>/<class>/<image>)")
    names = [c.replace("_", " ") for c in classes]
    exts = {e.lower() for e in image_exts}
    stats = LoadStats(f"image_folder/{images.name}")
    records = []
    for folder, name in zip(classes, names):
        for path in sorted((images / folder).iterdir()):
            if path.suffix.lower() not in exts:
                continue
            records.append(
                QARecord(
                    f"{folder}/{path.stem}",
                    [str(path.resolve())],
                    "",
                    [name],
                    "scene",
                    list(names),
                    source=stats.source,
                )
            )
    stats.loaded = len(records)
    return records, stats


def load_synth_scenes(annotations: str | Path) -> tuple[list[QARecord], LoadStats]:
    """Scene classification from the synthetic world's ``scenes.jsonl``: the class is the land-cover kind covering
    the largest area among the scene's blocks (top-level regions), written with spaces (``bare soil``); the options
    are the classes found in the file. Images are ``images/<id>.png`` next to the file."""
    from rszoo.data.synth.geometry import poly_area

    annotations = Path(annotations)
    stats = LoadStats(f"synth_scenes/{annotations.stem}")
    rows = []
    for lineno, scene in iter_jsonl(annotations):
        where = f"{annotations}:{lineno}"
        _require(scene, ("id", "width", "height", "regions"), where, "scene")
        area: dict[str, float] = {}
        for region in scene["regions"]:
            if region.get("parent") is None:
                area[region["kind"]] = area.get(region["kind"], 0.0) + poly_area(region["polygon"])
        if not area:
            stats.skip("no_regions")
            continue
        kind = max(sorted(area), key=lambda k: area[k])
        path = annotations.parent / "images" / f"{scene['id']}.png"
        _check_image(path, where)
        rows.append((scene, kind.replace("-", " "), path))
    names = sorted({name for _, name, _ in rows})
    records = [
        QARecord(
            f"synth-{scene['id']}",
            [str(path.resolve())],
            "",
            [name],
            "landcover",
            list(names),
            [(int(scene["width"]), int(scene["height"]))],
            "synth",
        )
        for scene, name, path in rows
    ]
    stats.loaded = len(records)
    return records, stats


# --------------------------------------------------------------------------------------------------------------
# the format table used by data recipes
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceFormat:
    """A source format: the tasks it feeds, its path keys (checked to exist) and its other options.

    Attributes:
        name: the ``source.format`` value.
        tasks: subset tasks it can feed.
        files / dirs: required path keys naming a file / a folder.
        options: optional keys and their defaults (``optional_dirs`` are optional folder keys).
        loader: ``(options, task) -> (records, stats)``.
    """

    name: str
    tasks: tuple[str, ...]
    files: tuple[str, ...]
    dirs: tuple[str, ...]
    options: dict[str, Any]
    loader: Callable[[dict[str, Any], str], tuple[list[Any], LoadStats]]
    description: str = ""

    @property
    def keys(self) -> set[str]:
        return {"format", *self.files, *self.dirs, *self.options}


def _conv_or_qa(
    records: list[ConversationRecord], stats: LoadStats, task: str, where: str
) -> tuple[list, LoadStats]:
    if task == "conversation":
        return records, stats
    return conversations_to_qa(records, where, stats), stats


def _load_llava_for(o: dict[str, Any], task: str) -> tuple[list[Any], LoadStats]:
    records, stats = load_llava(o["annotations"], o["images"])
    return _conv_or_qa(records, stats, task, str(o["annotations"]))


def _load_messages_for(o: dict[str, Any], task: str) -> tuple[list[Any], LoadStats]:
    records, stats = load_messages(o["annotations"], tasks=o.get("tasks"))
    return _conv_or_qa(records, stats, task, str(o["annotations"]))


_QA_TASKS = ("vqa", "caption", "classification")
FORMATS: dict[str, SourceFormat] = {
    f.name: f
    for f in (
        SourceFormat(
            "dota",
            ("detection",),
            (),
            ("labels", "images"),
            {"categories": "auto", "image_exts": list(IMAGE_EXTS)},
            lambda o, t: load_dota(
                o["labels"], o["images"], categories=o["categories"], image_exts=o["image_exts"]
            ),
            "DOTA labelTxt folder + image folder",
        ),
        SourceFormat(
            "coco",
            ("detection",),
            ("annotations",),
            ("images",),
            {"quad_from": "segmentation"},
            lambda o, t: load_coco(o["annotations"], o["images"], quad_from=o["quad_from"]),
            "COCO detection JSON + image folder",
        ),
        SourceFormat(
            "refgeo",
            ("grounding",),
            ("annotations",),
            ("images",),
            {"box_type": "hbb", "image_pattern": "images/{dataset}/{image_id}"},
            lambda o, t: load_refgeo(
                o["annotations"], o["images"], box_type=o["box_type"], image_pattern=o["image_pattern"]
            ),
            "refGeo grounding JSON/JSONL + data root",
        ),
        SourceFormat(
            "grounding_jsonl",
            ("grounding",),
            ("annotations",),
            (),
            {},
            lambda o, t: load_grounding_jsonl(o["annotations"]),
            "rszoo grounding JSONL",
        ),
        SourceFormat(
            "lrsvqa",
            ("vqa",),
            ("annotations",),
            ("images",),
            {},
            lambda o, t: load_lrsvqa(o["annotations"], o["images"]),
            "LRS-VQA JSONL + image folder",
        ),
        SourceFormat(
            "zoom",
            ("zoom_vqa",),
            ("annotations",),
            ("images",),
            {},
            lambda o, t: load_zoom(o["annotations"], o["images"]),
            "LRS-VQA-Zoom (visual CoT) JSON/JSONL + image folder",
        ),
        SourceFormat(
            "rsvqa",
            ("vqa",),
            ("questions", "answers", "image_records"),
            ("images",),
            {"image_ext": ".tif", "types": None},
            lambda o, t: load_rsvqa(
                o["questions"],
                o["answers"],
                o["image_records"],
                o["images"],
                image_ext=o["image_ext"],
                types=o["types"],
            ),
            "RSVQA questions/answers/images JSON + image folder",
        ),
        SourceFormat(
            "vrsbench_vqa",
            ("vqa",),
            ("annotations",),
            ("images",),
            {},
            lambda o, t: load_vrsbench_vqa(o["annotations"], o["images"]),
            "VRSBench VQA JSON + image folder",
        ),
        SourceFormat(
            "llava",
            ("conversation", *_QA_TASKS),
            ("annotations",),
            ("images",),
            {},
            _load_llava_for,
            "LLaVA-style conversations JSON/JSONL + image folder",
        ),
        SourceFormat(
            "messages",
            ("conversation", *_QA_TASKS),
            ("annotations",),
            (),
            {"tasks": None},
            _load_messages_for,
            "rszoo messages JSONL",
        ),
        SourceFormat(
            "image_folder",
            ("classification",),
            (),
            ("images",),
            {"image_exts": list(IMAGE_EXTS)},
            lambda o, t: load_image_folder(o["images"], image_exts=o["image_exts"]),
            "<root>/<class>/<image> folders",
        ),
        SourceFormat(
            "synth_scenes",
            ("classification",),
            ("annotations",),
            (),
            {},
            lambda o, t: load_synth_scenes(o["annotations"]),
            "the synthetic world's scenes.jsonl",
        ),
    )
}


def load_source(options: dict[str, Any], task: str) -> tuple[list[Any], LoadStats]:
    """Load one recipe source (``options`` holds ``format`` and its keys, paths already resolved) for ``task``."""
    fmt = FORMATS.get(options.get("format", ""))
    if fmt is None:
        raise ValueError(f"unknown source format {options.get('format')!r}; known: {sorted(FORMATS)}")
    if task not in fmt.tasks:
        raise ValueError(
            f"source format {fmt.name!r} cannot feed a {task!r} subset; it feeds {list(fmt.tasks)}"
        )
    merged = {**fmt.options, **options}
    return fmt.loader(merged, task)
