"""Bi-temporal pairs: the same place seen twice, with a structured list of what changed (one job: change).

:func:`generate_pair` draws a scene for date t0, then edits a copy for date t1 (weeks to two years later):

* vehicles, ships and aircraft leave (``removed``), arrive (``added``) or move (``moved``: same id, new place of the
  same kind: another lane, stall, stand or stretch of river);
* buildings are occasionally ``demolished`` or get a new roof colour (``recoloured``); tanks are repainted;
* a vegetated block may be ``vegetation-cleared`` (becomes bare soil), often followed by ``new-building`` records
  for the houses built on it.

Every :class:`Change` names its target (object id or region id), category or land-cover kind, the state before and
after, and the pixel box of the changed area. Differences that are *not* changes: the second acquisition has its own
date, sun (so shadows differ), season (vegetation colour), view angle and clouds. :func:`change_mask` rasterises the
changed areas (object outlines before and after, changed regions) for change-detection training.

Example:
    >>> t0, t1, changes = generate_pair(3, size=128)
    >>> t0.origin == t1.origin and t0.acquisition.timestamp < t1.acquisition.timestamp
    True
    >>> {c.kind for c in changes} <= set(CHANGE_KINDS)
    True
"""

from __future__ import annotations

import copy
import datetime as _dt
import random
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from rszoo.data.synth.categories import LANDCOVER_CLASSES, category_rgb
from rszoo.data.synth.generate import generate_scene
from rszoo.data.synth.graph import Acquisition, Scene, SceneObject
from rszoo.data.synth.placement import Placer
from rszoo.data.synth.raster import pil_points
from rszoo.data.synth.seeding import stream
from rszoo.data.synth.sun import parse_timestamp

__all__ = ["CHANGE_KINDS", "Change", "change_mask", "generate_pair"]

CHANGE_KINDS = ("added", "removed", "moved", "recoloured", "new-building", "demolished", "vegetation-cleared")
_MOBILE = {
    # category: (p_removed, p_moved)
    "small-vehicle": (0.3, 0.25),
    "large-vehicle": (0.3, 0.25),
    "ship": (0.3, 0.3),
    "plane": (0.3, 0.2),
    "helicopter": (0.35, 0.2),
}
_RECOLOUR = {"building": ("gray", "red", "white", "blue", "brown"), "storage-tank": ("white", "gray")}


@dataclass
class Change:
    """One change between t0 and t1.

    Attributes:
        kind: one of :data:`CHANGE_KINDS`.
        target: ``object`` or ``region``.
        id: object id (kept across dates) or region id.
        category: object category, or the region's land-cover kind at t0.
        before: state at t0 (``None`` for additions): object ``center/angle/hbox/colour`` or region ``kind``.
        after: state at t1 (``None`` for removals).
        hbox: ``[x1, y1, x2, y2]`` around the changed area (union of before and after), pixels.
    """

    kind: str
    target: str
    id: int
    category: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    hbox: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, obj: dict[str, Any], where: str = "change") -> Change:
        missing = [k for k in ("kind", "target", "id", "category") if k not in obj]
        if missing:
            raise ValueError(f"{where}: missing keys {missing}")
        if obj["kind"] not in CHANGE_KINDS:
            raise ValueError(f"{where}: kind {obj['kind']!r} is not one of {list(CHANGE_KINDS)}")
        return cls(**{k: obj[k] for k in (f.name for f in fields(cls)) if k in obj})


def _state(obj: SceneObject) -> dict[str, Any]:
    return {
        "center": list(obj.center),
        "angle": obj.angle,
        "hbox": list(obj.hbox),
        "colour": obj.colour,
        "rgb": list(obj.rgb),
        "size_class": obj.size_class,
    }


def _union(a: list[float], b: list[float]) -> list[float]:
    return [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]


