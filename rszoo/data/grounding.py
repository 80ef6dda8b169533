"""Loaders for remote-sensing visual grounding datasets, returning :class:`~rszoo.data.records.GroundingRecord` lists.

Every loader returns ``(records, report)``: boxes are ``[x1, y1, x2, y2]`` in original-image pixels, image paths are
absolute, and the :class:`LoadReport` counts what was skipped. Zero-area GT boxes are skipped (with a warning): they
cannot be scored (IoU and R_pos are undefined) and would cap accuracy below 1. A missing image file raises
``FileNotFoundError`` naming the record and the path, unless ``skip_missing_images=True`` (then it is counted);
``check_images=False`` skips the existence checks altogether (e.g. on slow network storage).

* :func:`load_dior_rsvg` -- DIOR-RSVG (Zhan et al. 2023, ``ZhanYang-nwpu/RSVG-pytorch``).
* :func:`load_vrsbench_vg` -- VRSBench referring (visual grounding) eval file (Li et al. 2024).
* :func:`load_rrsisd` -- RRSIS-D (Liu et al. 2024), RefCOCO-style refs + COCO instances; refs as JSON, never pickle.
* :func:`load_grounding_jsonl` -- rszoo's own grounding JSONL (written by the synthetic world and converters).
"""

from __future__ import annotations

import json
import os
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rszoo.data.records import GroundingRecord, iter_jsonl

__all__ = [
    "PICKLE_REFUSAL",
    "REFS_TO_JSON_COMMAND",
    "LoadReport",
    "load_dior_rsvg",
    "load_grounding_jsonl",
    "load_rrsisd",
    "load_vrsbench_vg",
    "parse_vrsbench_box",
]

#: The one-line conversion users run themselves, on a refs file they trust, to get the JSON this loader reads.
REFS_TO_JSON_COMMAND = "python -c \"import json, pickle; json.dump(pickle.load(open('refs(unc).p', 'rb')), open('refs_unc.json', 'w'))\""
PICKLE_REFUSAL = (
    "rszoo does not unpickle dataset files: loading a pickle runs whatever code it contains, so a tampered download "
    "could execute on your machine. Convert the refs once yourself, on a file you trust, and point the loader at the "
    f"JSON:\n    {REFS_TO_JSON_COMMAND}\n(add encoding='latin1' to pickle.load for a Python 2 pickle)"
)


