"""The scene graph: dataclasses for a synthetic overhead scene and its exact JSON round trip.

A :class:`Scene` is everything that is true about one image: land-cover regions (polygons), roads and rivers
(polylines with a width), objects (oriented boxes, masks, colours, sizes) and, optionally, the acquisition (date, sun,
view angle, clouds). Rendering and text generation read only the graph, so the graph is the ground truth.

Coordinates are pixels of the scene image (see :mod:`rszoo.data.synth.geometry` for the convention); ``origin`` is
the world position of pixel corner ``(0, 0)`` in metres (world x east, world y south) and ``gsd`` is metres per pixel.

Example:
    >>> from rszoo.data.synth import generate_scene
    >>> scene = generate_scene(3, size=128)
    >>> Scene.from_dict(scene.to_dict()) == scene
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from rszoo.data.synth.categories import CATEGORY_SPECS, COLOUR_RGB, LANDCOVER_KINDS, SIZE_CLASSES

__all__ = ["Acquisition", "Polyline", "Region", "Scene", "SceneObject", "rasterise_polygon"]


def _require(obj: dict[str, Any], keys: tuple[str, ...], what: str) -> None:
    if not isinstance(obj, dict):
        raise ValueError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise ValueError(f"{what}: missing keys {missing}; required keys are {list(keys)}")


def _known(cls: type, obj: dict[str, Any], what: str) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(obj) - names)
    if unknown:
        raise ValueError(f"{what}: unknown keys {unknown}; allowed keys are {sorted(names)}")
    return dict(obj)


def rasterise_polygon(points: list[list[float]], height: int, width: int) -> np.ndarray:
    """Boolean ``height x width`` mask of the pixels whose centres fall inside ``points`` (PIL scanline fill).

    Vertices are snapped to the pixel grid the same way the renderer snaps them, so masks and pictures agree.
    """
    from PIL import Image, ImageDraw

    img = Image.new("1", (width, height), 0)
    flat = [int(np.floor(v)) for p in points for v in p]
    ImageDraw.Draw(img).polygon(flat, fill=1)
    return np.asarray(img, dtype=bool)


@dataclass
class Acquisition:
    """When, where and how the image was taken.

    Attributes:
        lat: latitude of the scene centre in degrees (north positive).
        lon: longitude of the scene centre in degrees (east positive).
        timestamp: UTC time, ISO-8601 (``2023-06-14T10:32:00Z``).
        gsd: ground sample distance in metres per pixel at nadir.
        sun_azimuth: degrees clockwise from north, derived from lat/lon/timestamp (see :mod:`.sun`).
        sun_elevation: degrees above the horizon, derived likewise.
        off_nadir: view angle from vertical in degrees (lowers contrast through a longer air path).
        cloud_cover: fraction of the image under cloud (``alpha >= 0.5``), 0..1.
        cloud_seed: seed of the cloud pattern.
    """

    lat: float
    lon: float
    timestamp: str
    gsd: float
    sun_azimuth: float
    sun_elevation: float
    off_nadir: float = 0.0
    cloud_cover: float = 0.0
    cloud_seed: int = 0

    @classmethod
    def at(
        cls,
        lat: float,
        lon: float,
        timestamp: str,
        gsd: float,
        off_nadir: float = 0.0,
        cloud_cover: float = 0.0,
        cloud_seed: int = 0,
        *,
        sun: tuple[float, float] | None = None,
    ) -> Acquisition:
        """Build an acquisition whose sun angles are computed from ``lat``, ``lon`` and ``timestamp``.

        ``sun`` may pass them in, already computed: ``(azimuth, elevation)`` exactly as
        :func:`~rszoo.data.synth.sun.solar_position` gives them for this place and time.

        Example:
            >>> acq = Acquisition.at(40.0, 0.0, "2021-06-21T12:00:00Z", gsd=0.5)
            >>> round(acq.sun_elevation), round(acq.sun_azimuth)
            (73, 179)
        """
        from rszoo.data.synth.sun import solar_position

        if not 0.0 <= cloud_cover <= 1.0:
            raise ValueError(f"cloud_cover must be in [0, 1], got {cloud_cover}")
        azimuth, elevation = solar_position(lat, lon, timestamp) if sun is None else sun
        return cls(
            lat=round(lat, 6),
            lon=round(lon, 6),
            timestamp=timestamp,
            gsd=gsd,
            sun_azimuth=round(azimuth, 3),
            sun_elevation=round(elevation, 3),
            off_nadir=round(off_nadir, 3),
            cloud_cover=round(cloud_cover, 4),
            cloud_seed=int(cloud_seed),
        )

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, obj: dict[str, Any], where: str = "acquisition") -> Acquisition:
        _require(obj, ("lat", "lon", "timestamp", "gsd", "sun_azimuth", "sun_elevation"), where)
        return cls(**_known(cls, obj, where))


@dataclass
class Region:
    """A land-cover polygon. Blocks come first; sub-regions (parking lots, aprons, lakes) follow and cover them.

    Attributes:
        id: index within the scene.
        kind: one of :data:`~rszoo.data.synth.categories.LANDCOVER_KINDS`.
        polygon: vertices ``[[x, y], ...]`` in pixels, clipped to the image.
        parent: id of the block this sub-region lies in, or ``None`` for a block.
        variant: 0..2, a tint variation of the material.
        angle: orientation of the region's pattern (field furrows, parking rows) in degrees.
        frame: for rectangular sub-regions (parking lots, aprons, parks), the unclipped rectangle
            ``[cx, cy, half_u, half_v]`` in pixels along ``angle``; stall and stand layouts derive from it.
    """

    id: int
    kind: str
    polygon: list[list[float]]
    parent: int | None = None
    variant: int = 0
    angle: float = 0.0
    frame: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, obj: dict[str, Any], where: str = "region") -> Region:
        _require(obj, ("id", "kind", "polygon"), where)
        if obj["kind"] not in LANDCOVER_KINDS:
            raise ValueError(f"{where}: kind {obj['kind']!r} is not one of {list(LANDCOVER_KINDS)}")
        return cls(**_known(cls, obj, where))


@dataclass
class Polyline:
    """A road or river centre line with its width.

    Attributes:
        id: index within the scene.
        kind: ``major-road``, ``minor-road`` or ``river``.
        width: full width in pixels.
        width_m: full width in metres.
        points: ``[[x, y], ...]`` in pixels; the line may start/end outside the image so it continues across the
            tile border (neighbouring tiles of the same world share these world-aligned vertices).
    """

    id: int
    kind: str
    width: float
    width_m: float
    points: list[list[float]]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, obj: dict[str, Any], where: str = "polyline") -> Polyline:
        _require(obj, ("id", "kind", "width", "width_m", "points"), where)
        if obj["kind"] not in ("major-road", "minor-road", "river"):
            raise ValueError(
                f"{where}: kind {obj['kind']!r} is not one of ['major-road', 'minor-road', 'river']"
            )
        return cls(**_known(cls, obj, where))


@dataclass
class SceneObject:
    """One object instance.

    Attributes:
        id: index within the scene (stable across the two dates of a bi-temporal pair).
        category: one of :data:`~rszoo.data.synth.categories.CATEGORIES`.
        colour: colour name (captions/VQA), ``rgb``: the RGB used to draw it.
        size_class: ``small``/``medium``/``large`` relative to the category.
        center: ``(x, y)`` in pixels.
        width: box side along the heading in pixels (the object's length).
        height: box side across the heading in pixels (the object's breadth).
        angle: heading in degrees, clockwise on screen from +x, in ``[-180, 180)``; a ship's bow, a plane's nose.
        poly: the oriented box, 4 corners clockwise on screen starting at the smallest y (then x).
        hbox: ``[x1, y1, x2, y2]`` tight around ``poly``, clipped to the image.
        shape: the mask polygon (the object's outline: a cross for planes, a disc for tanks ...), inside ``poly``.
        height_m: physical height above ground in metres (shadow length); not the box side ``height``.
        context: where it was placed (``road``, ``parking``, ``river``, ``apron``, ``yard`` ...).
        style: drawing variant (``gable``/``flat`` roofs, ``bus``/``truck``, ``cargo``/``boat`` ...).
    """

    id: int
    category: str
    colour: str
    rgb: tuple[int, int, int]
    size_class: str
    center: tuple[float, float]
    width: float
    height: float
    angle: float
    poly: list[list[float]]
    hbox: list[float]
    shape: list[list[float]]
    height_m: float = 0.0
    context: str = ""
    style: str = ""

    @property
    def area(self) -> float:
        """Oriented-box area in square pixels."""
        return self.width * self.height

    def mask(self, height: int, width: int) -> np.ndarray:
        """Rasterise :attr:`shape` to a ``height x width`` boolean array (the image size)."""
        return rasterise_polygon(self.shape, height, width)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["rgb"] = list(self.rgb)
        d["center"] = list(self.center)
        return d

    @classmethod
    def from_dict(cls, obj: dict[str, Any], where: str = "object") -> SceneObject:
        _require(
            obj,
            (
                "id",
                "category",
                "colour",
                "rgb",
                "size_class",
                "center",
                "width",
                "height",
                "angle",
                "poly",
                "hbox",
            ),
            where,
        )
        d = _known(cls, obj, where)
        if d["category"] not in CATEGORY_SPECS:
            raise ValueError(f"{where}: category {d['category']!r} is not one of {list(CATEGORY_SPECS)}")
        if d["colour"] not in COLOUR_RGB:
            raise ValueError(f"{where}: colour {d['colour']!r} is not one of {list(COLOUR_RGB)}")
        if d["size_class"] not in SIZE_CLASSES:
            raise ValueError(f"{where}: size_class {d['size_class']!r} is not one of {list(SIZE_CLASSES)}")
        if len(d["poly"]) != 4 or len(d["hbox"]) != 4:
            raise ValueError(f"{where}: poly needs 4 corners and hbox 4 numbers")
        d["rgb"] = tuple(int(v) for v in d["rgb"])
        d["center"] = tuple(float(v) for v in d["center"])
        d.setdefault("shape", [list(p) for p in d["poly"]])
        return cls(**d)


@dataclass
class Scene:
    """A synthetic overhead scene: the full ground truth of one image.

    Attributes:
        id: scene identifier (file stem in data sets).
        seed: the seed it was generated from.
        width, height: image size in pixels.
        gsd: metres per pixel.
        origin: world position (metres, x east / y south) of pixel corner ``(0, 0)``.
        world_seed: seed of the world this tile was cut from (tiles of one world join seamlessly).
        regions: land-cover polygons, drawn in order.
        roads: road centre lines.
        rivers: river centre lines.
        objects: object instances.
        acquisition: date/sun/view/clouds, or ``None`` (then no shadows and no clouds are drawn).
        generator: generator version that made it.
    """

    id: str
    seed: int
    width: int
    height: int
    gsd: float
    origin: tuple[float, float]
    world_seed: int
    regions: list[Region] = field(default_factory=list)
    roads: list[Polyline] = field(default_factory=list)
    rivers: list[Polyline] = field(default_factory=list)
    objects: list[SceneObject] = field(default_factory=list)
    acquisition: Acquisition | None = None
    generator: str = ""

    def object_by_id(self, object_id: int) -> SceneObject:
        """The object with ``id == object_id`` (raises ``KeyError`` naming the scene if absent)."""
        for obj in self.objects:
            if obj.id == object_id:
                return obj
        raise KeyError(f"scene {self.id!r} has no object with id {object_id}")

    def object_mask(self, object_id: int) -> np.ndarray:
        """Full-image boolean mask of one object (its outline rasterised at the scene's size)."""
        return self.object_by_id(object_id).mask(self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists and plain numbers only)."""
        return {
            "id": self.id,
            "seed": self.seed,
            "width": self.width,
            "height": self.height,
            "gsd": self.gsd,
            "origin": list(self.origin),
            "world_seed": self.world_seed,
            "generator": self.generator,
            "acquisition": None if self.acquisition is None else self.acquisition.to_dict(),
            "regions": [r.to_dict() for r in self.regions],
            "roads": [r.to_dict() for r in self.roads],
            "rivers": [r.to_dict() for r in self.rivers],
            "objects": [o.to_dict() for o in self.objects],
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any], where: str = "scene") -> Scene:
        """Rebuild a scene from :meth:`to_dict` output; errors name the offending key (``where`` prefixes them)."""
        _require(obj, ("id", "seed", "width", "height", "gsd", "origin", "world_seed"), where)
        d = _known(cls, obj, where)
        acq = d.get("acquisition")
        return cls(
            id=str(d["id"]),
            seed=int(d["seed"]),
            width=int(d["width"]),
            height=int(d["height"]),
            gsd=float(d["gsd"]),
            origin=(float(d["origin"][0]), float(d["origin"][1])),
            world_seed=int(d["world_seed"]),
            regions=[
                Region.from_dict(r, f"{where}.regions[{i}]") for i, r in enumerate(d.get("regions", []))
            ],
            roads=[Polyline.from_dict(r, f"{where}.roads[{i}]") for i, r in enumerate(d.get("roads", []))],
            rivers=[Polyline.from_dict(r, f"{where}.rivers[{i}]") for i, r in enumerate(d.get("rivers", []))],
            objects=[
                SceneObject.from_dict(o, f"{where}.objects[{i}]") for i, o in enumerate(d.get("objects", []))
            ],
            acquisition=None if acq is None else Acquisition.from_dict(acq, f"{where}.acquisition"),
            generator=str(d.get("generator", "")),
        )