def _point_in_polygon(x: float, y: float, poly: list[list[float]]) -> bool:
    inside = False
    n = len(poly)
    for i in range(n):
        x1, y1 = poly[i]
        x2, y2 = poly[(i + 1) % n]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _later_acquisition(
    acq: Acquisition, rng: random.Random, days: int | None, cloud_cover: float
) -> Acquisition:
    from rszoo.data.synth.acquire import MIN_SUN_ELEVATION
    from rszoo.data.synth.sun import solar_position

    t0 = parse_timestamp(acq.timestamp)
    for attempt in range(40):
        gap = days if days is not None else rng.randint(30, 730)
        t = t0 + _dt.timedelta(days=gap + (attempt if days is not None else 0), minutes=rng.randint(-40, 40))
        stamp = t.strftime("%Y-%m-%dT%H:%M:%SZ")
        sun = solar_position(acq.lat, acq.lon, stamp)
        if sun[1] >= MIN_SUN_ELEVATION:
            break
    off_nadir = min(30.0, abs(rng.gauss(0.0, 12.0)))
    return Acquisition.at(
        acq.lat,
        acq.lon,
        stamp,
        gsd=acq.gsd,
        off_nadir=off_nadir,
        cloud_cover=cloud_cover,
        cloud_seed=rng.randrange(1 << 31),
        sun=sun,
    )


