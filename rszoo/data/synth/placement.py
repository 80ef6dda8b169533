"""Plausible object placement (one job: where objects go, given the layout).

Objects are placed where they belong: houses in rows facing the streets of residential blocks, warehouses and
clusters of storage tanks in industrial blocks, planes on apron stands, cars in parking stalls and in the right-hand
lanes of roads, ships along rivers and on lakes, tennis courts side by side in parks, bridges where roads cross rivers.
Every candidate is checked against the semantic layout raster (all of its corners, edge midpoints and centre must lie
on allowed land cover), must lie fully inside the image, and must not overlap any object placed before it (exact
separating-axis test on the oriented boxes, with a small clearance).

The raster is rendered in 1024 px tiles on demand (at most 16 kept), so placement in very large scenes stays light.

Example:
    >>> from rszoo.data.synth import generate_scene
    >>> scene = generate_scene(11, size=256)
    >>> all(0 <= o.hbox[0] <= o.hbox[2] <= 256 for o in scene.objects)
    True
"""

from __future__ import annotations

import bisect
import math
import random
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from itertools import accumulate, pairwise
from typing import TYPE_CHECKING

import numpy as np

from rszoo.data.synth.categories import CATEGORY_SPECS, LANDCOVER_CLASSES, category_rgb, size_class
from rszoo.data.synth.geometry import _NEAREST, order_rounded, round2_all
from rszoo.data.synth.graph import Polyline, Region, SceneObject
from rszoo.data.synth.raster import layout_raster
from rszoo.data.synth.shapes import STYLES
from rszoo.data.synth.sites import apron_stands, parking_stalls, stall_rows
from rszoo.data.synth.world import BlockInfo, BridgeSite

if TYPE_CHECKING:
    from PIL import Image
    from PIL._imaging import PixelAccess

__all__ = ["Placer"]

_L = {name: k for k, name in enumerate(LANDCOVER_CLASSES)}


def _labels(*names: str) -> frozenset[int]:
    return frozenset(_L[n] for n in names)


GROUND_BUILDING = _labels("residential", "industrial", "bare-soil", "cropland", "grassland", "airport")
ON_ROAD = _labels("road")
CAR_GROUND = _labels("road", "parking", "residential", "industrial", "apron", "bare-soil", "airport")
TRUCK_GROUND = _labels("road", "parking", "industrial", "apron", "bare-soil")
WATER = _labels("water")
APRON = _labels("apron", "airport")
SPORTS_GROUND = _labels("grassland", "residential")
INDUSTRIAL = _labels("industrial", "bare-soil")
PARKING = _labels("parking")
RESIDENTIAL = _labels("residential")
BARE_SOIL = _labels("bare-soil")
FOREST = _labels("forest")
_CELL = 64.0
_TILE = 1024
_TILE_CACHE = 16
_ALLOWED_BY_CONTEXT = {
    "road": ON_ROAD,
    "parked-roadside": ON_ROAD,
    "parking": PARKING,
    "apron": APRON,
    "helipad": APRON,
    "underway": WATER,
    "moored": WATER,
    "lake": WATER,
    "driveway": CAR_GROUND,
    "yard": CAR_GROUND,
    "loading-dock": TRUCK_GROUND,
    "construction": BARE_SOIL,
}


def _bounds(points: Sequence[Sequence[float]]) -> tuple[float, float, float, float]:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def _axes(frame: BlockInfo | tuple[float, float, float]) -> tuple[float, float, float, float]:
    """Origin and the cosine and sine of the angle of a block or a ``(cx, cy, angle)`` frame: a point ``(a, b)`` of
    the frame is at ``(ox + a * c - b * s, oy + a * s + b * c)`` (hoisted out of the per-candidate loops)."""
    if isinstance(frame, BlockInfo):
        ox, oy, angle = frame.center[0], frame.center[1], frame.angle
    else:
        ox, oy, angle = frame
    t = math.radians(angle)
    return ox, oy, math.cos(t), math.sin(t)


# the outline (mask polygon in the unit frame) of each (category, style); None where it is the oriented box itself,
# whose mask polygon is then the box's corners
_BOX_OUTLINE = ((-1, -1), (1, -1), (1, 1), (-1, 1))
_OUTLINES = {
    (category, name): None if st.outline == _BOX_OUTLINE else st.outline
    for category, styles in STYLES.items()
    for name, st in styles.items()
}


class _LabelTiles:
    """Semantic labels at points, from 1024 px layout raster tiles made on demand (LRU of 16 tiles, 16 MB)."""

    def __init__(
        self,
        regions: Sequence[Region],
        rivers: Sequence[Polyline],
        roads: Sequence[Polyline],
        gsd: float,
        width: int,
        height: int,
        landcover: Image.Image | None = None,
    ) -> None:
        self.regions, self.rivers, self.roads, self.gsd = regions, rivers, roads, gsd
        self.width, self.height = width, height
        self._boxes: list[tuple[float, float, float, float]] | None = None
        self._tiles: OrderedDict[tuple[int, int], PixelAccess] = OrderedDict()
        if landcover is not None:
            if landcover.size != (width, height) or landcover.mode != "L" or max(width, height) > _TILE:
                raise ValueError(
                    f"landcover must be the scene's {width}x{height} mode 'L' raster (scenes up to {_TILE} px a "
                    f"side), got {landcover.size[0]}x{landcover.size[1]} mode {landcover.mode!r}"
                )
            self._tiles[0, 0] = landcover.load()
        # small scenes: one tile (indexed [x, y]), looked up without the cache machinery
        self.single = self._tile(0, 0) if width <= _TILE and height <= _TILE else None

    def _tile(self, tx: int, ty: int) -> PixelAccess:
        key = (tx, ty)
        tile = self._tiles.get(key)
        if tile is not None:
            self._tiles.move_to_end(key)
            return tile
        x0, y0 = tx * _TILE, ty * _TILE
        w, h = min(_TILE, self.width - x0), min(_TILE, self.height - y0)
        regions = self.regions
        if w < self.width or h < self.height:
            # several tiles: hand each only the regions near it (layout_raster would skip the others anyway)
            if self._boxes is None:
                self._boxes = [_bounds(r.polygon) for r in regions]
            regions = [
                r
                for r, b in zip(regions, self._boxes)
                if b[2] >= x0 and b[3] >= y0 and b[0] <= x0 + w and b[1] <= y0 + h
            ]
        img, _ = layout_raster(regions, self.rivers, self.roads, self.gsd, x0, y0, w, h, semantic=True)
        # pixel access indexes as fast as bytes do, without copying the tile out
        tile = img.load()
        assert tile is not None
        self._tiles[key] = tile
        if len(self._tiles) > _TILE_CACHE:
            self._tiles.popitem(last=False)
        return tile

    def at(self, x: float, y: float) -> int:
        """Label of the pixel containing ``(x, y)``; 255 outside the image."""
        if x < 0 or y < 0 or x >= self.width or y >= self.height:
            return 255
        xi, yi = int(x), int(y)
        if self.single is not None:
            return self.single[xi, yi]
        tx, ty = xi // _TILE, yi // _TILE
        return self._tile(tx, ty)[xi - tx * _TILE, yi - ty * _TILE]


