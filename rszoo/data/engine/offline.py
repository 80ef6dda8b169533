"""Offline processing: loaded records -> clean, unified records, with a report of everything changed or dropped.

Steps (paper Sec. III-B2), in order, for one subset:

1. **Task-descriptor tags** such as GeoChat/VHM's ``[grounding]``, ``[refer]``, ``[identify]`` are removed from the
   user-side text and replaced by natural language: each tag maps to a template where ``{text}`` is the rest of the
   text (:data:`DEFAULT_TASK_TAGS`; ``offline.task_tags`` adds or overrides entries, ``null`` deletes one). Markup such
   as GeoChat's ``<p>...</p>`` phrase markers is stripped (``strip_markup``). A bracketed tag left at the start of a
   text that the table does not know is counted (``unknown_tags``) and kept.
2. **Rule-based text cleaning** of questions, answers, captions, expressions and conversation *user* turns (assistant
   turns of conversations stay verbatim: they may hold code or structured output): runs of spaces collapsed (line
   indentation kept), trailing spaces and blank-line runs removed, no space before ``, . ; : ! ?``, repeated
   punctuation collapsed (``,,`` ``??`` ``..`` but not ``...``; a trailing ``, ; :`` is dropped from referring
   expressions), and a typo table applied to whole words, keeping the capitalisation (:data:`DEFAULT_TYPOS`; ``offline.typos`` adds/overrides, ``default_typos: false`` drops it).
3. **Box unification** through :mod:`rszoo.data.geometry`: every detection object and referring box becomes an
   ordered quad (:func:`~rszoo.data.geometry.normalize_quads`, clockwise on screen from the top-most vertex unless
   ``clockwise: false``) plus its horizontal box; HBBs become their four corners, OBBs (degrees) their rectangle.
4. **Degenerate quads** -- zero area, or still self-intersecting after vertex ordering -- are counted and dropped
   (``degenerate: drop``, default) or kept (``keep``). Quads that were self-intersecting only because their vertices
   came in a crossing order are repaired by the ordering and counted as ``reordered``.
5. **Zoom crops**: a Zoom-in Chain record whose single crop box is empty or leaves the image is dropped and counted
   (``invalid_crops``).
6. **Image sizes** are read from file headers where the source did not give them; images with a side shorter than
   the patch factor are flagged (``meta["upscaled"] = True``) and counted -- ``smart_resize``'s ``min_pixels``
   enlarges them online.

With ``offline.cache_dir`` (or :func:`process_recipe`), the unified records of each subset are written as JSONL
(``<subset>-<fingerprint>.jsonl``, one :func:`~rszoo.data.engine.sources.record_to_dict` per line, plus a
``.report.json``) and reused while the source files, the source options and the offline options are unchanged.

Example:
    >>> clean_text("There are  two planes ,, near the  buliding .", DEFAULT_TYPOS)
    ('There are two planes, near the building.', 1)
    >>> replace_task_tags("[refer] give me the location of <p>the ship</p>", DEFAULT_TASK_TAGS, ["<p>", "</p>"])
    ('give me the location of the ship', 1, 0)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rszoo.config import check_known_keys
from rszoo.data.engine.sources import (
    FORMATS,
    ConversationRecord,
    DetectionRecord,
    QARecord,
    ReferringRecord,
    ZoomRecord,
    load_source,
    record_from_dict,
    record_to_dict,
)

__all__ = [
    "DEFAULT_MARKUP",
    "DEFAULT_TASK_TAGS",
    "DEFAULT_TYPOS",
    "OfflineOptions",
    "OfflineReport",
    "clean_text",
    "process_recipe",
    "process_records",
    "process_source",
    "replace_task_tags",
    "unify_quads",
]

#: Task-descriptor tags (GeoChat / VHM style) -> natural-language template; ``{text}`` is the rest of the text.
DEFAULT_TASK_TAGS: dict[str, str] = {
    "[grounding]": "{text} Give the location of each object you mention.",
    "[refer]": "{text}",
    "[identify]": "{text}",
    "[vqa]": "{text}",
    "[caption]": "{text}",
    "[detection]": "{text}",
    "[cls]": "{text}",
}
DEFAULT_MARKUP = ("<p>", "</p>")
#: Small typo table (whole words, case-insensitive match, capitalisation kept).
DEFAULT_TYPOS: dict[str, str] = {
    "buliding": "building",
    "biulding": "building",
    "buildng": "building",
    "vehical": "vehicle",
    "vehicel": "vehicle",
    "vechicle": "vehicle",
    "vehicels": "vehicles",
    "tenis": "tennis",
    "swiming": "swimming",
    "stroage": "storage",
    "paking": "parking",
    "harbour": "harbor",
    "recieve": "receive",
    "seperate": "separate",
    "existance": "existence",
    "occured": "occurred",
    "corrdinates": "coordinates",
    "coordiantes": "coordinates",
}


# --------------------------------------------------------------------------------------------------------------
# options and report
# --------------------------------------------------------------------------------------------------------------
@dataclass
class OfflineOptions:
    """The recipe's ``offline:`` block (module docstring explains each step).

    Attributes:
        clean_text: apply the cleaning rules and the typo table.
        default_typos: start from :data:`DEFAULT_TYPOS`.
        typos: extra/overriding entries (``wrong: right``; ``wrong: null`` removes a default entry).
        task_tags: extra/overriding tag templates (``"[tag]": "... {text} ..."``; ``null`` removes one).
        strip_markup: literal markers removed from user-side text.
        degenerate: ``drop`` or ``keep`` degenerate quads.
        clockwise: vertex order of unified quads.
        cache_dir: where unified records are cached (None: no cache).
    """

    clean_text: bool = True
    default_typos: bool = True
    typos: dict[str, str | None] = field(default_factory=dict)
    task_tags: dict[str, str | None] = field(default_factory=dict)
    strip_markup: list[str] = field(default_factory=lambda: list(DEFAULT_MARKUP))
    degenerate: str = "drop"
    clockwise: bool = True
    cache_dir: str | None = None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str) -> OfflineOptions:
        check_known_keys(values, (f.name for f in dataclasses.fields(cls)), where, "offline option(s)")
        opts = cls(**dict(values))
        opts.validate(where)
        return opts

    def validate(self, where: str) -> None:
        if self.degenerate not in ("drop", "keep"):
            raise ValueError(f"{where}.degenerate: must be 'drop' or 'keep', got {self.degenerate!r}")
        for name in ("clean_text", "default_typos", "clockwise"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{where}.{name}: must be true or false, got {getattr(self, name)!r}")
        for name in ("typos", "task_tags"):
            table = getattr(self, name)
            if not isinstance(table, dict) or not all(
                isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in table.items()
            ):
                raise ValueError(f"{where}.{name}: a mapping of strings to strings (or null), got {table!r}")
        for tag, template in self.task_tags.items():
            if template is not None and "{text}" not in template:
                raise ValueError(
                    f"{where}.task_tags[{tag!r}]: the template must contain {{text}}, got {template!r}"
                )
        if not isinstance(self.strip_markup, list) or not all(
            isinstance(m, str) and m for m in self.strip_markup
        ):
            raise ValueError(f"{where}.strip_markup: a list of non-empty strings, got {self.strip_markup!r}")

    def typo_table(self) -> dict[str, str]:
        table = dict(DEFAULT_TYPOS) if self.default_typos else {}
        for wrong, right in self.typos.items():
            if right is None:
                table.pop(wrong, None)
            else:
                table[wrong] = right
        return table

    def tag_table(self) -> dict[str, str]:
        table = dict(DEFAULT_TASK_TAGS)
        for tag, template in self.task_tags.items():
            if template is None:
                table.pop(tag, None)
            else:
                table[tag] = template
        return table


@dataclass
class OfflineReport:
    """What offline processing did to one subset (all counts; ids of the first few flagged items)."""

    subset: str
    task: str
    format: str
    loaded: int = 0
    kept: int = 0
    load_skipped: dict[str, int] = field(default_factory=dict)
    load_notes: list[str] = field(default_factory=list)
    tags_replaced: int = 0
    unknown_tags: int = 0
    texts_cleaned: int = 0
    typos_fixed: int = 0
    quads: int = 0
    reordered: int = 0
    zero_area: int = 0
    self_intersecting: int = 0
    degenerate_dropped: int = 0
    invalid_crops: int = 0
    empty_images: int = 0
    small_images: int = 0
    small_image_ids: list[str] = field(default_factory=list)
    fingerprint: str = ""
    from_cache: bool = False

    def summary(self) -> str:
        """One line, e.g. ``dota (detection, dota): 2 loaded, 2 kept; 1 degenerate dropped; 1 empty images``."""
        bits = [f"{self.loaded} loaded, {self.kept} kept"]
        if self.degenerate_dropped:
            bits.append(f"{self.degenerate_dropped} degenerate dropped")
        if self.zero_area + self.self_intersecting and not self.degenerate_dropped:
            bits.append(f"{self.zero_area + self.self_intersecting} degenerate kept")
        if self.invalid_crops:
            bits.append(f"{self.invalid_crops} zoom records with a crop outside the image dropped")
        if self.empty_images:
            bits.append(f"{self.empty_images} empty images")
        if self.small_images:
            bits.append(f"{self.small_images} images below the patch factor")
        if self.tags_replaced or self.unknown_tags:
            bits.append(f"{self.tags_replaced} tags replaced, {self.unknown_tags} unknown tags")
        return f"{self.subset} ({self.task}, {self.format}): " + "; ".join(bits)


# --------------------------------------------------------------------------------------------------------------
# text
# --------------------------------------------------------------------------------------------------------------
_LEADING_TAG = re.compile(r"^\s*\[[A-Za-z][A-Za-z _-]*\]")


def replace_task_tags(
    text: str, table: Mapping[str, str], markup: Sequence[str] = ()
) -> tuple[str, int, int]:
    """Replace known task tags (case-insensitive) by their natural-language templates; strip ``markup``.

    Returns ``(text, tags replaced, unknown leading tags)``.

    Example:
        >>> replace_task_tags("[grounding] describe the image", DEFAULT_TASK_TAGS)
        ('describe the image Give the location of each object you mention.', 1, 0)
        >>> replace_task_tags("[odd] what is it?", DEFAULT_TASK_TAGS)
        ('[odd] what is it?', 0, 1)
    """
    for marker in markup:
        text = text.replace(marker, "")
    replaced = 0
    for tag, template in table.items():
        pattern = re.compile(re.escape(tag), re.IGNORECASE)
        if pattern.search(text):
            rest = re.sub(r"[ \t]{2,}", " ", pattern.sub("", text)).strip()
            text = template.replace("{text}", rest).strip()
            replaced += 1
    unknown = 1 if _LEADING_TAG.match(text) else 0
    return text, replaced, unknown


def _typo_pattern(typos: Mapping[str, str]) -> re.Pattern[str] | None:
    if not typos:
        return None
    words = sorted(typos, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)


def clean_text(
    text: str, typos: Mapping[str, str], _pattern: re.Pattern[str] | None = None
) -> tuple[str, int]:
    """Apply the cleaning rules and the typo table; returns ``(text, typos fixed)``.

    Example:
        >>> clean_text("Is it  urban ?? Yes..", {})
        ('Is it urban? Yes.', 0)
    """
    lines = []
    for line in text.split("\n"):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        body = re.sub(r"[ \t]+", " ", line[len(indent) :]).rstrip()
        lines.append(indent + body if body else "")
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    out = re.sub(r"([,;:!?])(?:[ \t]*\1)+", r"\1", out)
    out = re.sub(r"[,;][ \t]*\.(?!\.)", ".", out)
    out = re.sub(r"(?<!\.)\.\.(?!\.)", ".", out)
    out = re.sub(r"[ \t]+([,.;:!?])(?=\s|$)", r"\1", out)
    fixed = 0
    pattern = _pattern if _pattern is not None else _typo_pattern(typos)
    if pattern is not None:
        lower = {k.lower(): v for k, v in typos.items()}

        def fix(m: re.Match[str]) -> str:
            nonlocal fixed
            fixed += 1
            new = lower[m.group(1).lower()]
            return new[:1].upper() + new[1:] if m.group(1)[:1].isupper() else new

        out = pattern.sub(fix, out)
    return out, fixed


class _TextPass:
    """Tags + markup + cleaning with counters (one per subset)."""

    def __init__(self, options: OfflineOptions, report: OfflineReport) -> None:
        self.options, self.report = options, report
        self.tags = options.tag_table()
        self.typos = options.typo_table()
        self.pattern = _typo_pattern(self.typos)

    def user(self, text: str) -> str:
        text, replaced, unknown = replace_task_tags(text, self.tags, self.options.strip_markup)
        self.report.tags_replaced += replaced
        self.report.unknown_tags += unknown
        return self.plain(text)

    def plain(self, text: str) -> str:
        if not self.options.clean_text:
            return text
        out, fixed = clean_text(text, self.typos, self.pattern)
        self.report.typos_fixed += fixed
        self.report.texts_cleaned += out != text
        return out


# --------------------------------------------------------------------------------------------------------------
# boxes
# --------------------------------------------------------------------------------------------------------------
def unify_quads(
    quads: Sequence[Sequence[float]], clockwise: bool = True
) -> tuple[list[list[float]], dict[str, list[bool]]]:
    """Order quads with :func:`rszoo.data.geometry.normalize_quads` and classify them.

    Returns ``(ordered quads, flags)`` with boolean lists ``zero_area`` (after ordering), ``self_intersecting``
    (still crossing after ordering, non-zero area) and ``reordered`` (crossing before ordering, fine after).

    Example:
        >>> quads, flags = unify_quads([[0, 0, 4, 4, 4, 0, 0, 4], [0, 0, 1, 1, 2, 2, 3, 3]])
        >>> quads[0], flags["reordered"], flags["zero_area"]
        ([0.0, 0.0, 4.0, 0.0, 4.0, 4.0, 0.0, 4.0], [True, False], [False, True])
    """
    from rszoo.data.geometry import normalize_quads, quad_validity

    if not quads:
        return [], {"zero_area": [], "self_intersecting": [], "reordered": []}
    before = quad_validity(quads)
    ordered = normalize_quads(quads, clockwise=clockwise)
    after = quad_validity(ordered)
    zero = after["degenerate"]
    crossing = after["self_intersecting"] & ~zero
    reordered = before["self_intersecting"] & ~after["self_intersecting"]
    return ordered.tolist(), {
        "zero_area": zero.tolist(),
        "self_intersecting": crossing.tolist(),
        "reordered": reordered.tolist(),
    }


def _box_quad(box: Sequence[float], box_type: str) -> list[float]:
    if box_type == "hbb":
        x1, y1, x2, y2 = (float(v) for v in box)
        return [x1, y1, x2, y1, x2, y2, x1, y2]
    if box_type == "obb":
        from rszoo.data.geometry import rbox_to_quad

        return [float(v) for v in rbox_to_quad(list(box), degrees=True)]
    return [float(v) for v in box]


def _count_flags(flags: dict[str, list[bool]], report: OfflineReport) -> list[bool]:
    """Add to the report; returns per quad whether it is degenerate."""
    report.quads += len(flags["zero_area"])
    report.reordered += sum(flags["reordered"])
    report.zero_area += sum(flags["zero_area"])
    report.self_intersecting += sum(flags["self_intersecting"])
    return [z or s for z, s in zip(flags["zero_area"], flags["self_intersecting"])]


def _unify_detection(records: list[DetectionRecord], options: OfflineOptions, report: OfflineReport) -> None:
    from rszoo.data.geometry import hbox_of

    flat = [o.quad for r in records for o in r.objects]
    ordered, flags = unify_quads(flat, options.clockwise)
    bad = _count_flags(flags, report)
    k = 0
    for r in records:
        kept = []
        for obj in r.objects:
            if bad[k] and options.degenerate == "drop":
                report.degenerate_dropped += 1
            else:
                quad = ordered[k] if not bad[k] else list(obj.quad)
                kept.append(dataclasses.replace(obj, quad=quad, hbox=hbox_of(quad)))
            k += 1
        r.objects = kept
        report.empty_images += not kept


def _unify_grounding(
    records: list[ReferringRecord], options: OfflineOptions, report: OfflineReport
) -> list[ReferringRecord]:
    from rszoo.data.geometry import hbox_of

    raw = [_box_quad(r.box, r.box_type) for r in records]
    ordered, flags = unify_quads(raw, options.clockwise)
    bad = _count_flags(flags, report)
    out = []
    for r, quad, original, is_bad in zip(records, ordered, raw, bad):
        if is_bad and options.degenerate == "drop":
            report.degenerate_dropped += 1
            continue
        r.quad = original if is_bad else quad
        r.hbox = [float(v) for v in r.box] if r.box_type == "hbb" else hbox_of(r.quad)
        out.append(r)
    return out


# --------------------------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------------------------
def _image_size(path: str) -> tuple[int, int]:
    from rszoo.data.images import raster_size

    return raster_size(path)


def _flag_small(record: Any, sizes: Sequence[Sequence[int]], factor: int, report: OfflineReport) -> None:
    if any(min(int(w), int(h)) < factor for w, h in sizes):
        record.meta["upscaled"] = True
        report.small_images += 1
        if len(report.small_image_ids) < 10:
            report.small_image_ids.append(record.id)


def _conversation_text(record: ConversationRecord, text_pass: _TextPass) -> None:
    for message in record.messages:
        if message["role"] != "user":
            continue
        content = message["content"]
        if isinstance(content, str):
            message["content"] = text_pass.user(content)
            continue
        message["content"] = [
            {**p, "text": text_pass.user(p["text"])} if p.get("type") == "text" else p for p in content
        ]


def _conversation_images(record: ConversationRecord) -> list[str]:
    return [
        p["image"]
        for m in record.messages
        if isinstance(m["content"], list)
        for p in m["content"]
        if p.get("type") == "image"
    ]


def _valid_crops(records: list[ZoomRecord], report: OfflineReport) -> list[ZoomRecord]:
    """Drop (and count) zoom records whose single crop box is empty or leaves the image: the chain would show a
    region that does not exist."""
    kept = []
    for r in records:
        if len(r.crop_boxes) == 1:
            x1, y1, x2, y2 = r.crop_boxes[0]
            width, height = r.size
            if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
                report.invalid_crops += 1
                continue
        kept.append(r)
    return kept


def process_records(
    records: list[Any], task: str, options: OfflineOptions, report: OfflineReport, factor: int = 28
) -> list[Any]:
    """Run the offline steps on loaded records (in place where possible); returns the kept records."""
    text_pass = _TextPass(options, report)
    if task == "detection":
        _unify_detection(records, options, report)
    elif task == "grounding":
        for r in records:
            # a referring expression is a noun phrase: a trailing comma / semicolon / colon is noise
            expression = text_pass.user(r.expression)
            r.expression = expression.rstrip(" ,;:") if options.clean_text else expression
        records = _unify_grounding(records, options, report)
    if task == "zoom_vqa":
        records = _valid_crops(records, report)
    for r in records:
        if isinstance(r, QARecord):
            if r.question:
                r.question = text_pass.user(r.question)
            r.answers = [text_pass.plain(a) for a in r.answers]
            if not r.sizes:
                r.sizes = [_image_size(p) for p in r.images]
            _flag_small(r, r.sizes, factor, report)
        elif isinstance(r, ZoomRecord):
            r.question = text_pass.user(r.question)
            r.answer = text_pass.plain(r.answer)
            _flag_small(r, [r.size], factor, report)
        elif isinstance(r, ConversationRecord):
            _conversation_text(r, text_pass)
            if not r.sizes:
                r.sizes = [_image_size(p) for p in _conversation_images(r)]
            _flag_small(r, r.sizes, factor, report)
        elif isinstance(r, DetectionRecord | ReferringRecord):
            _flag_small(r, [r.size], factor, report)
    report.kept = len(records)
    return records


# --------------------------------------------------------------------------------------------------------------
# subsets, fingerprints and the cache
# --------------------------------------------------------------------------------------------------------------
def _file_stamps(source: Mapping[str, Any]) -> list[Any]:
    """Size and mtime of every annotation file / label file behind a source (image folders are not listed)."""
    fmt = FORMATS[source["format"]]
    stamps = []
    for key in fmt.files:
        p = Path(source[key])
        stamps.append([key, p.stat().st_size, p.stat().st_mtime_ns])
    if source["format"] == "dota":
        for p in sorted(Path(source["labels"]).glob("*.txt")):
            stamps.append([p.name, p.stat().st_size, p.stat().st_mtime_ns])
    return stamps


def fingerprint(task: str, source: Mapping[str, Any], options: OfflineOptions, factor: int) -> str:
    """A hash of everything the unified records depend on (source files' size/mtime, options, factor)."""
    payload = {
        "version": 1,
        "task": task,
        "source": dict(source),
        "stamps": _file_stamps(source),
        "offline": {k: v for k, v in dataclasses.asdict(options).items() if k != "cache_dir"},
        "factor": factor,
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def process_source(
    name: str,
    task: str,
    source: Mapping[str, Any],
    options: OfflineOptions,
    factor: int = 28,
    cache_dir: str | Path | None = None,
) -> tuple[list[Any], OfflineReport]:
    """Load one subset's source and process it offline (reading / writing the cache when one is given).

    Args:
        name: the subset name (cache file names and the report).
        task: the subset task.
        source: the recipe's source mapping with resolved paths (``format`` plus its keys).
        options: offline options.
        factor: the patch factor (28 for Qwen2.5-VL) below which an image side is flagged.
        cache_dir: overrides ``options.cache_dir``.

    Returns:
        ``(records, report)``.
    """
    from rszoo.data.records import write_jsonl
    from rszoo.utils.io import atomic_write_text

    cache = cache_dir if cache_dir is not None else options.cache_dir
    fp = fingerprint(task, source, options, factor)
    if cache is not None:
        path = Path(cache) / f"{name}-{fp}.jsonl"
        report_path = path.with_suffix(".report.json")
        if path.is_file() and report_path.is_file():
            from rszoo.data.records import iter_jsonl

            records = [record_from_dict(obj, f"{path}:{n}") for n, obj in iter_jsonl(path)]
            report = OfflineReport(**json.loads(report_path.read_text(encoding="utf-8")))
            report.from_cache = True
            return records, report
    report = OfflineReport(name, task, str(source["format"]), fingerprint=fp)
    records, stats = load_source(dict(source), task)
    report.loaded = len(records)
    report.load_skipped = dict(stats.skipped)
    report.load_notes = list(stats.notes)
    records = process_records(records, task, options, report, factor)
    if cache is not None:
        write_jsonl(path, (record_to_dict(r) for r in records))
        atomic_write_text(report_path, json.dumps(dataclasses.asdict(report), indent=1) + "\n")
    return records, report


def process_recipe(
    recipe: Any, cache_dir: str | Path | None = None, factor: int = 28
) -> dict[str, OfflineReport]:
    """Process every subset of a data recipe offline; with a cache folder (argument or ``offline.cache_dir``), the
    unified records are written there and later mixtures load them instead of the sources.

    Args:
        recipe: a :class:`~rszoo.data.engine.recipe.DataRecipe` or a recipe path.
        cache_dir: where to write (default: the recipe's ``offline.cache_dir``).
        factor: the patch factor.

    Returns:
        subset name -> :class:`OfflineReport`.
    """
    from rszoo.data.engine.recipe import DataRecipe, load_data_recipe

    if not isinstance(recipe, DataRecipe):
        recipe = load_data_recipe(recipe)
    cache = cache_dir if cache_dir is not None else recipe.offline.cache_dir
    if cache is None:
        raise ValueError("process_recipe: give cache_dir or set offline.cache_dir in the recipe")
    return {
        s.name: process_source(s.name, s.task, s.source, recipe.offline, factor, cache)[1]
        for s in recipe.subsets
    }
