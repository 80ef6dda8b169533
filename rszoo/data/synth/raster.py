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

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from rszoo.data.synth.categories import LANDCOVER_CLASSES
from rszoo.data.synth.graph import Polyline, Region, Scene
from rszoo.data.synth.texture import MATERIALS

__all__ = ["BANK_M", "MATERIAL_ORDER", "landcover_map", "layout_raster", "pil_points", "slot_of"]

BANK_M = 3.0  # width of a river's bank strip on each side, metres
MATERIAL_ORDER: tuple[str, ...] = tuple(MATERIALS)
_SEMANTIC = {name: k for k, name in enumerate(LANDCOVER_CLASSES)}


def slot_of(material: str, variant: int = 0) -> int:
    """Material slot id used in material rasters."""
    return MATERIAL_ORDER.index(material) * 3 + variant % 3


def pil_points(points: Sequence[Sequence[float]] | np.ndarray, x0: int, y0: int) -> list[int]:
    """Flat integer coordinates for PIL: pixel-centre snapping (``floor``) in scene pixels, then the window offset."""
    arr = np.floor(np.asarray(points, dtype=np.float64)).astype(np.int64)
    arr -= np.array([x0, y0], dtype=np.int64)
    return arr.ravel().tolist()


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
) -> tuple[Image.Image, set[int]]:
    """Draw the layout of the window ``(x0, y0, w, h)`` into an ``L`` image; returns it and the labels used."""
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    used: set[int] = set()

    def label(kind: str, variant: int = 0) -> int:
        value = _SEMANTIC[kind] if semantic else slot_of(kind, variant)
        used.add(value)
        return value

    for region in regions:
        xs = [p[0] for p in region.polygon]
        ys = [p[1] for p in region.polygon]
        if max(xs) < x0 or max(ys) < y0 or min(xs) > x0 + w or min(ys) > y0 + h:
            continue
        draw.polygon(pil_points(region.polygon, x0, y0), fill=label(region.kind, region.variant))
    bank_px = BANK_M / gsd
    for river in rivers:
        width = max(1, round(river.width + 2 * bank_px))
        draw.line(pil_points(river.points, x0, y0), fill=label("bare-soil" if semantic else "bank"), width=width)
    for river in rivers:
        draw.line(pil_points(river.points, x0, y0), fill=label("water"), width=max(1, round(river.width)))
    for road in roads:
        value = label("road") if semantic else label(road.kind)
        draw.line(pil_points(road.points, x0, y0), fill=value, width=max(1, round(road.width)))
    return img, used


def landcover_map(scene: Scene, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Semantic land-cover labels (``uint8`` indices into ``LANDCOVER_CLASSES``) of the scene or a window.

    Objects are not included: use their masks for instance labels.
    """
    x0, y0, w, h = window if window is not None else (0, 0, scene.width, scene.height)
    img, _ = layout_raster(scene.regions, scene.rivers, scene.roads, scene.gsd, x0, y0, w, h, semantic=True)
    return np.asarray(img, dtype=np.uint8).copy()