@dataclass
class LoadReport:
    """What a loader kept and skipped.

    Attributes:
        source: dataset name and split.
        loaded: records returned.
        skipped_zero_area: GT boxes with zero (or negative) width or height.
        skipped_missing_image: records whose image file is missing (only with ``skip_missing_images=True``).
        zero_area_ids, missing_image_ids: the record ids behind those counts.
        notes: other remarks (e.g. duplicate split indices).
    """

    source: str
    loaded: int = 0
    skipped_zero_area: int = 0
    skipped_missing_image: int = 0
    zero_area_ids: list[str] = field(default_factory=list)
    missing_image_ids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line, e.g. ``dior_rsvg/test: 7500 loaded, 0 zero-area skipped, 0 missing images skipped``."""
        return (
            f"{self.source}: {self.loaded} loaded, {self.skipped_zero_area} zero-area skipped, "
            f"{self.skipped_missing_image} missing images skipped"
        )


class _Collector:
    """Applies the shared zero-area / missing-image rules and fills the report."""

    def __init__(self, source: str, check_images: bool, skip_missing_images: bool) -> None:
        self.report = LoadReport(source)
        self.records: list[GroundingRecord] = []
        self.check_images, self.skip_missing_images = check_images, skip_missing_images

    def add(self, record: GroundingRecord) -> None:
        x1, y1, x2, y2 = record.box
        if not (x2 > x1 and y2 > y1):
            self.report.skipped_zero_area += 1
            self.report.zero_area_ids.append(record.id)
            return
        if self.check_images and not Path(record.image).is_file():
            if not self.skip_missing_images:
                raise FileNotFoundError(
                    f"{self.report.source}: image of record {record.id!r} not found: {record.image} "
                    "(fix the image root, or pass skip_missing_images=True / check_images=False)"
                )
            self.report.skipped_missing_image += 1
            self.report.missing_image_ids.append(record.id)
            return
        self.records.append(record)

    def finish(self) -> tuple[list[GroundingRecord], LoadReport]:
        self.report.loaded = len(self.records)
        if self.report.skipped_zero_area:
            shown = ", ".join(self.report.zero_area_ids[:5]) + (
                " ..." if self.report.skipped_zero_area > 5 else ""
            )
            warnings.warn(
                f"{self.report.source}: skipped {self.report.skipped_zero_area} zero-area GT boxes ({shown})",
                stacklevel=3,
            )
        return self.records, self.report


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as img:  # reads the header only
        return img.size


# -- DIOR-RSVG --------------------------------------------------------------------------------------------------
def _xml_files(annotations: Path, order: str) -> list[Path]:
    if order == "sorted":
        return sorted(annotations.rglob("*.xml"), key=lambda p: p.relative_to(annotations).as_posix())
    if order == "os_walk":
        # exactly the official filelist(): os.walk order and directory-listing order, no sorting
        return [Path(d) / f for d, _, files in os.walk(annotations) for f in files if f.endswith(".xml")]
    raise ValueError(f"load_dior_rsvg: order must be 'sorted' or 'os_walk', got {order!r}")


def _xml_text(node: ET.Element, tag: str, where: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise ValueError(f"{where}: missing <{tag}>")
    return child.text.strip()


def load_dior_rsvg(
    root: str | Path,
    split: str,
    *,
    order: Literal["sorted", "os_walk"] = "sorted",
    annotations_dir: str = "Annotations",
    images_dir: str = "JPEGImages",
    split_file: str | Path | None = None,
    check_images: bool = True,
    skip_missing_images: bool = False,
) -> tuple[list[GroundingRecord], LoadReport]:
    """Load one DIOR-RSVG split.

    Layout (as released with ``ZhanYang-nwpu/RSVG-pytorch``)::

        root/Annotations/00001.xml ...   one VOC XML per image: <filename>, <size>, and <object>s with
                                         <name>, <bndbox><xmin><ymin><xmax><ymax></bndbox>, <description>
        root/JPEGImages/00001.jpg ...
        root/train.txt, val.txt, test.txt   one global object index per line

    Split files list **global object indices**: the official ``data_loader.py`` walks the annotation folder,
    visits every ``<object>`` of every XML in that order and increments one counter; object ``k`` belongs to a split
    when ``k`` is in its file. The official walk is ``os.walk`` (unsorted), whose order depends on the file system:
    NTFS returns names in name order, ext4 in hash order. The official code uses Windows paths, so the authors' order
    was most likely name order, which is our default (``order="sorted"``: XML paths sorted by name).
    ``order="os_walk"`` reproduces the official loop literally on *your* file system. Records come out in
    global-index order, like the official loader.

    Args:
        root: the dataset folder.
        split: ``"train"``, ``"val"`` or ``"test"`` (any name with a ``<split>.txt``).
        order: XML visiting order (see above).
        annotations_dir, images_dir: sub-folders of ``root``.
        split_file: explicit split file (default ``root/<split>.txt``).
        check_images, skip_missing_images: see the module docstring.

    Returns:
        ``(records, report)``; record ids are ``dior_rsvg-<split>-<global index>``.
    """
    root = Path(root).resolve()
    annotations = root / annotations_dir
    if not annotations.is_dir():
        raise FileNotFoundError(f"load_dior_rsvg: annotation folder not found: {annotations}")
    split_path = Path(split_file) if split_file is not None else root / f"{split}.txt"
    if not split_path.is_file():
        raise FileNotFoundError(
            f"load_dior_rsvg: split file not found: {split_path} (expected one index per line)"
        )
    wanted: set[int] = set()
    duplicates = 0
    for lineno, line in enumerate(split_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            index = int(line.strip())
        except ValueError:
            raise ValueError(
                f"{split_path}:{lineno}: expected an integer object index, got {line.strip()!r}"
            ) from None
        duplicates += index in wanted
        wanted.add(index)
    collector = _Collector(f"dior_rsvg/{split}", check_images, skip_missing_images)
    if duplicates:
        collector.report.notes.append(f"{duplicates} duplicate indices in {split_path.name}")
    count = 0
    for xml_path in _xml_files(annotations, order):
        tree = ET.parse(xml_path).getroot()
        filename = _xml_text(tree, "filename", str(xml_path))
        image_path = root / images_dir / filename
        size = tree.find("size")
        for obj_no, member in enumerate(tree.findall("object")):
            index = count
            count += 1
            if index not in wanted:
                continue
            where = f"{xml_path} (object {obj_no}, global index {index})"
            bndbox = member.find("bndbox")
            if bndbox is None:
                raise ValueError(f"{where}: missing <bndbox>")
            box = [float(_xml_text(bndbox, tag, where)) for tag in ("xmin", "ymin", "xmax", "ymax")]
            if size is not None and size.find("width") is not None:
                width, height = (
                    int(_xml_text(size, "width", str(xml_path))),
                    int(_xml_text(size, "height", str(xml_path))),
                )
            elif image_path.is_file():
                width, height = _image_size(image_path)
            else:
                raise ValueError(f"{xml_path}: no <size> and no image at {image_path} to read the size from")
            collector.add(
                GroundingRecord(
                    id=f"dior_rsvg-{split}-{index:05d}",
                    image=str(image_path),
                    width=width,
                    height=height,
                    expression=_xml_text(member, "description", where),
                    box=box,
                    category=_xml_text(member, "name", where),
                    source="dior_rsvg",
                )
            )
    beyond = sorted(i for i in wanted if i >= count)
    if beyond:
        raise ValueError(
            f"{split_path}: {len(beyond)} indices are beyond the {count} objects under {annotations} "
            f"(first: {beyond[0]}); is the annotation folder complete?"
        )
    return collector.finish()


# -- VRSBench ---------------------------------------------------------------------------------------------------
_VRSBENCH_BOX_RE = re.compile(
    r"\{\s*<\s*([-\d.]+)\s*>\s*<\s*([-\d.]+)\s*>\s*<\s*([-\d.]+)\s*>\s*<\s*([-\d.]+)\s*>\s*\}"
)


def parse_vrsbench_box(text: str, image_size: tuple[int, int] = (512, 512)) -> list[float]:
    """``"{<x1><y1><x2><y2>}"`` with 0-100 coordinates -> pixels ``v / 100 * W`` (x) and ``v / 100 * H`` (y).

    VRSBench stores ``int(100 * v)`` of normalised coordinates, so boxes are quantised to 1 % of the side (5.12 px on
    its 512 x 512 patches).

    Example:
        >>> parse_vrsbench_box("{<10><20><55><100>}")
        [51.2, 102.4, 281.6, 512.0]

    Raises:
        ValueError: if ``text`` is not in that format.
    """
    match = _VRSBENCH_BOX_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"expected a VRSBench box '{{<x1><y1><x2><y2>}}' (0-100 scale), got {text!r}")
    x1, y1, x2, y2 = (float(g) for g in match.groups())
    w, h = image_size
    return [x1 / 100 * w, y1 / 100 * h, x2 / 100 * w, y2 / 100 * h]


def load_vrsbench_vg(
    json_path: str | Path,
    image_root: str | Path,
    *,
    image_size: tuple[int, int] | None = (512, 512),
    check_images: bool = True,
    skip_missing_images: bool = False,
) -> tuple[list[GroundingRecord], LoadReport]:
    """Load VRSBench's referring (visual grounding) eval file, e.g. ``VRSBench_EVAL_referring.json``.

    The file is a JSON list of objects with ``image_id`` (file name under ``image_root``), ``question`` (the
    expression), ``ground_truth`` (``"{<x1><y1><x2><y2>}"`` on a 0-100 scale, see :func:`parse_vrsbench_box`),
    ``question_id``, ``unique`` (the target is the only object of its class; Geo-R1's copy calls it ``is_unique``)
    and ``obj_cls``. Degenerate boxes (a third-party audit counts 13 in the 16,159 records) are skipped and counted.

    Args:
        json_path: the eval JSON.
        image_root: folder of the 512 x 512 PNG patches.
        image_size: ``(W, H)`` used for the 0-100 -> pixel conversion; ``None`` reads each image's header.
        check_images, skip_missing_images: see the module docstring.

    Returns:
        ``(records, report)``; record ids are ``vrsbench-<question_id>``.
    """
    json_path, image_root = Path(json_path), Path(image_root).resolve()
    if not json_path.is_file():
        raise FileNotFoundError(f"load_vrsbench_vg: file not found: {json_path}")
    try:
        items = json.loads(json_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{json_path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(items, list):
        raise ValueError(
            f"{json_path}: expected a JSON list of referring records, got {type(items).__name__}"
        )
    collector = _Collector(f"vrsbench_vg/{json_path.stem}", check_images, skip_missing_images)
    for k, item in enumerate(items):
        where = f"{json_path} record {k}"
        missing = [key for key in ("image_id", "question", "ground_truth") if key not in item]
        if missing:
            raise ValueError(
                f"{where}: missing keys {missing}; VRSBench referring records have image_id, question, ground_truth"
            )
        image_path = image_root / str(item["image_id"])
        if image_size is None:
            if not image_path.is_file():
                raise FileNotFoundError(
                    f"{where}: image_size=None needs the image to read its size: {image_path}"
                )
            size = _image_size(image_path)
        else:
            size = (int(image_size[0]), int(image_size[1]))
        try:
            box = parse_vrsbench_box(item["ground_truth"], size)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        unique = item.get("unique", item.get("is_unique"))
        collector.add(
            GroundingRecord(
                id=f"vrsbench-{item.get('question_id', k)}",
                image=str(image_path),
                width=size[0],
                height=size[1],
                expression=str(item["question"]).strip(),
                box=box,
                category=str(item.get("obj_cls", "")),
                unique=None if unique is None else bool(unique),
                source="vrsbench",
            )
        )
    return collector.finish()


# -- RRSIS-D ----------------------------------------------------------------------------------------------------
def _read_json_not_pickle(path: Path, what: str) -> Any:
    if path.suffix.lower() in (".p", ".pkl", ".pickle"):
        raise ValueError(f"{what}: refusing to read the pickle {path}. {PICKLE_REFUSAL}")
    if not path.is_file():
        raise FileNotFoundError(f"{what}: file not found: {path}")
    with path.open("rb") as fh:
        head = fh.read(1)
    if head == b"\x80":  # pickle protocol >= 2 opcode: a pickle renamed to .json
        raise ValueError(f"{what}: {path} is a pickle, not JSON. {PICKLE_REFUSAL}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what}: {path} is not valid JSON ({exc})") from None


def load_rrsisd(
    root: str | Path,
    split: str,
    *,
    refs_file: str = "rrsisd/refs_unc.json",
    instances_file: str = "rrsisd/instances.json",
    images_dir: str = "images/rrsisd/JPEGImages",
    sentence_field: Literal["raw", "sent"] = "raw",
    check_images: bool = True,
    skip_missing_images: bool = False,
) -> tuple[list[GroundingRecord], LoadReport]:
    """Load one RRSIS-D split as boxes (one record per sentence, RefCOCO convention).

    RRSIS-D ships REFER files: ``rrsisd/refs(unc).p`` (a pickled list of refs with ``ref_id``, ``ann_id``,
    ``image_id``, ``split``, ``sentences[{raw, sent, tokens, sent_id}]``) and ``rrsisd/instances.json`` (COCO, with
    ``bbox = [x, y, w, h]``, converted here to ``[x, y, x + w, y + h]``). We never unpickle: convert the refs once
    with :data:`REFS_TO_JSON_COMMAND` (on a file you trust) and pass the JSON; a ``.p``/``.pkl`` path, or a pickle
    renamed to ``.json``, is refused with an explanation.

    Args:
        root: dataset folder holding ``refs_file``, ``instances_file`` and ``images_dir``.
        split: ``"train"``, ``"val"`` or ``"test"`` (the refs' ``split`` value).
        refs_file, instances_file, images_dir: paths relative to ``root``.
        sentence_field: ``"raw"`` (as written) or ``"sent"`` (REFER's normalised lower-case form); falls back to the
            other when missing.
        check_images, skip_missing_images: see the module docstring.

    Returns:
        ``(records, report)``; record ids are ``rrsisd-<split>-<ref_id>-<sent_id>``.
    """
    root = Path(root).resolve()
    refs = _read_json_not_pickle(root / refs_file, "load_rrsisd refs")
    instances = _read_json_not_pickle(root / instances_file, "load_rrsisd instances")
    if not isinstance(refs, list):
        raise ValueError(f"{root / refs_file}: expected a JSON list of refs, got {type(refs).__name__}")
    for key in ("images", "annotations"):
        if key not in instances:
            raise ValueError(f"{root / instances_file}: COCO instances file misses {key!r}")
    images = {img["id"]: img for img in instances["images"]}
    annotations = {ann["id"]: ann for ann in instances["annotations"]}
    categories = {cat["id"]: cat.get("name", "") for cat in instances.get("categories", [])}
    collector = _Collector(f"rrsisd/{split}", check_images, skip_missing_images)
    other_field = "sent" if sentence_field == "raw" else "raw"
    for k, ref in enumerate(refs):
        if ref.get("split") != split:
            continue
        where = f"{root / refs_file} ref {k} (ref_id {ref.get('ref_id')})"
        ann = annotations.get(ref.get("ann_id"))
        if ann is None:
            raise ValueError(f"{where}: ann_id {ref.get('ann_id')!r} is not in {instances_file}")
        image = images.get(ann["image_id"])
        if image is None:
            raise ValueError(f"{where}: image_id {ann['image_id']!r} is not in {instances_file}")
        x, y, w, h = (float(v) for v in ann["bbox"])
        for s_no, sentence in enumerate(ref.get("sentences", [])):
            text = sentence.get(sentence_field) or sentence.get(other_field)
            if not text or not str(text).strip():
                raise ValueError(
                    f"{where}: sentence {s_no} has no text in {sentence_field!r} or {other_field!r}"
                )
            collector.add(
                GroundingRecord(
                    id=f"rrsisd-{split}-{ref['ref_id']}-{sentence.get('sent_id', s_no)}",
                    image=str(root / images_dir / image["file_name"]),
                    width=int(image["width"]),
                    height=int(image["height"]),
                    expression=str(text).strip(),
                    box=[x, y, x + w, y + h],
                    category=categories.get(ann.get("category_id", ref.get("category_id")), ""),
                    source="rrsisd",
                )
            )
    return collector.finish()


# -- rszoo JSONL ------------------------------------------------------------------------------------------------
def load_grounding_jsonl(
    path: str | Path,
    *,
    resolve_images: bool = True,
    check_images: bool = False,
    skip_missing_images: bool = False,
) -> tuple[list[GroundingRecord], LoadReport]:
    """Load rszoo's grounding JSONL (schema in :mod:`rszoo.data.records`).

    Args:
        path: the ``.jsonl`` file; malformed lines raise with ``file:line``.
        resolve_images: turn relative image paths (relative to the JSONL's folder) into absolute paths.
        check_images, skip_missing_images: see the module docstring (images are not checked by default).

    Raises:
        ValueError: for a malformed record or a duplicated id (both lines are named).
    """
    path = Path(path)
    collector = _Collector(f"jsonl/{path.name}", check_images, skip_missing_images)
    seen: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        record = GroundingRecord.from_dict(obj, where=f"{path}:{lineno}")
        if record.id in seen:
            raise ValueError(f"{path}:{lineno}: id {record.id!r} already used on line {seen[record.id]}")
        seen[record.id] = lineno
        if resolve_images and not Path(record.image).is_absolute():
            record.image = str((path.parent / record.image).resolve())
        collector.add(record)
    return collector.finish()
