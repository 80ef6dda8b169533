"""DOTA-style splitting of large images into overlapping patches, and merging patch detections back.

Splitting follows mmrotate's ``tools/data/dota/split/img_split.py`` (LMMRotate ships the same file):

* windows: ``step = size - gap`` (``gap`` is the **overlap**); ``x_num = 1 if W <= size else ceil((W - size) / step
  + 1)``; starts ``step * i``, the last one moved back to ``W - size`` if it would run past the edge; same for y;
  windows are the product of the x and y starts, x-major. A window is kept if the image covers more than
  ``img_rate_thr`` of it (if none does, the best ones within 0.01 are kept);
* objects: ``IoF = area(poly & window) / area(poly)`` (the area is rounded to float32 as mmrotate stores it); kept if
  ``IoF >= iof_thr``; coordinates are **translated, not clipped** (they may be negative or exceed the window);
  truncated objects (``IoF < 1``) get difficulty 2;
* patches smaller than the window are padded with ``padding_value`` to ``size x size`` (``padding=True``);
* patch names ``{image_id}__{size}__{x}___{y}``.

Defaults here are RSCoVLM's detection setting (size 512, overlap 100, step 412); mmrotate's ``ss_*`` configs use 1024
and 200. Images are ``(H, W)`` or ``(H, W, C)`` numpy arrays, or a window reader ``read_window(x, y, w, h) ->
array`` so a huge GeoTIFF is never loaded whole (see :func:`rasterio_window_reader`).

Merging (``DOTAMetric.merge_results``): offsets are parsed from ``__{x}___{y}`` at the end of each patch name (or
given explicitly), polygons are translated, and a class-wise greedy NMS per original image suppresses boxes with
IoU **>** ``nms_iou_thr`` (0.1) against a higher-scoring kept box. Equal scores (every VLM detection scores 1) keep
the input order: patches in order, detections in output order. mmrotate's ``nms_rotated`` sorts with an unstable
sort, so its choice among equal scores is not specified.

Example:
    >>> sliding_windows(1000, 600).tolist()
    [[0, 0, 512, 512], [0, 88, 512, 600], [412, 0, 924, 512], [412, 88, 924, 600], [488, 0, 1000, 512], [488, 88, 1000, 600]]
    >>> patch_name("P0001", 512, 412, 88), parse_patch_name("P0001__512__412___88")
    ('P0001__512__412___88', ('P0001', 412, 88))
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "Patch",
    "assign_objects",
    "dota_annotation_lines",
    "merge_patch_detections",
    "parse_patch_name",
    "patch_name",
    "rasterio_window_reader",
    "read_dota_annotation",
    "sliding_windows",
    "split_image",
]

WindowReader = Callable[[int, int, int, int], np.ndarray]
_PATCH_NAME = re.compile(r"^(?P<id>.*)__(?P<size>\d+)__(?P<x>\d+)___(?P<y>\d+)(?:\.[A-Za-z0-9]+)?$")


def sliding_windows(
    width: int,
    height: int,
    sizes: int | Sequence[int] = 512,
    gaps: int | Sequence[int] = 100,
    img_rate_thr: float = 0.6,
) -> np.ndarray:
    """Windows ``(K, 4)`` int64 ``[x1, y1, x2, y2]`` covering a ``width x height`` image (mmrotate semantics).

    Args:
        width, height: image size in pixels.
        sizes, gaps: window size(s) and overlap(s), paired (several pairs = multi-scale windows).
        img_rate_thr: keep windows where the image covers more than this fraction of the window.
    """
    sizes = [sizes] if isinstance(sizes, int) else list(sizes)
    gaps = [gaps] if isinstance(gaps, int) else list(gaps)
    if len(sizes) != len(gaps):
        raise ValueError(f"sliding_windows: sizes and gaps must pair up, got {sizes} and {gaps}")
    if width <= 0 or height <= 0:
        raise ValueError(f"sliding_windows: image size must be positive, got {width}x{height}")
    windows = []
    for size, gap in zip(sizes, gaps):
        if not size > gap >= 0:
            raise ValueError(f"sliding_windows: need size > gap >= 0, got size={size}, gap={gap}")
        step = size - gap
        starts = []
        for extent in (width, height):
            num = 1 if extent <= size else math.ceil((extent - size) / step + 1)
            s = [step * i for i in range(num)]
            if len(s) > 1 and s[-1] + size > extent:
                s[-1] = extent - size
            starts.append(s)
        start = np.array([(x, y) for x in starts[0] for y in starts[1]], dtype=np.int64)
        windows.append(np.concatenate([start, start + size], axis=1))
    win = np.concatenate(windows, axis=0)
    inside = win.copy()
    inside[:, 0::2] = np.clip(inside[:, 0::2], 0, width)
    inside[:, 1::2] = np.clip(inside[:, 1::2], 0, height)
    img_area = (inside[:, 2] - inside[:, 0]) * (inside[:, 3] - inside[:, 1])
    win_area = (win[:, 2] - win[:, 0]) * (win[:, 3] - win[:, 1])
    rates = img_area / win_area
    if not (rates > img_rate_thr).any():
        rates[abs(rates - rates.max()) < 0.01] = 1
    return win[rates > img_rate_thr]


def assign_objects(polys: Any, windows: np.ndarray, iof_thr: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """IoF matrix ``(N, K)`` of objects vs windows and the boolean keep matrix ``IoF >= iof_thr``.

    ``IoF = area(poly & window) / max(float32(area(poly)), 1e-6)`` as mmrotate computes it; only pairs whose
    horizontal boxes overlap are intersected (exactly, see :mod:`rszoo.data.geometry`).
    """
    from rszoo.data.geometry import polygon_areas, polygon_intersection_aligned

    polys = np.asarray(polys, dtype=np.float64).reshape(-1, 8)
    windows = np.asarray(windows, dtype=np.float64).reshape(-1, 4)
    iof = np.zeros((len(polys), len(windows)))
    if len(polys) and len(windows):
        hb = np.stack(
            [polys[:, 0::2].min(1), polys[:, 1::2].min(1), polys[:, 0::2].max(1), polys[:, 1::2].max(1)], 1
        )
        w = np.minimum(hb[:, None, 2], windows[None, :, 2]) - np.maximum(hb[:, None, 0], windows[None, :, 0])
        h = np.minimum(hb[:, None, 3], windows[None, :, 3]) - np.maximum(hb[:, None, 1], windows[None, :, 1])
        i, k = np.nonzero((w > 0) & (h > 0))
        if len(i):
            x1, y1, x2, y2 = (windows[k, j] for j in range(4))
            rects = np.stack([x1, y1, x2, y1, x2, y2, x1, y2], axis=1)
            inter = np.asarray(polygon_intersection_aligned(polys[i], rects))
            area = np.clip(np.asarray(polygon_areas(polys)).astype(np.float32), 1e-6, np.inf)
            iof[i, k] = inter / area[i]
    return iof, iof >= iof_thr


def patch_name(image_id: str, size: int, x: int, y: int) -> str:
    """``{image_id}__{size}__{x}___{y}`` (mmrotate / DOTA patch naming)."""
    return f"{image_id}__{size}__{x}___{y}"


def parse_patch_name(name: str) -> tuple[str, int, int] | None:
    """``(image_id, x, y)`` from a patch name (folders and an image extension ignored), or ``None``.

    The offsets are the last ``__{size}__{x}___{y}`` group, so ids may themselves contain ``__``.
    """
    m = _PATCH_NAME.match(str(name).replace("\\", "/").rsplit("/", 1)[-1])
    if not m:
        return None
    return m.group("id"), int(m.group("x")), int(m.group("y"))


@dataclass
class Patch:
    """One window of a split image: its name, window, pixels (``None`` without an image) and objects.

    ``objects`` are ``{"poly", "label", "difficult"}`` dicts in patch pixels (float32-exact values, translated,
    not clipped); ``difficult`` is 2 for truncated objects, else the original value.
    """

    name: str
    window: tuple[int, int, int, int]
    image: np.ndarray | None
    objects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def offset(self) -> tuple[int, int]:
        """``(x, y)`` of the window's top-left corner in the original image."""
        return self.window[0], self.window[1]


