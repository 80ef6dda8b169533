"""Rasterise a scene's layout (regions, rivers, roads) into a label image (one job: the layout raster).

Two label sets share this code: *semantic* classes (:data:`~rszoo.data.synth.categories.LANDCOVER_CLASSES`; used for
object placement and exported as land-cover maps) and *material slots* (``material * 3 + variant``; used by the
renderer to paste textures). Drawing order: regions in list order, river banks, river water, minor roads, major roads.

All vertices are snapped with ``floor`` in scene pixels before the window offset is subtracted, matching
:func:`~rszoo.data.synth.graph.rasterise_polygon`.

Example:
    >>> from rszoo.data.synth import generate_scene
    >>> scene = generate_scene(1, size=64)
    >>> labels = landcover_map(scene)
    >>> labels.shape, labels.dtype.name
    ((64, 64), 'uint8')
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from rszoo.data.synth.categories import LANDCOVER_CLASSES
from rszoo.data.synth.graph import Polyline, Region, Scene
from rszoo.data.synth.texture import MATERIALS

__all__ = [
    "BANK_M",
    "MATERIAL_ORDER",
    "Pen",
    "landcover_map",
    "layout_raster",
    "pil_points",
    "point",
    "semantic_of",
    "slot_of",
]

BANK_M = 3.0  # width of a river's bank strip on each side, metres
MATERIAL_ORDER: tuple[str, ...] = tuple(MATERIALS)
_SEMANTIC = {name: k for k, name in enumerate(LANDCOVER_CLASSES)}


def slot_of(material: str, variant: int = 0) -> int:
    """Material slot id used in material rasters."""
    return MATERIAL_ORDER.index(material) * 3 + variant % 3


# the semantic class of each material slot (river banks are bare soil, both road kinds are road); unused slots -> 0
_CLASS_OF_MATERIAL = {"bank": "bare-soil", "major-road": "road", "minor-road": "road"}
_SEMANTIC_OF_SLOT = [
    _SEMANTIC[_CLASS_OF_MATERIAL.get(MATERIAL_ORDER[slot // 3], MATERIAL_ORDER[slot // 3])]
    if slot < 3 * len(MATERIAL_ORDER)
    else 0
    for slot in range(256)
]


def semantic_of(materials: Image.Image) -> Image.Image:
    """The semantic raster (``layout_raster(..., semantic=True)``) of a material raster drawn for the same window:
    both draw the same shapes in the same order, only the label values differ, so one lookup converts them.

    Example:
        >>> from rszoo.data.synth import generate_scene
        >>> s = generate_scene(3, size=96)
        >>> mat, _ = layout_raster(s.regions, s.rivers, s.roads, s.gsd, 0, 0, 96, 96, semantic=False)
        >>> sem, _ = layout_raster(s.regions, s.rivers, s.roads, s.gsd, 0, 0, 96, 96, semantic=True)
        >>> semantic_of(mat).tobytes() == sem.tobytes()
        True
    """
    return point(materials, _SEMANTIC_OF_SLOT)


def point(img: Image.Image, lut: list[int]) -> Image.Image:
    """``img.point(lut)`` for an integer LUT without Pillow's per-call Python rounding of all 256/768 entries."""
    try:
        img.load()
        return img._new(img.im.point(lut, None))
    except (AttributeError, TypeError):  # pragma: no cover - other Pillow internals: public (slower) path
        return img.point(lut)


def pil_points(points: Sequence[Sequence[float]] | np.ndarray, x0: int, y0: int) -> list[int]:
    """Flat integer coordinates for PIL: pixel-centre snapping (``floor``) in scene pixels, then the window offset."""
    if len(points) <= 24 and not isinstance(points, np.ndarray):
        out: list[int] = []
        for x, y in points:
            out.append(math.floor(x) - x0)
            out.append(math.floor(y) - y0)
        return out
    arr = np.floor(np.asarray(points, dtype=np.float64)).astype(np.int64)
    arr -= np.array([x0, y0], dtype=np.int64)
    return arr.ravel().tolist()


class Pen:
    """Draws polygons and lines straight through Pillow's C drawing object, with the same calls
    :class:`PIL.ImageDraw.ImageDraw` makes for fills (``draw_polygon(xy, ink, 1)``, ``draw_lines(xy, ink, width)``,
    ``draw_ellipse(xy, ink, 1)``).

    Scenes draw hundreds of small shapes, and ImageDraw's per-call Python work (colour to ink conversion, argument
    checks) costs more than filling them; inks are converted once per colour here.
    """

    def __init__(self, img: Image.Image | Image.core.ImagingCore) -> None:
        # the drawing object ImageDraw.Draw(img) would make (no blending: inks are in the image's own mode), made
        # directly (a scene makes several Pens, and ImageDraw's set-up costs more than a small fill)
        if isinstance(img, Image.Image):
            img._ensure_mutable()
            img = img.im
        self.core = Image.core.draw(img, 0)
        self._inks: dict[object, int] = {}

    def ink(self, colour: int | tuple[int, ...]) -> int:
        """Pillow's ink value of ``colour`` for this image (converted once per colour)."""
        ink = self._inks.get(colour)
        if ink is None:
            ink = self._inks[colour] = self.core.draw_ink(colour)
        return ink

    def polygon(self, xy: list[int], colour: int | tuple[int, ...]) -> None:
        self.core.draw_polygon(xy, self.ink(colour), 1)

    def line(self, xy: list[int], colour: int | tuple[int, ...], width: int = 1) -> None:
        self.core.draw_lines(xy, self.ink(colour), width)

    def ellipse(self, xy: tuple[float, float, float, float], colour: int | tuple[int, ...]) -> None:
        self.core.draw_ellipse(xy, self.ink(colour), 1)