def generate_pair(
    seed: int,
    size: int = 256,
    *,
    days: int | None = None,
    cloud_cover: tuple[float, float] = (0.0, 0.0),
    change_rate: float = 1.0,
    **scene_options: Any,
) -> tuple[Scene, Scene, list[Change]]:
    """Two dates of one place and the list of changes between them.

    Args:
        seed: pair seed.
        size: image size in pixels.
        days: days between the acquisitions (default: 30..730, drawn).
        cloud_cover: cloud fractions at t0 and t1.
        change_rate: scales the probabilities of every change (0 = nothing changes but the acquisition).
        **scene_options: passed to :func:`~rszoo.data.synth.generate.generate_scene` for t0 (``gsd``, ``landuse``,
            ``density`` ...).

    Returns:
        ``(scene_t0, scene_t1, changes)``; object ids persist across dates, new objects get new ids.
    """
    if change_rate < 0:
        raise ValueError(f"change_rate must be >= 0, got {change_rate}")
    scene_options.setdefault("acquisition", True)
    if not scene_options["acquisition"]:
        raise ValueError("bi-temporal pairs need acquisitions (dates); do not pass acquisition=False")
    t0 = generate_scene(seed, size, cloud_cover=cloud_cover[0], scene_id=f"pair-{seed}-t0", **scene_options)
    rng = stream(seed, "pair")
    assert t0.acquisition is not None
    acq1 = _later_acquisition(t0.acquisition, rng, days, cloud_cover[1])
    regions = copy.deepcopy(t0.regions)
    changes: list[Change] = []

    # land-cover change: clear one vegetated block that has no objects on it
    cleared = None
    if rng.random() < 0.4 * change_rate:
        candidates = [
            r
            for r in regions
            if r.parent is None
            and r.kind in ("forest", "grassland", "cropland")
            and not any(_point_in_polygon(o.center[0], o.center[1], r.polygon) for o in t0.objects)
        ]
        if candidates:
            cleared = rng.choice(candidates)
            xs = [p[0] for p in cleared.polygon]
            ys = [p[1] for p in cleared.polygon]
            changes.append(
                Change(
                    "vegetation-cleared",
                    "region",
                    cleared.id,
                    cleared.kind,
                    {"kind": cleared.kind},
                    {"kind": "bare-soil"},
                    [min(xs), min(ys), max(xs), max(ys)],
                )
            )
            cleared.kind = "bare-soil"
            cleared.variant = 0

    placer = Placer(t0.width, t0.height, t0.gsd, regions, t0.rivers, t0.roads, stream(seed, "pair-objects"))
    for obj in t0.objects:
        placer.add_existing(copy.deepcopy(obj))
    by_id = {o.id: o for o in t0.objects}

    for obj in list(t0.objects):
        p_remove, p_move = _MOBILE.get(obj.category, (0.0, 0.0))
        r = rng.random()
        if obj.category == "building" and r < 0.04 * change_rate:
            placer.remove(obj)
            changes.append(
                Change("demolished", "object", obj.id, obj.category, _state(obj), None, list(obj.hbox))
            )
        elif r < p_remove * change_rate:
            placer.remove(obj)
            changes.append(
                Change("removed", "object", obj.id, obj.category, _state(obj), None, list(obj.hbox))
            )
        elif r < (p_remove + p_move) * change_rate:
            placer.remove(obj)
            moved = placer.relocate(obj)
            if moved is None:
                changes.append(
                    Change("removed", "object", obj.id, obj.category, _state(obj), None, list(obj.hbox))
                )
            else:
                changes.append(
                    Change(
                        "moved",
                        "object",
                        obj.id,
                        obj.category,
                        _state(obj),
                        _state(moved),
                        _union(obj.hbox, moved.hbox),
                    )
                )
        elif obj.category in _RECOLOUR and rng.random() < 0.06 * change_rate:
            new_colour = rng.choice([c for c in _RECOLOUR[obj.category] if c != obj.colour])
            current = next(o for o in placer.objects if o.id == obj.id)
            current.colour = new_colour
            current.rgb = category_rgb(obj.category, new_colour)
            changes.append(
                Change(
                    "recoloured", "object", obj.id, obj.category, _state(obj), _state(current), list(obj.hbox)
                )
            )

    # arrivals: more vehicles on roads and in lots, a ship or two
    before_ids = {o.id for o in placer.objects}
    placer.density = 0.35 * change_rate
    for road in placer.roads:
        placer._road_vehicles(road)
    for region in placer.regions:
        if region.kind == "parking" and region.frame is not None:
            placer._parking(region)
    for river in placer.rivers:
        placer._ships_on_river(river)
    # construction on cleared land
    if cleared is not None and rng.random() < 0.7:
        xs = [p[0] for p in cleared.polygon]
        ys = [p[1] for p in cleared.polygon]
        world_angle = next((r.angle for r in regions if r.parent is None), 0.0)
        for _ in range(rng.randint(1, 4)):
            for _attempt in range(10):
                x, y = rng.uniform(min(xs), max(xs)), rng.uniform(min(ys), max(ys))
                length_m = rng.uniform(9.0, 24.0)
                built = placer.place(
                    "building",
                    x,
                    y,
                    length_m,
                    length_m * rng.uniform(0.55, 0.85),
                    world_angle,
                    allowed=frozenset({LANDCOVER_CLASSES.index("bare-soil")}),
                    context="construction",
                    style=rng.choice(("flat", "gable")),
                    height_m=rng.uniform(4.0, 10.0),
                )
                if built is not None:
                    changes.append(
                        Change(
                            "new-building",
                            "object",
                            built.id,
                            "building",
                            None,
                            _state(built),
                            list(built.hbox),
                        )
                    )
                    break
    built_ids = {c.id for c in changes if c.kind == "new-building"}
    for obj in placer.objects:
        if obj.id not in before_ids and obj.id not in by_id and obj.id not in built_ids:
            changes.append(Change("added", "object", obj.id, obj.category, None, _state(obj), list(obj.hbox)))

    objects = sorted(placer.objects, key=lambda o: o.id)
    t1 = Scene(
        id=f"pair-{seed}-t1",
        seed=t0.seed,
        width=t0.width,
        height=t0.height,
        gsd=t0.gsd,
        origin=t0.origin,
        world_seed=t0.world_seed,
        regions=regions,
        roads=copy.deepcopy(t0.roads),
        rivers=copy.deepcopy(t0.rivers),
        objects=objects,
        acquisition=acq1,
        generator=t0.generator,
    )
    changes.sort(key=lambda c: (c.target, c.id, CHANGE_KINDS.index(c.kind)))
    return t0, t1, changes


def change_mask(t0: Scene, t1: Scene, changes: list[Change]) -> np.ndarray:
    """Boolean ``H x W`` mask of changed pixels: outlines of changed objects at both dates and changed regions."""
    img = Image.new("L", (t0.width, t0.height), 0)
    draw = ImageDraw.Draw(img)
    objs0 = {o.id: o for o in t0.objects}
    objs1 = {o.id: o for o in t1.objects}
    regions0 = {r.id: r for r in t0.regions}
    for change in changes:
        if change.target == "region":
            region = regions0.get(change.id)
            if region is not None:
                draw.polygon(pil_points(region.polygon, 0, 0), fill=255)
            continue
        for objs in (objs0, objs1):
            obj = objs.get(change.id)
            if obj is not None:
                draw.polygon(pil_points(obj.shape, 0, 0), fill=255)
    return np.asarray(img) > 0