def _read_patch(
    source: np.ndarray | WindowReader, window: np.ndarray, width: int, height: int, padding: bool, value: Any
) -> np.ndarray:
    x1, y1, x2, y2 = (int(v) for v in window)
    w, h = min(x2, width) - x1, min(y2, height) - y1
    if isinstance(source, np.ndarray):
        patch = source[y1 : y1 + h, x1 : x1 + w]
    else:
        patch = np.asarray(source(x1, y1, w, h))
        if patch.shape[:2] != (h, w):
            raise ValueError(
                f"read_window({x1}, {y1}, {w}, {h}) returned shape {patch.shape}; expected ({h}, {w}[, C]) "
                "(rows, columns[, channels])"
            )
    if padding and (patch.shape[0] < y2 - y1 or patch.shape[1] < x2 - x1):
        out = np.empty((y2 - y1, x2 - x1, *patch.shape[2:]), dtype=patch.dtype)
        out[...] = value
        out[: patch.shape[0], : patch.shape[1]] = patch
        patch = out
    return patch


def split_image(
    image: np.ndarray | WindowReader | None,
    image_id: str,
    objects: Sequence[Mapping[str, Any]] = (),
    *,
    width: int | None = None,
    height: int | None = None,
    size: int | Sequence[int] = 512,
    gap: int | Sequence[int] = 100,
    img_rate_thr: float = 0.6,
    iof_thr: float = 0.7,
    padding: bool = True,
    padding_value: float | Sequence[float] = 0,
) -> Iterator[Patch]:
    """Split one image (and its objects) into patches, window by window.

    Args:
        image: ``(H, W[, C])`` array, a reader ``read_window(x, y, w, h) -> (h, w[, C]) array`` (then ``width`` and
            ``height`` are required), or ``None`` to split annotations only.
        image_id: base of the patch names.
        objects: ``{"poly": [8 numbers], "label": str, "difficult": int}`` dicts in image pixels (``difficult``
            optional, default 0).
        width, height: image size (taken from the array when one is given).
        size, gap: window size and overlap (several pairs for multi-scale).
        img_rate_thr, iof_thr: see the module docstring.
        padding: pad border patches to the full window with ``padding_value`` (scalar or one value per channel;
            mmrotate's ``ss_*`` configs use ``[104, 116, 124]`` on BGR images).

    Yields:
        :class:`Patch` per kept window, x-major as mmrotate writes them.
    """
    if isinstance(image, np.ndarray):
        height, width = image.shape[:2]
    elif width is None or height is None:
        raise ValueError("split_image: width and height are required when image is a reader or None")
    windows = sliding_windows(width, height, size, gap, img_rate_thr)
    objects = list(objects)
    for i, o in enumerate(objects):
        if "poly" not in o or len(o["poly"]) != 8:
            raise ValueError(f"split_image: objects[{i}] needs 'poly' with 8 numbers, got {o!r}")
    polys32 = np.asarray([o["poly"] for o in objects], dtype=np.float32).reshape(-1, 8)
    iof, keep = assign_objects(polys32.astype(np.float64), windows, iof_thr)
    for k, win in enumerate(windows):
        x1, y1, x2, y2 = (int(v) for v in win)
        shift = np.array([-x1, -y1] * 4, dtype=np.float32)
        patch_objects = []
        for i in np.nonzero(keep[:, k])[0]:
            o = objects[i]
            translated = polys32[i] + shift  # float32, as mmrotate's translate()
            patch_objects.append(
                {
                    "poly": [float(v) for v in translated],
                    "label": o.get("label"),
                    "difficult": 2 if iof[i, k] < 1 else int(o.get("difficult", 0) or 0),
                }
            )
        pixels = None if image is None else _read_patch(image, win, width, height, padding, padding_value)
        yield Patch(patch_name(image_id, x2 - x1, x1, y1), (x1, y1, x2, y2), pixels, patch_objects)