class Placer:
    """Places objects into one scene; holds the occupancy index and the random stream.

    Args:
        width, height: image size in pixels.
        gsd: metres per pixel.
        regions, rivers, roads: the scene layout.
        rng: the scene's random stream (placement order is fixed, so the result is deterministic).
        density: multiplies how many objects are attempted (1.0 = default).
        landcover: the scene's semantic layout raster (``layout_raster(..., semantic=True)`` of the whole image,
            at most 1024 px a side) when the caller has it already; drawn here otherwise.
    """

    def __init__(
        self,
        width: int,
        height: int,
        gsd: float,
        regions: Sequence[Region],
        rivers: Sequence[Polyline],
        roads: Sequence[Polyline],
        rng: random.Random,
        density: float = 1.0,
        landcover: Image.Image | None = None,
    ) -> None:
        self.width, self.height, self.gsd = width, height, gsd
        self.regions, self.rivers, self.roads = regions, rivers, roads
        self.rng = rng
        self.density = density
        self.objects: list[SceneObject] = []
        self.labels = _LabelTiles(regions, rivers, roads, gsd, width, height, landcover)
        # occupancy grid: per 64 px cell, (x1, y1, x2, y2, corners, id) of each placed object whose box reaches it
        self._cells: dict[
            tuple[int, int], list[tuple[float, float, float, float, list[list[float]], int]]
        ] = defaultdict(list)
        self._boxes: dict[int, list[float]] = {}
        self._next_id = 0

    # -- bookkeeping --------------------------------------------------------------------------------------------
    def add_existing(self, obj: SceneObject) -> None:
        """Register an already placed object (used when editing a scene for its second date)."""
        xs = [p[0] for p in obj.poly]
        ys = [p[1] for p in obj.poly]
        self._register(obj, obj.poly, [min(xs), min(ys), max(xs), max(ys)])
        self._next_id = max(self._next_id, obj.id + 1)

    def remove(self, obj: SceneObject) -> None:
        """Forget an object (it no longer blocks other placements)."""
        oid = obj.id
        box = self._boxes.pop(oid, obj.hbox)
        for key in self._cell_keys(box):
            entries = self._cells.get(key)
            if entries:
                entries[:] = [e for e in entries if e[5] != oid]
        self.objects = [o for o in self.objects if o.id != oid]

    def _cell_keys(self, box: Sequence[float]) -> list[tuple[int, int]]:
        return [
            (cx, cy)
            for cy in range(int(box[1] // _CELL), int(box[3] // _CELL) + 1)
            for cx in range(int(box[0] // _CELL), int(box[2] // _CELL) + 1)
        ]

    def _register(self, obj: SceneObject, corners: list[list[float]], box: list[float]) -> None:
        self.objects.append(obj)
        oid = obj.id
        self._boxes[oid] = box
        x1, y1, x2, y2 = box
        entry = (x1, y1, x2, y2, corners, oid)
        cells = self._cells
        kx0, kx1, ky0, ky1 = int(x1 // _CELL), int(x2 // _CELL), int(y1 // _CELL), int(y2 // _CELL)
        if kx0 == kx1 and ky0 == ky1:
            cells[kx0, ky0].append(entry)  # the common case: the box lies in one cell
            return
        for cy in range(ky0, ky1 + 1):
            for cx in range(kx0, kx1 + 1):
                cells[cx, cy].append(entry)

    def _collides(
        self, x1: float, y1: float, x2: float, y2: float, corners: list[list[float]], pad: float
    ) -> bool:
        cells = self._cells
        kx0, kx1, ky0, ky1 = int(x1 // _CELL), int(x2 // _CELL), int(y1 // _CELL), int(y2 // _CELL)
        if kx0 == kx1 and ky0 == ky1:
            near: Iterable[tuple[float, float, float, float, list[list[float]], int]] = cells.get(
                (kx0, ky0), ()
            )
        else:
            # an object spanning several of these cells is tested once per cell: the same answer each time (a loop,
            # not a comprehension: that would turn this function's locals into closure cells)
            near = []
            for cy in range(ky0, ky1 + 1):
                for cx in range(kx0, kx1 + 1):
                    near += cells.get((cx, cy), ())
        left, top = x1 - pad, y1 - pad
        for bx1, by1, bx2, by2, other, _ in near:
            # boxes_overlap inlined (hot), then the exact test
            if (
                left < bx2
                and bx1 - pad < x2
                and top < by2
                and by1 - pad < y2
                and _boxes_meet(corners, other, pad)
            ):
                return True
        return False

    def fits(self, corners: list[list[float]], cx: float, cy: float, allowed: frozenset[int] | None) -> bool:
        """Inside the image and, if ``allowed`` is given, on allowed land cover at 9 probe points."""
        w, h = self.width, self.height
        for x, y in corners:
            if x < 0.0 or y < 0.0 or x > w or y > h:
                return False
        if allowed is None:
            return True
        return self.labels.at(cx, cy) in allowed and self._edges_on(corners, cx, cy, allowed)

    def _edges_on(self, corners: list[list[float]], cx: float, cy: float, allowed: frozenset[int]) -> bool:
        """The 8 probes of :meth:`fits` besides the centre: just inside each corner and each edge midpoint."""
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = corners
        return self._probes_on(x0, y0, x1, y1, x2, y2, x3, y3, cx, cy, allowed, True)

    def _probes_on(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        x2: float,
        y2: float,
        x3: float,
        y3: float,
        cx: float,
        cy: float,
        allowed: frozenset[int],
        near_border: bool,
    ) -> bool:
        """:meth:`_edges_on` for the corners ``(x0, y0) .. (x3, y3)``; unless ``near_border``, the box is known to
        keep a pixel from the image border, so no probe needs a bounds check."""
        # the corner probes first: they reach farthest from the centre, so a misplaced candidate usually fails
        # there (the edge probes lie halfway between them)
        px0, py0 = x0 + (cx - x0) * 0.08, y0 + (cy - y0) * 0.08
        px1, py1 = x1 + (cx - x1) * 0.08, y1 + (cy - y1) * 0.08
        px2, py2 = x2 + (cx - x2) * 0.08, y2 + (cy - y2) * 0.08
        px3, py3 = x3 + (cx - x3) * 0.08, y3 + (cy - y3) * 0.08
        # edge midpoints (x_k + x_k+1) / 2, then moved as far towards the centre
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2
        qx0, qy0 = mx + (cx - mx) * 0.08, my + (cy - my) * 0.08
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        qx1, qy1 = mx + (cx - mx) * 0.08, my + (cy - my) * 0.08
        mx, my = (x2 + x3) / 2, (y2 + y3) / 2
        qx2, qy2 = mx + (cx - mx) * 0.08, my + (cy - my) * 0.08
        mx, my = (x3 + x0) / 2, (y3 + y0) / 2
        qx3, qy3 = mx + (cx - mx) * 0.08, my + (cy - my) * 0.08
        data = self.labels.single
        if data is None or near_border:
            at = self.labels.at  # bounds-checked: outside the image is never allowed
            return (
                at(px0, py0) in allowed
                and at(px1, py1) in allowed
                and at(px2, py2) in allowed
                and at(px3, py3) in allowed
                and at(qx0, qy0) in allowed
                and at(qx1, qy1) in allowed
                and at(qx2, qy2) in allowed
                and at(qx3, qy3) in allowed
            )
        # LabelTiles.at inlined for the common single-tile scene (hot)
        return (
            data[int(px0), int(py0)] in allowed
            and data[int(px1), int(py1)] in allowed
            and data[int(px2), int(py2)] in allowed
            and data[int(px3), int(py3)] in allowed
            and data[int(qx0), int(qy0)] in allowed
            and data[int(qx1), int(qy1)] in allowed
            and data[int(qx2), int(qy2)] in allowed
            and data[int(qx3), int(qy3)] in allowed
        )

    def place(
        self,
        category: str,
        cx: float,
        cy: float,
        length_m: float,
        breadth_m: float,
        angle: float,
        *,
        allowed: frozenset[int] | None,
        context: str,
        style: str | None = None,
        colour: str | None = None,
        height_m: float | None = None,
        pad_m: float = 0.4,
        object_id: int | None = None,
        rgb: tuple[int, int, int] | None = None,
    ) -> SceneObject | None:
        """Try to place one object (sizes in metres, position in pixels); returns it, or ``None`` if it does not fit.

        Colour, RGB jitter and height are drawn only for accepted objects. ``object_id`` and ``rgb`` re-create a
        known object at a new place (a moved car keeps its id and paint).
        """
        width, height = self.width, self.height
        # cheap exact rejections first: the centre must be on allowed ground, the box must fit in the image
        if allowed is not None:
            data = self.labels.single
            if data is not None and 0 <= cx < width and 0 <= cy < height:
                if data[int(cx), int(cy)] not in allowed:
                    return None
            elif self.labels.at(cx, cy) not in allowed:
                return None
        gsd = self.gsd
        length, breadth = length_m / gsd, breadth_m / gsd
        angle = (angle + 180.0) % 360.0 - 180.0
        a = math.radians(angle)
        c, s = math.cos(a), math.sin(a)
        ext_x = abs(length * c) / 2 + abs(breadth * s) / 2
        ext_y = abs(length * s) / 2 + abs(breadth * c) / 2
        bx1, by1, bx2, by2 = cx - ext_x, cy - ext_y, cx + ext_x, cy + ext_y
        if bx1 < 0.0 or by1 < 0.0 or bx2 > width or by2 > height:
            return None
        # obb_corners(cx, cy, length, breadth, angle) with its products shared (same arithmetic, same order)
        hlc, hls, hbs, hbc = length / 2 * c, length / 2 * s, breadth / 2 * s, breadth / 2 * c
        x0, y0 = cx - hlc + hbs, cy - hls - hbc
        x1, y1 = cx + hlc + hbs, cy + hls - hbc
        x2, y2 = cx + hlc - hbs, cy + hls + hbc
        x3, y3 = cx - hlc - hbs, cy - hls + hbc
        corners = [[x0, y0], [x1, y1], [x2, y2], [x3, y3]]
        # fits() without its centre probe (done above). The corners are the box's up to rounding (~1e-13 px), so
        # a box a pixel clear of the border has them, and every probe, well inside the image.
        near_border = bx1 < 1.0 or by1 < 1.0 or bx2 > width - 1.0 or by2 > height - 1.0
        if near_border:
            for x, y in corners:
                if x < 0.0 or y < 0.0 or x > width or y > height:
                    return None
        if self._collides(bx1, by1, bx2, by2, corners, pad_m / gsd):
            return None
        if allowed is not None and not self._probes_on(
            x0, y0, x1, y1, x2, y2, x3, y3, cx, cy, allowed, near_border
        ):
            return None
        rng = self.rng
        spec = CATEGORY_SPECS[category]
        if colour is None:
            colour = _weighted(rng, spec.colours, _COLOUR_TOTALS[category])
        if rgb is None:
            # randrange(-6, 7) is -6 + _randbelow(13): the same draws, without randrange's argument checks
            randbelow = rng._randbelow
            jitter = (randbelow(13) - 6, randbelow(13) - 6, randbelow(13) - 6)
        if height_m is None:
            lo, hi = spec.height_m
            height_m = lo + (hi - lo) * rng.random()
        if style is None:
            style = next(iter(STYLES[category]))
        # every number the graph stores, rounded in one pass (with the outline's vertices, unit frame -> pixels in
        # plain Python: 4-24 vertices are too few for numpy to pay off); round2 equals round(v, 2) for the
        # (non-negative) float heights, other types keep round()'s result type
        floats = [x0, y0, x1, y1, x2, y2, x3, y3, cx, cy, length, breadth, angle]
        float_height = type(height_m) is float
        if float_height:
            floats.append(height_m)
        r = round2_all(floats)
        height_m = r[13] if float_height else round(height_m, 2)
        corners_r = [[r[0], r[1]], [r[2], r[3]], [r[4], r[5]], [r[6], r[7]]]
        outline = _OUTLINES[category, style]
        if outline is None:
            # the outline is the unit square in corner order: u, v = +-1 give the corners' exact floats
            shape = [[r[0], r[1]], [r[2], r[3]], [r[4], r[5]], [r[6], r[7]]]
        else:
            shape = _outline_px(outline, cx, cy, hlc, hls, hbs, hbc)
        if rgb is None:
            red, green, blue = category_rgb(category, colour)
            red, green, blue = red + jitter[0], green + jitter[1], blue + jitter[2]
            # clamped to 0..255 (as min(255, max(0, v)), without the calls)
            rgb = (
                red if 0 <= red <= 255 else (0 if red < 0 else 255),
                green if 0 <= green <= 255 else (0 if green < 0 else 255),
                blue if 0 <= blue <= 255 else (0 if blue < 0 else 255),
            )
        hbox = [
            max(0.0, min(r[0], r[2], r[4], r[6])),
            max(0.0, min(r[1], r[3], r[5], r[7])),
            min(float(width), max(r[0], r[2], r[4], r[6])),
            min(float(height), max(r[1], r[3], r[5], r[7])),
        ]
        # positional, in field order: the generated __init__ matches 15 keywords ~3x slower (hot: every object)
        obj = SceneObject(
            self._next_id if object_id is None else object_id,  # id
            category,
            colour,
            rgb,  # type: ignore[arg-type]
            size_class(category, length_m),
            (r[8], r[9]),  # center
            r[10],  # width: the length in pixels
            r[11],  # height: the breadth in pixels
            r[12],  # angle
            order_rounded(corners_r),  # poly
            hbox,
            shape,
            height_m,
            context,
            style,
        )
        if object_id is None:
            self._next_id += 1
        else:
            self._next_id = max(self._next_id, object_id + 1)
        self._register(obj, corners, [bx1, by1, bx2, by2])
        return obj

    def relocate(self, obj: SceneObject, tries: int = 40) -> SceneObject | None:
        """Place a copy of ``obj`` (same id, look and size) somewhere else in the same kind of place, or ``None``.

        The original must already have been :meth:`remove`-d. Vehicles go to another lane position or parking
        stall, ships elsewhere on their river or lake, aircraft to another stand; others move a few metres.
        """
        rng = self.rng
        gsd = self.gsd
        length_m, breadth_m = obj.width * gsd, obj.height * gsd
        allowed = _ALLOWED_BY_CONTEXT.get(obj.context, CAR_GROUND)
        for _ in range(tries):
            cand = self._candidate(obj, rng)
            if cand is None:
                return None
            x, y, heading = cand
            moved = self.place(
                obj.category,
                x,
                y,
                length_m,
                breadth_m,
                heading,
                allowed=allowed,
                context=obj.context,
                style=obj.style,
                colour=obj.colour,
                height_m=obj.height_m,
                object_id=obj.id,
                rgb=obj.rgb,
            )
            if moved is not None:
                return moved
        return None

    def _candidate(self, obj: SceneObject, rng: random.Random) -> tuple[float, float, float] | None:
        ctx = obj.context
        if ctx in ("road", "parked-roadside") and self.roads:
            road = rng.choice(self.roads)
            pts = road.points
            k = rng.randrange(len(pts) - 1)
            t = rng.random()
            (ax, ay), (bx, by) = pts[k], pts[k + 1]
            d = math.hypot(bx - ax, by - ay) or 1.0
            dx, dy = (bx - ax) / d, (by - ay) / d
            side = rng.choice((-1.0, 1.0))
            lane = (1.75 if ctx == "road" else road.width_m / 2 - 1.2) / self.gsd * side
            heading = math.degrees(math.atan2(dy, dx)) + (0.0 if side > 0 else 180.0)
            return ax + t * (bx - ax) - dy * lane, ay + t * (by - ay) + dx * lane, heading
        if ctx == "parking":
            lots = [r for r in self.regions if r.kind == "parking" and r.frame is not None]
            if lots:
                lot = rng.choice(lots)
                slots = parking_stalls(lot.frame, lot.angle, self.gsd)  # type: ignore[arg-type]
                if slots:
                    slot = rng.choice(slots)
                    return slot.x, slot.y, slot.heading
            return None
        if ctx in ("underway", "moored") and self.rivers:
            river = rng.choice(self.rivers)
            pts = river.points
            k = rng.randrange(len(pts) - 1)
            (ax, ay), (bx, by) = pts[k], pts[k + 1]
            t = rng.random()
            d = math.hypot(bx - ax, by - ay) or 1.0
            dx, dy = (bx - ax) / d, (by - ay) / d
            room = max(0.0, river.width / 2 - obj.height / 2 - 1.0 / self.gsd)
            off = rng.uniform(-room, room)
            heading = math.degrees(math.atan2(dy, dx)) + rng.choice((0.0, 180.0))
            return ax + t * (bx - ax) - dy * off, ay + t * (by - ay) + dx * off, heading
        if obj.category == "plane":
            aprons = [r for r in self.regions if r.kind == "apron" and r.frame is not None]
            if aprons:
                apron = rng.choice(aprons)
                stands = apron_stands(apron.frame, apron.angle, self.gsd)  # type: ignore[arg-type]
                if stands:
                    stand = rng.choice(stands)
                    return stand.x, stand.y, stand.heading
            return None
        reach = 15.0 / self.gsd
        return (
            obj.center[0] + rng.uniform(-reach, reach),
            obj.center[1] + rng.uniform(-reach, reach),
            obj.angle + rng.choice((0.0, 0.0, 180.0, 90.0)),
        )

    # -- placement by land use ----------------------------------------------------------------------------------
    def populate(self, blocks: Sequence[BlockInfo], bridges: Sequence[BridgeSite]) -> list[SceneObject]:
        """Fill the scene: bridges, airports, industry, housing, parks, farms and sites, water, parking, roads."""
        for site in bridges:
            self._bridge(site)
        order = ("airport", "industrial", "residential", "grassland", "cropland", "bare-soil", "forest")
        for kind in order:
            fill = getattr(self, "_" + kind.replace("-", "_"))
            for block in blocks:
                if block.kind == kind:
                    fill(block)
        for block in blocks:
            for sub in block.subregions:
                if sub.kind == "water" and sub.region_ids:
                    self._lake(sub.center, sub.half_u, sub.half_v, block.angle)
        for river in self.rivers:
            self._ships_on_river(river)
        for region in self.regions:
            if region.kind == "parking" and region.frame is not None:
                self._parking(region)
        for road in self.roads:
            self._road_vehicles(road)
        return self.objects

    def _count(self, mean: float) -> int:
        """A random count with the given mean, scaled by the density."""
        m = mean * self.density
        base = int(m)
        return base + (1 if self.rng.random() < m - base else 0)

    def _point(self, block: BlockInfo | tuple, a: float, b: float) -> tuple[float, float]:
        if isinstance(block, BlockInfo):
            cx, cy, angle = block.center[0], block.center[1], block.angle
        else:
            cx, cy, angle = block
        t = math.radians(angle)
        c, s = math.cos(t), math.sin(t)
        return cx + a * c - b * s, cy + a * s + b * c

    def _visible(
        self, frame: BlockInfo | tuple[float, float, float], hu: float, hv: float
    ) -> tuple[float, float, float, float] | None:
        """The part ``(a0, a1, b0, b1)`` of a frame's rectangle ``[-hu, hu] x [-hv, hv]`` whose points can map into
        the image (bounding box, in frame coordinates, of the image rectangle), or ``None`` if it is all outside.

        Candidate centres are drawn only there: a block larger than the tile wastes no attempts off-image.
        """
        if isinstance(frame, BlockInfo):
            cx, cy, angle = frame.center[0], frame.center[1], frame.angle
        else:
            cx, cy, angle = frame
        t = math.radians(angle)
        c, s = math.cos(t), math.sin(t)
        as_, bs = [], []
        for x, y in ((0.0, 0.0), (self.width, 0.0), (0.0, self.height), (self.width, self.height)):
            dx, dy = x - cx, y - cy
            as_.append(dx * c + dy * s)
            bs.append(-dx * s + dy * c)
        a0, a1 = max(-hu, min(as_)), min(hu, max(as_))
        b0, b1 = max(-hv, min(bs)), min(hv, max(bs))
        if a0 > a1 or b0 > b1:
            return None
        return a0, a1, b0, b1

    def _bridge(self, site: BridgeSite) -> None:
        length_m = (site.river_width / site.crossing_sin) * self.gsd + 14.0
        breadth_m = site.road_width * self.gsd + 3.0
        self.place(
            "bridge",
            site.x,
            site.y,
            min(length_m, 140.0),
            breadth_m,
            site.road_angle,
            allowed=None,
            context="river",
            colour="gray",
        )

    def _airport(self, block: BlockInfo) -> None:
        rng = self.rng
        for sub in block.subregions:
            if sub.kind != "apron":
                continue
            frame = [sub.center[0], sub.center[1], sub.half_u, sub.half_v]
            stands = apron_stands(frame, sub.angle, self.gsd)
            common = rng.uniform(24.0, 68.0)
            for slot in stands:
                if rng.random() > min(1.0, 0.78 * self.density):
                    continue
                length_m = min(70.0, max(18.0, common * rng.uniform(0.85, 1.15)))
                span = length_m * rng.uniform(0.9, 1.05)
                plane = self.place(
                    "plane",
                    slot.x,
                    slot.y,
                    length_m,
                    span,
                    slot.heading,
                    allowed=APRON,
                    context="apron",
                    height_m=None,
                )
                if plane is not None and rng.random() < 0.6:
                    # a service vehicle beside the fuselage, near the nose
                    a = math.radians(slot.heading)
                    side = rng.choice((-1.0, 1.0))
                    dist_nose = length_m * 0.3 / self.gsd
                    dist_side = (0.12 * span + 4.0) / self.gsd
                    vx = plane.center[0] + dist_nose * math.cos(a) - side * dist_side * math.sin(a)
                    vy = plane.center[1] + dist_nose * math.sin(a) + side * dist_side * math.cos(a)
                    if rng.random() < 0.5:
                        self.place(
                            "small-vehicle", vx, vy, 4.8, 2.0, slot.heading, allowed=APRON, context="apron"
                        )
                    else:
                        self.place(
                            "large-vehicle",
                            vx,
                            vy,
                            rng.uniform(7.0, 11.0),
                            2.5,
                            slot.heading,
                            allowed=APRON,
                            context="apron",
                            style="truck",
                        )
            for _ in range(self._count(0.9)):
                hx, hy = self._point((sub.center[0], sub.center[1], sub.angle), 0.0, 0.0)
                a = rng.uniform(-0.9, 0.9) * sub.half_u
                b = rng.uniform(0.3, 0.95) * sub.half_v
                hx, hy = self._point((sub.center[0], sub.center[1], sub.angle), a, b)
                length_m = rng.uniform(11.0, 19.0)
                self.place(
                    "helicopter",
                    hx,
                    hy,
                    length_m,
                    length_m * rng.uniform(0.75, 0.88),
                    rng.uniform(-180, 180),
                    allowed=APRON,
                    context="helipad",
                )

    def _industrial(self, block: BlockInfo) -> None:
        rng = self.rng
        # rng.uniform(lo, hi) written out as lo + (hi - lo) * random(), rng.choice(seq) as
        # seq[_randbelow(len(seq))] in the loops: the same draws and floats, without the Python calls
        random, randbelow = rng.random, rng._randbelow
        gsd = self.gsd
        width, height = self.width, self.height
        seen = self._visible(block, block.half_u, block.half_v)
        if seen is None:
            return
        a0, a1, b0, b1 = seen
        ox, oy, c, s = _axes(block)
        # sampling area: the visible part of the block, as half extents around its middle
        ma, mb = (a0 + a1) / 2, (b0 + b1) / 2
        hu, hv = (a1 - a0) / 2, (b1 - b0) / 2
        span_u, span_v = hu - -hu, hv - -hv  # rng.uniform(-hu, hu) is -hu + span_u * random()
        for _ in range(self._count(1.8)):
            length_m = 24.0 + (80.0 - 24.0) * random()
            breadth_m = length_m * (0.45 + (0.8 - 0.45) * random())
            for _attempt in range(6):
                a, b = ma + (-hu + span_u * random()), mb + (-hv + span_v * random())
                x, y = ox + a * c - b * s, oy + a * s + b * c
                heading = block.angle + (0.0, 90.0)[randbelow(2)]
                style = "warehouse" if random() < 0.55 else "flat"
                height_m = 7.0 + (16.0 - 7.0) * random()
                if not (0 <= x < width and 0 <= y < height):
                    continue  # place() turns down a centre off the image before it draws anything
                if self.place(
                    "building",
                    x,
                    y,
                    length_m,
                    breadth_m,
                    heading,
                    allowed=INDUSTRIAL,
                    context="industrial",
                    style=style,
                    height_m=height_m,
                ):
                    break
        if random() < 0.6 * min(1.0, self.density):
            diameter = rng.uniform(9.0, 36.0)
            nx, ny = rng.randint(1, 4), rng.randint(1, 3)
            spacing = diameter * rng.uniform(1.25, 1.5) / gsd
            ca, cb = ma + rng.uniform(-hu, hu) * 0.6, mb + rng.uniform(-hv, hv) * 0.6
            colour = "white" if random() < 0.75 else "gray"
            style = "floating" if random() < 0.7 else "dome"
            for ix in range(nx):
                for iy in range(ny):
                    a = ca + (ix - (nx - 1) / 2) * spacing
                    b = cb + (iy - (ny - 1) / 2) * spacing
                    x, y = ox + a * c - b * s, oy + a * s + b * c
                    d = diameter * (0.96 + (1.04 - 0.96) * random())
                    height_m = min(20.0, d * (0.45 + (0.8 - 0.45) * random()))
                    if not (0 <= x < width and 0 <= y < height):
                        continue
                    self.place(
                        "storage-tank",
                        x,
                        y,
                        d,
                        d,
                        0.0,
                        allowed=INDUSTRIAL,
                        context="tank-farm",
                        colour=colour,
                        style=style,
                        height_m=height_m,
                    )
        if random() < 0.6 * min(1.0, self.density):
            n = rng.randint(2, 6)
            length_m = rng.uniform(9.0, 17.0)
            ca, cb = ma + rng.uniform(-hu, hu) * 0.8, mb + rng.uniform(-hv, hv) * 0.8
            heading = block.angle + rng.choice((90.0, -90.0))
            for k in range(n):
                a = ca + k * 4.0 / gsd
                x, y = ox + a * c - cb * s, oy + a * s + cb * c
                truck_m = length_m * (0.95 + (1.05 - 0.95) * random())
                if not (0 <= x < width and 0 <= y < height):
                    continue
                self.place(
                    "large-vehicle",
                    x,
                    y,
                    truck_m,
                    2.5,
                    heading,
                    allowed=TRUCK_GROUND,
                    context="loading-dock",
                    style="truck",
                )
        for _ in range(self._count(2.0)):
            a, b = ma + (-hu + span_u * random()), mb + (-hv + span_v * random())
            x, y = ox + a * c - b * s, oy + a * s + b * c
            length_m = 3.9 + (5.4 - 3.9) * random()
            heading = block.angle + (0.0, 90.0, 180.0, -90.0)[randbelow(4)] + (-4 + 8 * random())
            if not (0 <= x < width and 0 <= y < height):
                continue
            self.place(
                "small-vehicle",
                x,
                y,
                length_m,
                1.9,
                heading,
                allowed=CAR_GROUND,
                context="yard",
                style="car",
            )

    def _residential(self, block: BlockInfo) -> None:
        rng = self.rng
        # rng.uniform(lo, hi) is lo + (hi - lo) * random(): written out below for the hot draws (the same floats)
        random = rng.random
        gsd = self.gsd
        width, height = self.width, self.height
        hu, hv = block.half_u, block.half_v
        apartments = random() < 0.28
        fill = min(1.0, rng.uniform(0.6, 0.95) * self.density)
        seen = self._visible(block, hu, hv)
        if seen is None:
            return
        a0, a1, b0, b1 = seen
        ox, oy, c, s = _axes(block)
        reach = (
            50.0 / gsd
        )  # a house centre lies within this of its side line, and spans at most this along it
        # (side centre offset a, b), direction along the side (unit in block frame), outward normal, half extent
        sides = (
            ((0.0, -hv), (1.0, 0.0), (0.0, -1.0), hu),
            ((0.0, hv), (1.0, 0.0), (0.0, 1.0), hu),
            ((-hu, 0.0), (0.0, 1.0), (-1.0, 0.0), hv),
            ((hu, 0.0), (0.0, 1.0), (1.0, 0.0), hv),
        )
        for (sa, sb), (da, db), (na, nb), half in sides:
            # walk only the stretch of the side that can be in the image
            lo, hi = (a0, a1) if da else (b0, b1)
            across = sb if da else sa
            if not ((b0 if da else a0) - reach <= across <= (b1 if da else a1) + reach):
                continue
            pos = max(-half, lo - reach)
            end = min(half, hi + reach)
            turn = block.angle + (0.0 if da else 90.0)
            while pos < end:
                if apartments:
                    length_m, depth_m = 20.0 + (45.0 - 20.0) * random(), 11.0 + (16.0 - 11.0) * random()
                    style = "flat" if random() < 0.7 else "l-shape"
                    gap_m = 6.0 + (14.0 - 6.0) * random()
                    height_m = 9.0 + (18.0 - 9.0) * random()
                else:
                    length_m, depth_m = 9.0 + (17.0 - 9.0) * random(), 7.5 + (12.0 - 7.5) * random()
                    style = "gable" if random() < 0.72 else ("l-shape" if random() < 0.5 else "flat")
                    gap_m = 3.0 + (8.0 - 3.0) * random()
                    height_m = 4.0 + (8.0 - 4.0) * random()
                length_px, depth_px = length_m / gsd, depth_m / gsd
                centre_pos = pos + length_px / 2
                pos += length_px + gap_m / gsd
                if centre_pos + length_px / 2 > half or random() > fill:
                    continue
                setback = (0.0 + (2.5 - 0.0) * random()) / gsd
                a = sa + da * centre_pos - na * (setback + depth_px / 2)
                b = sb + db * centre_pos - nb * (setback + depth_px / 2)
                x, y = ox + a * c - b * s, oy + a * s + b * c
                heading = turn + (-2.0 + 4.0 * random())
                if not (0 <= x < width and 0 <= y < height):
                    continue  # place() turns down a centre off the image before it draws anything
                house = self.place(
                    "building",
                    x,
                    y,
                    length_m,
                    depth_m,
                    heading,
                    allowed=GROUND_BUILDING,
                    context="residential",
                    style=style,
                    height_m=height_m,
                )
                if house is None:
                    continue
                if not apartments and random() < 0.35:
                    # a car on the driveway between the house and the street
                    off = depth_px / 2 + 3.4 / gsd
                    cxa, cyb = a + na * off + da * rng.uniform(-0.3, 0.3) * length_px, b + nb * off
                    self.place(
                        "small-vehicle",
                        ox + cxa * c - cyb * s,
                        oy + cxa * s + cyb * c,
                        rng.uniform(3.9, 5.2),
                        1.85,
                        heading + 90.0 + rng.choice((0.0, 180.0)) + rng.uniform(-5, 5),
                        allowed=CAR_GROUND,
                        context="driveway",
                        style="car",
                    )
                if not apartments and random() < 0.16:
                    pool_len = rng.uniform(6.0, 12.0)
                    pool_w = pool_len * rng.uniform(0.45, 0.6)
                    off = depth_px / 2 + (2.5 + pool_w / 2) / gsd
                    pa, pb = a - na * off, b - nb * off
                    self.place(
                        "swimming-pool",
                        ox + pa * c - pb * s,
                        oy + pa * s + pb * c,
                        pool_len,
                        pool_w,
                        heading,
                        allowed=RESIDENTIAL,
                        context="garden",
                        style="private",
                    )
        for sub in block.subregions:
            if sub.kind == "grassland":
                self._sports((sub.center[0], sub.center[1], sub.angle), sub.half_u, sub.half_v, 0.85)

    def _grassland(self, block: BlockInfo) -> None:
        self._sports((block.center[0], block.center[1], block.angle), block.half_u, block.half_v, 0.4)

    def _sports(self, frame: tuple[float, float, float], hu: float, hv: float, chance: float) -> None:
        rng = self.rng
        gsd = self.gsd
        if rng.random() > chance * min(1.0, self.density):
            return
        seen = self._visible(frame, hu, hv)
        if seen is None:
            return
        a0, a1, b0, b1 = seen
        ma, mb = (a0 + a1) / 2, (b0 + b1) / 2
        frame = (*self._point(frame, ma, mb), frame[2])  # re-centre on the visible part
        hu, hv = (a1 - a0) / 2, (b1 - b0) / 2
        angle = frame[2]
        if rng.random() < 0.7:
            n = rng.randint(1, 4)
            length_m = rng.uniform(33.0, 37.0)
            breadth_m = length_m * 0.5
            colour = _weighted(rng, CATEGORY_SPECS["tennis-court"].colours)
            ca, cb = rng.uniform(-0.5, 0.5) * hu, rng.uniform(-0.5, 0.5) * hv
            for k in range(n):
                x, y = self._point(frame, ca, cb + (k - (n - 1) / 2) * (breadth_m + 0.6) / gsd)
                self.place(
                    "tennis-court",
                    x,
                    y,
                    length_m,
                    breadth_m,
                    angle,
                    allowed=SPORTS_GROUND,
                    context="park",
                    colour=colour,
                    pad_m=0.2,
                )
        if rng.random() < 0.45:
            for _ in range(rng.randint(1, 2)):
                length_m = rng.uniform(28.5, 33.5)
                x, y = self._point(frame, rng.uniform(-hu, hu), rng.uniform(-hv, hv))
                self.place(
                    "basketball-court",
                    x,
                    y,
                    length_m,
                    length_m * 0.57,
                    angle + rng.choice((0.0, 90.0)),
                    allowed=SPORTS_GROUND,
                    context="park",
                )
        if rng.random() < 0.35:
            length_m = rng.uniform(45.0, 105.0)
            for _attempt in range(3):
                x, y = self._point(frame, rng.uniform(-0.5, 0.5) * hu, rng.uniform(-0.5, 0.5) * hv)
                if self.place(
                    "soccer-ball-field",
                    x,
                    y,
                    length_m,
                    length_m * 0.65,
                    angle,
                    allowed=SPORTS_GROUND,
                    context="park",
                ):
                    break
                length_m *= 0.8
        if rng.random() < 0.2:
            length_m = rng.uniform(25.0, 50.0)
            x, y = self._point(frame, rng.uniform(-hu, hu), rng.uniform(-hv, hv))
            self.place(
                "swimming-pool",
                x,
                y,
                length_m,
                length_m * rng.uniform(0.4, 0.5),
                angle,
                allowed=SPORTS_GROUND,
                context="park",
                style="public",
            )

    def _cropland(self, block: BlockInfo) -> None:
        rng = self.rng
        if rng.random() > 0.3 * min(1.0, self.density):
            return
        ca, cb = rng.uniform(-0.7, 0.7) * block.half_u, rng.uniform(-0.7, 0.7) * block.half_v
        for k in range(rng.randint(1, 3)):
            x, y = self._point(block, ca + k * 22.0 / self.gsd, cb + rng.uniform(-4, 4) / self.gsd)
            length_m = rng.uniform(10.0, 30.0)
            self.place(
                "building",
                x,
                y,
                length_m,
                length_m * rng.uniform(0.5, 0.8),
                block.angle + rng.choice((0.0, 90.0)),
                allowed=GROUND_BUILDING,
                context="farm",
                style=rng.choice(("gable", "warehouse", "flat")),
                height_m=rng.uniform(4.0, 9.0),
            )
        if rng.random() < 0.5:
            x, y = self._point(block, ca, cb + 15.0 / self.gsd)
            self.place(
                "large-vehicle",
                x,
                y,
                rng.uniform(7.0, 12.0),
                2.5,
                rng.uniform(-180, 180),
                allowed=GROUND_BUILDING,
                context="farm",
                style="truck",
            )

    def _bare_soil(self, block: BlockInfo) -> None:
        rng = self.rng
        if rng.random() > 0.6 * min(1.0, self.density):
            return
        for _ in range(rng.randint(1, 5)):
            x, y = self._point(block, rng.uniform(-1, 1) * block.half_u, rng.uniform(-1, 1) * block.half_v)
            self.place(
                "large-vehicle",
                x,
                y,
                rng.uniform(7.0, 14.0),
                2.6,
                rng.uniform(-180, 180),
                allowed=BARE_SOIL,
                context="construction",
                style="truck",
            )
        for _ in range(rng.randint(0, 2)):
            x, y = self._point(block, rng.uniform(-1, 1) * block.half_u, rng.uniform(-1, 1) * block.half_v)
            length_m = rng.uniform(7.0, 12.0)
            self.place(
                "building",
                x,
                y,
                length_m,
                length_m * 0.5,
                block.angle,
                allowed=BARE_SOIL,
                context="construction",
                style="flat",
                height_m=3.0,
            )

    def _forest(self, block: BlockInfo) -> None:
        rng = self.rng
        if rng.random() < 0.06 * self.density:
            x, y = self._point(
                block, rng.uniform(-0.6, 0.6) * block.half_u, rng.uniform(-0.6, 0.6) * block.half_v
            )
            self.place(
                "building",
                x,
                y,
                9.0,
                7.0,
                block.angle,
                allowed=FOREST,
                context="forest",
                style="gable",
            )

    def _lake(self, centre: tuple[float, float], half_u: float, half_v: float, angle: float) -> None:
        rng = self.rng
        for _ in range(self._count(1.4)):
            a, b = rng.uniform(-1, 1) * half_u, rng.uniform(-1, 1) * half_v
            x, y = self._point((centre[0], centre[1], angle), a, b)
            length_m = rng.uniform(8.0, 16.0)
            self.place(
                "ship",
                x,
                y,
                length_m,
                length_m * rng.uniform(0.28, 0.36),
                rng.uniform(-180, 180),
                allowed=WATER,
                context="lake",
                style="boat",
            )

    def _ships_on_river(self, river: Polyline) -> None:
        rng = self.rng
        pts = river.points
        seg, seg_len, cum, total = _measure(pts)
        if total <= 0:
            return
        width_m = river.width_m
        for _ in range(self._count(total * self.gsd / 160.0)):
            s = rng.uniform(0.0, total)
            k = min(bisect.bisect_right(cum, s) - 1, len(seg) - 1)
            t = (s - cum[k]) / max(seg_len[k], 1e-9)
            (px, py), (sx, sy) = pts[k], seg[k]
            x, y = px + t * sx, py + t * sy
            dx, dy = sx / max(seg_len[k], 1e-9), sy / max(seg_len[k], 1e-9)
            max_len = min(110.0, width_m * 2.4)
            length_m = rng.uniform(8.0, max(8.5, max_len))
            breadth_m = length_m * rng.uniform(0.2, 0.28)
            if breadth_m > 0.42 * width_m:
                breadth_m = 0.42 * width_m
                length_m = breadth_m / 0.24
            moored = rng.random() < 0.45
            room = (width_m / 2 - breadth_m / 2 - 1.0) / self.gsd
            offset = rng.choice((-1.0, 1.0)) * room if moored else rng.uniform(-0.4, 0.4) * room
            heading = math.degrees(math.atan2(dy, dx)) + (180.0 if rng.random() < 0.5 else 0.0)
            style = "boat" if length_m < 40 else rng.choice(("cargo", "tanker"))
            self.place(
                "ship",
                x - dy * offset,
                y + dx * offset,
                length_m,
                breadth_m,
                heading,
                allowed=WATER,
                context="moored" if moored else "underway",
                style=style,
            )

    def _parking(self, region: Region) -> None:
        rng = self.rng
        random = rng.random  # rng.uniform(lo, hi) written out as lo + (hi - lo) * random() (hot: every stall)
        gsd = self.gsd
        width, height = self.width, self.height
        assert region.frame is not None
        fill = min(1.0, rng.uniform(0.3, 0.9) * self.density)
        for stalls in stall_rows(region.frame, region.angle, gsd):
            if not stalls:
                continue
            heading = stalls[0][2]  # one per row
            a = math.radians(heading)
            ca, sa = math.cos(a), math.sin(a)
            for x, y, _ in stalls:
                if random() > fill:
                    continue
                jitter = (-0.25 + 0.5 * random()) / gsd
                cx, cy = x + jitter * ca, y + jitter * sa
                length_m = 3.9 + (5.0 - 3.9) * random()
                angle = heading + (-3.0 + 6.0 * random())
                if not (0 <= cx < width and 0 <= cy < height):
                    continue  # place() turns down a centre off the image before it draws anything
                self.place(
                    "small-vehicle",
                    cx,
                    cy,
                    length_m,
                    1.85,
                    angle,
                    allowed=PARKING,
                    context="parking",
                    style="car",
                    pad_m=0.15,
                )

    def _road_vehicles(self, road: Polyline) -> None:
        rng = self.rng
        # rng.uniform(lo, hi) written out as lo + (hi - lo) * random(), rng.choice(seq) as
        # seq[_randbelow(len(seq))]: the same draws and floats, without the Python calls (hot: every vehicle)
        random, randbelow = rng.random, rng._randbelow
        gsd = self.gsd
        width, height = self.width, self.height
        pts = road.points
        seg, seg_len, cum, total = _measure(pts)
        if total <= 0:
            return
        major = road.kind == "major-road"
        lanes = (1.75, 5.25) if major else (1.75,)
        rate = 1 / 28.0 if major else 1 / 55.0
        kerb_m = road.width_m / 2 - 1.2
        last = len(seg) - 1
        for _ in range(self._count(total * gsd * rate)):
            s = 0.0 + (total - 0.0) * random()
            k = min(bisect.bisect_right(cum, s) - 1, last)
            t = (s - cum[k]) / max(seg_len[k], 1e-9)
            (px, py), (sx, sy) = pts[k], seg[k]
            x, y = px + t * sx, py + t * sy
            dx, dy = sx / max(seg_len[k], 1e-9), sy / max(seg_len[k], 1e-9)
            side = (-1.0, 1.0)[randbelow(2)]
            lane_m = lanes[randbelow(len(lanes))]
            parked = not major and random() < 0.3
            if parked:
                lane_m = kerb_m
            offset = side * lane_m / gsd
            # right-hand traffic: the lane right of the travel direction (positive offset) goes forward
            heading = (
                math.degrees(math.atan2(dy, dx)) + (0.0 if side > 0 else 180.0) + (-2.0 + 4.0 * random())
            )
            large = random() < (0.16 if major else 0.06)
            cx, cy = x - dy * offset, y + dx * offset
            if large:
                bus = random() < 0.3
                length_m = 11.0 + (13.5 - 11.0) * random() if bus else 7.5 + (18.0 - 7.5) * random()
            else:
                length_m = 3.9 + (5.4 - 3.9) * random()
            if not (0 <= cx < width and 0 <= cy < height):
                continue  # place() turns down a centre off the image before it draws anything
            if large:
                self.place(
                    "large-vehicle",
                    cx,
                    cy,
                    length_m,
                    2.55,
                    heading,
                    allowed=ON_ROAD,
                    context="road",
                    style="bus" if bus else "truck",
                )
            else:
                self.place(
                    "small-vehicle",
                    cx,
                    cy,
                    length_m,
                    1.85,
                    heading,
                    allowed=ON_ROAD,
                    context="parked-roadside" if parked else "road",
                    style="car",
                )


def _measure(
    points: Sequence[Sequence[float]],
) -> tuple[list[tuple[float, float]], list[float], list[float], float]:
    """Segment vectors, segment lengths, cumulative lengths (from 0) and total length of a polyline.

    Plain Python for these short lines (numpy's per-call overhead dominated), with numpy's exact results: abs() of
    a complex is C's hypot() like np.hypot (math.hypot differs in the last bit), accumulate() adds in the order
    np.cumsum does, and the total is numpy's pairwise sum, which adds fewer than 8 values one after another (the
    last cumulative length).
    """
    seg = [(q[0] - p[0], q[1] - p[1]) for p, q in pairwise(points)]
    seg_len = [abs(complex(sx, sy)) for sx, sy in seg]
    cum = list(accumulate(seg_len, initial=0.0))
    # np.add.reduce is np.sum without its Python wrapper
    return seg, seg_len, cum, cum[-1] if len(seg_len) < 8 else float(np.add.reduce(seg_len))


def _outline_px(
    outline: Sequence[tuple[float, float]],
    cx: float,
    cy: float,
    hlc: float,
    hls: float,
    hbs: float,
    hbc: float,
) -> list[list[float]]:
    """An outline from the unit frame to pixels, rounded like :func:`round2_all`, in one pass (hot: every car).

    A vertex ``(u, v)`` goes to ``(cx + u * hlc - v * hbs, cy + u * hls + v * hbc)``, with ``hlc = length / 2 *
    cos``, ``hls = length / 2 * sin``, ``hbs = breadth / 2 * sin``, ``hbc = breadth / 2 * cos``.
    """
    if not (type(cx) is type(cy) is type(hlc) is type(hls) is type(hbs) is type(hbc) is float):
        # other number types (numpy scalars ...) keep round2_all's float() conversions
        flat = round2_all([q for u, v in outline for q in (cx + u * hlc - v * hbs, cy + u * hls + v * hbc)])
        return [[flat[i], flat[i + 1]] for i in range(0, len(flat), 2)]
    nearest = _NEAREST
    shape = []
    for u, v in outline:
        x = cx + u * hlc - v * hbs
        y = cy + u * hls + v * hbc
        # round2 of each coordinate, inlined (see geometry.round2)
        scaled = x * 100.0
        n = scaled + nearest - nearest
        x = n / 100 if -0.4999 < scaled - n < 0.4999 and -1e12 < scaled < 1e12 else round(x, 2) + 0.0
        scaled = y * 100.0
        n = scaled + nearest - nearest
        y = n / 100 if -0.4999 < scaled - n < 0.4999 and -1e12 < scaled < 1e12 else round(y, 2) + 0.0
        shape.append([x, y])
    return shape


def _boxes_meet(p: Sequence[Sequence[float]], q: Sequence[Sequence[float]], pad: float) -> bool:
    """``polys_overlap(p, q, pad, rectangles=True)`` for two oriented boxes (4 corners each), unrolled: the same
    axes, projections and comparisons (hot: every near pair of candidate and placed object)."""
    (a0x, a0y), (a1x, a1y), (a2x, a2y), (a3x, a3y) = p[0], p[1], p[2], p[3]
    (b0x, b0y), (b1x, b1y), (b2x, b2y), (b3x, b3y) = q[0], q[1], q[2], q[3]
    # the first two edges of each box: opposite edges give the same axes
    for x1, y1, x2, y2 in (
        (a0x, a0y, a1x, a1y),
        (a1x, a1y, a2x, a2y),
        (b0x, b0y, b1x, b1y),
        (b1x, b1y, b2x, b2y),
    ):
        nx, ny = y1 - y2, x2 - x1
        norm = math.hypot(nx, ny)
        if norm == 0.0:
            continue
        nx, ny = nx / norm, ny / norm
        dp0, dp1, dp2, dp3 = (
            a0x * nx + a0y * ny,
            a1x * nx + a1y * ny,
            a2x * nx + a2y * ny,
            a3x * nx + a3y * ny,
        )
        dq0, dq1, dq2, dq3 = (
            b0x * nx + b0y * ny,
            b1x * nx + b1y * ny,
            b2x * nx + b2y * ny,
            b3x * nx + b3y * ny,
        )
        if max(dp0, dp1, dp2, dp3) + pad <= min(dq0, dq1, dq2, dq3) or max(dq0, dq1, dq2, dq3) + pad <= min(
            dp0, dp1, dp2, dp3
        ):
            return False
    return True


def _weighted(rng: random.Random, choices: Sequence[tuple[str, float]], total: float | None = None) -> str:
    if total is None:
        total = sum(w for _, w in choices)
    r = rng.random() * total
    for name, w in choices:
        if r < w:
            return name
        r -= w
    return choices[-1][0]


# the colour weights' sums, added in the same order as _weighted adds them
_COLOUR_TOTALS = {name: sum(w for _, w in spec.colours) for name, spec in CATEGORY_SPECS.items()}