def layout_raster(
    regions: Sequence[Region],
    rivers: Sequence[Polyline],
    roads: Sequence[Polyline],
    gsd: float,
    x0: int,
    y0: int,
    w: int,
    h: int,
    semantic: bool,
) -> tuple[Image.Image, dict[int, list[int]]]:
    """Draw the layout of the window ``(x0, y0, w, h)`` into an ``L`` image.

    Returns the image and, for every label drawn, the window-pixel box ``[x1, y1, x2, y2)`` that holds it (an
    over-estimate: later drawing may have covered parts), so callers can work on boxes instead of the whole window.
    """
    img = Image.new("L", (w, h), 0)
    draw = Pen(img)
    used: dict[int, list[int]] = {}

    def label(kind: str, variant: int, bx0: float, by0: float, bx1: float, by1: float) -> int:
        value = _SEMANTIC[kind] if semantic else slot_of(kind, variant)
        box = [max(0, math.floor(bx0) - x0 - 1), max(0, math.floor(by0) - y0 - 1)]
        box += [min(w, math.ceil(bx1) - x0 + 2), min(h, math.ceil(by1) - y0 + 2)]
        old = used.get(value)
        if old is None:
            used[value] = box
        else:
            used[value] = [min(old[0], box[0]), min(old[1], box[1]), max(old[2], box[2]), max(old[3], box[3])]
        return value

    for region in regions:
        xs = [p[0] for p in region.polygon]
        ys = [p[1] for p in region.polygon]
        bx0, by0, bx1, by1 = min(xs), min(ys), max(xs), max(ys)
        if bx1 < x0 or by1 < y0 or bx0 > x0 + w or by0 > y0 + h:
            continue
        value = label(region.kind, region.variant, bx0, by0, bx1, by1)
        draw.polygon(pil_points(region.polygon, x0, y0), value)
    bank_px = BANK_M / gsd
    for layer in ("bank", "water"):
        for river in rivers:
            width = river.width + 2 * bank_px if layer == "bank" else river.width
            kind = ("bare-soil" if semantic else "bank") if layer == "bank" else "water"
            _line(draw, river.points, x0, y0, width, w, h, lambda *box, k=kind: label(k, 0, *box))
    for road in roads:
        kind = "road" if semantic else road.kind
        _line(draw, road.points, x0, y0, road.width, w, h, lambda *box, k=kind: label(k, 0, *box))
    return img, used


def _line(
    draw: Pen,
    points: list[list[float]],
    x0: int,
    y0: int,
    width: float,
    w: int,
    h: int,
    label,
) -> None:
    """A wide polyline with round joins (discs at the vertices fill the notches PIL leaves between segments)."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    r = width / 2 + 1
    bx0, by0, bx1, by1 = min(xs) - r, min(ys) - r, max(xs) + r, max(ys) + r
    if bx1 < x0 or by1 < y0 or bx0 > x0 + w or by0 > y0 + h:
        return
    value = label(bx0, by0, bx1, by1)
    flat = pil_points(points, x0, y0)
    iw = max(1, round(width))
    draw.line(flat, value, iw)
    if iw >= 3:
        # discs only where the direction turns enough for PIL's mitre-less joins to leave a visible notch
        rad = (iw - 1) / 2
        for k in range(2, len(flat) - 2, 2):
            x, y = flat[k], flat[k + 1]
            ax, ay = x - flat[k - 2], y - flat[k - 1]
            bx, by = flat[k + 2] - x, flat[k + 3] - y
            cross = abs(ax * by - ay * bx)
            norm = math.hypot(ax, ay) * math.hypot(bx, by)
            turns = norm == 0 or cross * iw > norm or ax * bx + ay * by < 0
            if turns and -rad <= x <= w + rad and -rad <= y <= h + rad:
                draw.ellipse((x - rad, y - rad, x + rad, y + rad), value)


def landcover_map(scene: Scene, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Semantic land-cover labels (``uint8`` indices into ``LANDCOVER_CLASSES``) of the scene or a window.

    Drawn on the renderer's fixed chunk grid, so a window equals the same crop of the full map. Objects are not
    included: use their masks for instance labels.
    """
    from rszoo.data.synth.render import CHUNK

    x, y, w, h = window if window is not None else (0, 0, scene.width, scene.height)
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > scene.width or y + h > scene.height:
        raise ValueError(
            f"window {(x, y, w, h)} must be non-empty and inside the {scene.width}x{scene.height} image"
        )
    out = np.empty((h, w), dtype=np.uint8)
    for cy in range(y // CHUNK, (y + h - 1) // CHUNK + 1):
        for cx in range(x // CHUNK, (x + w - 1) // CHUNK + 1):
            x0, y0 = cx * CHUNK, cy * CHUNK
            cw, ch = min(CHUNK, scene.width - x0), min(CHUNK, scene.height - y0)
            img, _ = layout_raster(
                scene.regions, scene.rivers, scene.roads, scene.gsd, x0, y0, cw, ch, semantic=True
            )
            tile = np.asarray(img, dtype=np.uint8)
            ax, ay = max(x, x0), max(y, y0)
            bx, by = min(x + w, x0 + cw), min(y + h, y0 + ch)
            out[ay - y : by - y, ax - x : bx - x] = tile[ay - y0 : by - y0, ax - x0 : bx - x0]
    return out