def dota_annotation_lines(objects: Sequence[Mapping[str, Any]]) -> list[str]:
    """DOTA annotation lines ``x1 y1 ... x4 y4 label difficult`` exactly as mmrotate's splitter writes them.

    Coordinates print as ``str(np.float32(v))`` (``"12.0"``), as the splitter's float32 arrays do.
    """
    lines = []
    for o in objects:
        coords = " ".join(str(np.float32(v)) for v in o["poly"])
        lines.append(f"{coords} {o['label']} {int(o.get('difficult', 0) or 0)}")
    return lines


def read_dota_annotation(path: str | Path) -> list[dict[str, Any]]:
    """Read a DOTA ``.txt`` label file: ``x1 y1 ... x4 y4 label [difficult]`` lines; headers are skipped.

    Lines with fewer than 9 fields (``imagesource:...``, ``gsd:...``) are skipped, as mmrotate's loader does.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DOTA annotation not found: {path}")
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        items = line.strip().split(" ")
        if len(items) < 9 or line.startswith("gsd"):
            continue
        try:
            poly = [float(v) for v in items[:8]]
            difficult = int(items[9]) if len(items) >= 10 else 0
        except ValueError:
            raise ValueError(
                f"{path}:{lineno}: expected 'x1 y1 ... x4 y4 label [difficult]', got {line!r}"
            ) from None
        out.append({"poly": poly, "label": items[8], "difficult": difficult})
    return out


def rasterio_window_reader(
    path: str | Path, bands: Sequence[int] | None = None
) -> tuple[WindowReader, int, int]:
    """A ``read_window(x, y, w, h) -> (h, w, C)`` reader over a raster file, plus its ``(width, height)``.

    The dataset is opened once per call of the reader (cheap with GDAL's cache) so the reader is safe to pass to
    worker processes. ``bands`` are 1-based band indices (default: all).
    """
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(path) as src:
        width, height = src.width, src.height

    def read_window(x: int, y: int, w: int, h: int) -> np.ndarray:
        with rasterio.open(path) as src:
            data = src.read(indexes=list(bands) if bands else None, window=Window(x, y, w, h))
        return np.moveaxis(data, 0, -1)

    return read_window, width, height


def merge_patch_detections(
    detections: Sequence[Mapping[str, Any]],
    *,
    nms_iou_thr: float | None = 0.1,
    offsets: Mapping[str, tuple[str, int, int]] | None = None,
    box_type: Literal["poly", "rbox"] = "rbox",
) -> list[dict[str, Any]]:
    """Map patch detections to their original images and run class-wise NMS there.

    Args:
        detections: ``{"image": patch name, "label", "poly", "score"}`` dicts (score defaults to 1).
        nms_iou_thr: suppress IoU > this (``None`` skips NMS); 0.1 as ``DOTAMetric``.
        offsets: ``patch name -> (image_id, x, y)``; by default parsed from ``{id}__{size}__{x}___{y}`` names.
        box_type: IoU on minimum-area rectangles (``"rbox"``, mmrotate's default ``nms_rotated``) or on the
            polygons (``"poly"``, ``nms_quadri``). Merged records keep their translated polygon either way.

    Returns:
        Kept detections with ``"image"`` = original id, in input order.

    Raises:
        ValueError: a patch name without offsets (neither parsable nor in ``offsets``).
    """
    merged = []
    for i, d in enumerate(detections):
        name = str(d["image"])
        off = offsets.get(name) if offsets is not None else None
        off = off or parse_patch_name(name)
        if off is None:
            raise ValueError(
                f"detections[{i}]: image {name!r} is not a patch name '{{id}}__{{size}}__{{x}}___{{y}}'; "
                "pass offsets={patch_name: (image_id, x, y)}"
            )
        image_id, x, y = off
        poly = [float(v) + (x if k % 2 == 0 else y) for k, v in enumerate(d["poly"])]
        merged.append({**d, "image": image_id, "poly": poly, "score": float(d.get("score", 1.0))})
    if nms_iou_thr is None or not merged:
        return merged
    keep = _nms(merged, float(nms_iou_thr), box_type)
    return [m for m, k in zip(merged, keep) if k]


def _nms(records: list[dict[str, Any]], thr: float, box_type: str) -> np.ndarray:
    """Greedy class-wise NMS per image over all records at once; returns a keep mask in input order."""
    from rszoo.data.geometry import polygon_iou_aligned, quads_to_rboxes, rboxes_to_quads

    n = len(records)
    poly = np.asarray([r["poly"] for r in records], dtype=np.float64)
    if box_type == "rbox":
        poly = rboxes_to_quads(quads_to_rboxes(poly))
    elif box_type != "poly":
        raise ValueError(f"merge_patch_detections: box_type must be 'poly' or 'rbox', got {box_type!r}")
    groups: dict[tuple[str, str], int] = {}
    key = np.asarray([groups.setdefault((str(r["image"]), str(r["label"])), len(groups)) for r in records])
    score = np.asarray([r["score"] for r in records])
    order = np.lexsort((np.arange(n), -score))  # stable by descending score
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    hb = np.stack([poly[:, 0::2].min(1), poly[:, 1::2].min(1), poly[:, 0::2].max(1), poly[:, 1::2].max(1)], 1)
    # candidate pairs: same group, overlapping boxes; evaluated group by group to bound memory
    src, dst = [], []
    by_group = np.argsort(key, kind="stable")
    bounds = np.searchsorted(key[by_group], np.arange(len(groups) + 1))
    for g in range(len(groups)):
        members = by_group[bounds[g] : bounds[g + 1]]
        if len(members) < 2:
            continue
        h = hb[members]
        for s in range(0, len(members), 2048):
            rows = members[s : s + 2048]
            hr = hb[rows]
            w = np.minimum(hr[:, None, 2], h[None, :, 2]) - np.maximum(hr[:, None, 0], h[None, :, 0])
            hh = np.minimum(hr[:, None, 3], h[None, :, 3]) - np.maximum(hr[:, None, 1], h[None, :, 1])
            a, b = np.nonzero((w > 0) & (hh > 0))
            a, b = rows[a], members[b]
            later = rank[b] > rank[a]
            src.append(a[later])
            dst.append(b[later])
    keep = np.ones(n, dtype=bool)
    if not src:
        return keep
    src, dst = np.concatenate(src), np.concatenate(dst)
    if not len(src):
        return keep
    iou = np.asarray(polygon_iou_aligned(poly[src], poly[dst]))
    hit = iou > thr
    src, dst = src[hit], dst[hit]
    if not len(src):
        return keep
    # greedy in score order: a box suppresses its later neighbours only if it is itself kept
    o = np.argsort(rank[src], kind="stable")
    src, dst = src[o], dst[o]
    starts = np.searchsorted(rank[src], np.arange(n + 1))
    by_rank = order  # record index at each rank
    for r in np.unique(rank[src]).tolist():
        i = by_rank[r]
        if keep[i]:
            keep[dst[starts[r] : starts[r + 1]]] = False
    return keep
