"""The world: seeded functions of world coordinates that define roads, rivers and land-cover blocks.

A world (one ``world_seed``) is an unbounded plane in metres (x east, y south). It is laid out on a rotated, gently
wavy street grid: family-A lines run along the rotated ``u`` axis (``v = f_i(u)``), family-B lines along ``v``
(``u = g_j(v)``). Each line is a major road, a minor road or just a parcel boundary; the cells between lines are
land-cover *blocks* (residential, industrial, cropland, forest ...), chosen from a smooth "urbanness" field so towns
and countryside cluster. Meandering rivers run through wide bands of the world.

Every line, block and river is a pure function of ``(world_seed, index)``, and curves are sampled at world-aligned
positions (multiples of :data:`EDGE_STEP_M` along the line), so two tiles cut from the same world draw the very same
vertices where they meet: roads and rivers continue across tile borders.

:func:`layout` cuts a window out of the world and returns its regions, roads, rivers, blocks (with local frames for
object placement) and the sites where roads cross rivers (bridges).

Example:
    >>> lay = layout(world_seed=7, origin=(1000.0, 2000.0), gsd=0.5, width=256, height=256)
    >>> all(r.kind in ("major-road", "minor-road") for r in lay.roads)
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import accumulate

import numpy as np

from rszoo.data.synth.geometry import round2, round_points
from rszoo.data.synth.graph import Polyline, Region
from rszoo.data.synth.seeding import (
    LightRandom,
    light,
    light_draws,
    mix_array,
    mix_on,
    prefix,
    unit_of,
    unit_on,
)

__all__ = [
    "EDGE_STEP_M",
    "ROAD_WIDTH_M",
    "BlockInfo",
    "BridgeSite",
    "Layout",
    "SubRegion",
    "World",
    "block_kind",
    "find_landuse",
    "get_world",
    "layout",
    "river_centre",
]

EDGE_STEP_M = 10.0  # world-aligned sampling step of every curve
_CORNER_ITERATIONS = 5  # fixed-point steps for line intersections (line slopes < 0.1: error < 1e-5 m)
ROAD_WIDTH_M = {"major-road": 14.0, "minor-road": 7.0}
_LINE_KINDS = ("none", "minor-road", "major-road")
_RIVER_BAND_M = 1400.0

# Land-use mixes for rural, suburban and urban parts of a world; the urbanness field blends them.
_RURAL = {
    "forest": 0.3,
    "cropland": 0.38,
    "grassland": 0.2,
    "bare-soil": 0.05,
    "residential": 0.05,
    "industrial": 0.02,
}
_SUBURB = {
    "residential": 0.36,
    "grassland": 0.14,
    "cropland": 0.08,
    "forest": 0.08,
    "industrial": 0.17,
    "bare-soil": 0.07,
    "airport": 0.1,
}
_URBAN = {"residential": 0.6, "industrial": 0.23, "grassland": 0.09, "bare-soil": 0.05, "airport": 0.03}


@dataclass(frozen=True)
class World:
    """Global parameters of one world (all derived from its seed).

    Attributes:
        seed: the world seed.
        angle: rotation of the street grid, degrees clockwise on screen from east.
        spacing_u: mean spacing of family-B lines (block length along ``u``) in metres.
        spacing_v: mean spacing of family-A lines (block depth along ``v``) in metres.
        lat0, lon0: geographic position of the world origin (for acquisitions and GeoTIFFs).
        urban_bias: shifts the urbanness field (negative = more rural world).
    """

    seed: int
    angle: float
    spacing_u: float
    spacing_v: float
    lat0: float
    lon0: float
    urban_bias: float

    @cached_property
    def cos(self) -> float:
        return math.cos(math.radians(self.angle))

    @cached_property
    def sin(self) -> float:
        return math.sin(math.radians(self.angle))

    def to_uv(
        self, x: np.ndarray | float, y: np.ndarray | float
    ) -> tuple[np.ndarray | float, np.ndarray | float]:
        """World metres to grid coordinates."""
        c, s = self.cos, self.sin
        return x * c + y * s, -x * s + y * c

    def to_xy(
        self, u: np.ndarray | float, v: np.ndarray | float
    ) -> tuple[np.ndarray | float, np.ndarray | float]:
        """Grid coordinates to world metres."""
        c, s = self.cos, self.sin
        return u * c - v * s, u * s + v * c


@lru_cache(maxsize=1024)
def get_world(seed: int) -> World:
    """The world of ``seed`` (cached)."""
    rng = light(seed, "world")
    angle = 0.0 if rng.random() < 0.25 else rng.uniform(-40.0, 40.0)
    return World(
        seed=seed,
        angle=round(angle, 3),
        spacing_u=rng.uniform(130.0, 230.0),
        spacing_v=rng.uniform(110.0, 190.0),
        lat0=rng.uniform(-45.0, 58.0),
        lon0=rng.uniform(-179.0, 179.0),
        urban_bias=rng.uniform(-0.15, 0.25),
    )


# -- street-grid lines -------------------------------------------------------------------------------------------
def _lines(
    seed: int, a_lines: tuple[int, int], b_lines: tuple[int, int]
) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
    """Grid lines ``a_lines[0]..a_lines[1]`` of family A and ``b_lines[0]..b_lines[1]`` of family B: for each
    family, its lines' ``(base, amplitude, wavelength, phase)`` as the rows of a ``(4, n)`` array, and their kinds.

    Line ``index`` of ``family`` draws its parameters from ``light(seed, "line", family, index)``; all lines are
    drawn at once (:func:`light_draws`: the same values, without a Python-level hash and draws per line).
    """
    world = get_world(seed)
    n_a = a_lines[1] - a_lines[0] + 1
    index = np.array([*range(a_lines[0], a_lines[1] + 1), *range(b_lines[0], b_lines[1] + 1)])
    # the hash states after (seed, "line", family), one per line: only the index is folded in numpy
    states = np.array(
        [prefix(seed, "line", "A")] * n_a + [prefix(seed, "line", "B")] * (len(index) - n_a), dtype=np.uint64
    )
    spacing = np.array([world.spacing_v] * n_a + [world.spacing_u] * (len(index) - n_a))
    draws = light_draws(mix_array(states, index), 5).T
    params = np.empty((4, len(index)))
    # LightRandom.uniform(a, b) is a + (b - a) * random()
    np.add(index * spacing, (-0.12 + (0.12 - -0.12) * draws[0]) * spacing, out=params[0])
    np.multiply(0.0 + (0.035 - 0.0) * draws[1], spacing, out=params[1])
    np.add(500.0, (1400.0 - 500.0) * draws[2], out=params[2])
    np.add(0.0, (2.0 * math.pi - 0.0) * draws[3], out=params[3])
    kinds = ["major-road" if r < 0.16 else "minor-road" if r < 0.72 else "none" for r in draws[4].tolist()]
    return params[:, :n_a], kinds[:n_a], params[:, n_a:], kinds[n_a:]


@lru_cache(maxsize=4096)
def _line(seed: int, family: str, index: int) -> tuple[float, float, float, float]:
    """``(base, amplitude, wavelength, phase)`` of grid line ``index`` of ``family``: one line of :func:`_lines`
    (the same values, drawn in Python: cheaper than numpy for the few lines :func:`find_landuse` looks at)."""
    world = get_world(seed)
    spacing = world.spacing_v if family == "A" else world.spacing_u
    rng = LightRandom(mix_on(prefix(seed, "line", family), index))
    base = index * spacing + rng.uniform(-0.12, 0.12) * spacing
    amplitude = rng.uniform(0.0, 0.035) * spacing
    return base, amplitude, rng.uniform(500.0, 1400.0), rng.uniform(0.0, 2.0 * math.pi)


def _block_centre(seed: int, i: int, j: int) -> tuple[float, float]:
    """Grid coordinates ``(u, v)`` of the middle of block ``(i, j)``: halfway between its corners ``(i, j)`` and
    ``(i + 1, j + 1)``, the intersections of A-lines and B-lines found by the fixed-point iteration of
    :class:`_Grid` (used to aim :func:`find_landuse` at a block's centre)."""
    corners = []
    for a, b in (
        (_line(seed, "A", i), _line(seed, "B", j)),
        (_line(seed, "A", i + 1), _line(seed, "B", j + 1)),
    ):
        # plain floats and math.sin, without numpy's scalar overhead: the same operations as _Grid's, and a bit-equal
        # sine on the platforms tested (a last-bit difference elsewhere would only move the search's aim point)
        u, v = b[0], a[0]
        for _ in range(_CORNER_ITERATIONS):
            v = a[0] + a[1] * math.sin(2.0 * math.pi * u / a[2] + a[3])
            u = b[0] + b[1] * math.sin(2.0 * math.pi * v / b[2] + b[3])
        corners.append((u, v))
    (ua, va), (ub, vb) = corners
    return (ua + ub) / 2, (va + vb) / 2


# -- land use ----------------------------------------------------------------------------------------------------
@lru_cache(maxsize=65536)
def _urban_lattice(seed: int, i: int, j: int) -> float:
    return unit_on(prefix(seed, "urban"), i, j)


@lru_cache(maxsize=65536)
def _urbanness(seed: int, i: int, j: int) -> float:
    """Smooth value noise over block indices (lattice every 5 blocks), shifted by the world's urban bias."""
    cell = 5.0
    fi, fj = i / cell, j / cell
    i0, j0 = math.floor(fi), math.floor(fj)
    ti, tj = fi - i0, fj - j0
    ti, tj = ti * ti * (3.0 - 2.0 * ti), tj * tj * (3.0 - 2.0 * tj)  # smoothstep
    v00 = _urban_lattice(seed, i0, j0)
    v01 = _urban_lattice(seed, i0, j0 + 1)
    v10 = _urban_lattice(seed, i0 + 1, j0)
    v11 = _urban_lattice(seed, i0 + 1, j0 + 1)
    value = (v00 * (1 - tj) + v01 * tj) * (1 - ti) + (v10 * (1 - tj) + v11 * tj) * ti
    value = (value - 0.5) * 1.6 + 0.5 + get_world(seed).urban_bias
    # min(1.0, max(0.0, value)), without the two builtin calls (the same result for every non-NaN value)
    return 0.0 if value <= 0.0 else 1.0 if value >= 1.0 else value


# the land-use mixes blended below 0.5 urbanness and above: their kinds sorted (block_kind's order), each with its
# weight in the lower and the upper mix
_BLENDS = tuple(
    (kinds, tuple((a.get(k, 0.0), b.get(k, 0.0)) for k in kinds))
    for a, b in ((_RURAL, _SUBURB), (_SUBURB, _URBAN))
    for kinds in (sorted(set(a) | set(b)),)
)


@lru_cache(maxsize=65536)
def _landuse(seed: int, i: int, j: int) -> str:
    """The land-use kind of block ``(i, j)`` (:func:`block_kind` without the variant and pattern angle, which the
    search of :func:`find_landuse` does not need)."""
    u = _urbanness(seed, i, j)
    if u < 0.5:
        (kinds, pairs), t = _BLENDS[0], u / 0.5
    else:
        (kinds, pairs), t = _BLENDS[1], (u - 0.5) / 0.5
    # the weights and their sum as ``sum`` adds them up (0 + w0 + w1 + ...), in one plain loop
    weights = []
    total = 0.0
    s = 1 - t
    for wa, wb in pairs:
        w = s * wa + t * wb
        weights.append(w)
        total += w
    r = unit_on(prefix(seed, "block"), i, j) * total
    kind = kinds[-1]
    for k, w in zip(kinds, weights):
        if r < w:
            kind = k
            break
        r -= w
    return kind


@lru_cache(maxsize=65536)
def block_kind(seed: int, i: int, j: int) -> tuple[str, int, float]:
    """``(kind, variant, pattern_angle_offset)`` of block ``(i, j)``: the land use between A-lines i, i+1 and
    B-lines j, j+1."""
    variant = int(unit_on(prefix(seed, "variant"), i, j) * 3)
    angle = 90.0 if unit_on(prefix(seed, "furrow"), i, j) < 0.5 else 0.0
    return _landuse(seed, i, j), variant, angle


def _segment_present(seed: int, family: str, index: int, seg: int, kind: str) -> bool:
    """Whether the road on line ``index`` (of ``kind``, see :func:`_lines`) exists between cross lines ``seg`` and
    ``seg + 1``."""
    if kind == "none":
        return False
    # the two blocks this segment separates
    if family == "A":
        sides = (_landuse(seed, index - 1, seg), _landuse(seed, index, seg))
        urban = (_urbanness(seed, index - 1, seg) + _urbanness(seed, index, seg)) / 2
    else:
        sides = (_landuse(seed, seg, index - 1), _landuse(seed, seg, index))
        urban = (_urbanness(seed, seg, index - 1) + _urbanness(seed, seg, index)) / 2
    if kind == "major-road":
        return True
    if sides[0] == sides[1] == "forest" or sides[0] == sides[1] == "airport":
        return False
    return unit_on(prefix(seed, "segment", family), index, seg) < 0.3 + 0.65 * urban


# -- rivers ------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def _river(seed: int, family: str, band: int) -> tuple[float, ...] | None:
    """Parameters of the river in ``band`` of ``family`` (None when that band has no river)."""
    if unit_on(prefix(seed, "river?", family), band) >= (0.42 if family == "A" else 0.2):
        return None
    rng = light(seed, "river", family, band)
    base = band * _RIVER_BAND_M + rng.uniform(0.3, 0.7) * _RIVER_BAND_M
    return (
        base,
        rng.uniform(30.0, 120.0),
        rng.uniform(700.0, 1600.0),
        rng.uniform(0.0, 2 * math.pi),
        rng.uniform(5.0, 35.0),
        rng.uniform(220.0, 450.0),
        rng.uniform(0.0, 2 * math.pi),
        rng.uniform(16.0, 70.0),
    )


def river_centre(seed: int, family: str, band: int, t: np.ndarray) -> np.ndarray:
    """Cross-coordinate of the river centre line at positions ``t`` along its family's axis."""
    p = _river(seed, family, band)
    if p is None:
        raise ValueError(f"world {seed} has no river in band {band} of family {family}")
    base, a1, l1, p1, a2, l2, p2, _ = p
    return base + a1 * np.sin(2 * math.pi * t / l1 + p1) + a2 * np.sin(2 * math.pi * t / l2 + p2)


# -- the window layout -------------------------------------------------------------------------------------------
@dataclass
class SubRegion:
    """A sub-region of a block in pixel space (rotated rectangle or free polygon) and its region ids."""

    kind: str
    polygon: list[list[float]]
    region_ids: list[int]
    center: tuple[float, float] = (0.0, 0.0)
    half_u: float = 0.0
    half_v: float = 0.0
    angle: float = 0.0


@dataclass
class BlockInfo:
    """A block of the window with a local frame for object placement (all in pixels).

    ``center``/``half_u``/``half_v``/``angle`` describe the inscribed rectangle (inset from the wavy boundary and
    the road), whose long sides run along the grid direction ``angle``.
    """

    ij: tuple[int, int]
    kind: str
    variant: int
    region_ids: list[int]
    polygon: list[list[float]]
    center: tuple[float, float]
    half_u: float
    half_v: float
    angle: float
    seed: int
    subregions: list[SubRegion] = field(default_factory=list)


@dataclass
class BridgeSite:
    """Where a road centre line crosses a river centre line (pixels)."""

    x: float
    y: float
    road_angle: float
    road_width: float
    river_width: float
    crossing_sin: float


@dataclass
class Layout:
    """Regions, linear features and placement frames of one window of a world."""

    regions: list[Region]
    roads: list[Polyline]
    rivers: list[Polyline]
    blocks: list[BlockInfo]
    bridges: list[BridgeSite]


class _Frame:
    """Conversions between grid coordinates (metres) and the window's pixels."""

    def __init__(self, world: World, origin: tuple[float, float], gsd: float) -> None:
        self.world = world
        self.ox, self.oy = origin
        self.gsd = gsd
        self.cos, self.sin = world.cos, world.sin

    def uv_to_px(self, uv: np.ndarray) -> np.ndarray:
        return self.grid_to_px(uv[:, 0], uv[:, 1])

    def grid_to_px(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Pixels of grid coordinates given as two arrays of one shape: an array of that shape + ``(2,)``."""
        x, y = self.world.to_xy(u, v)
        # filled in place: np.stack's Python-level checks cost more than this arithmetic on small grids
        out = np.empty((*x.shape, 2))
        np.divide(x - self.ox, self.gsd, out=out[..., 0])
        np.divide(y - self.oy, self.gsd, out=out[..., 1])
        return out

    def point_to_px(self, u: float, v: float) -> tuple[float, float]:
        """One point in plain Python floats (the same arithmetic as :meth:`uv_to_px`, element by element)."""
        c, s = self.cos, self.sin  # World.to_xy inlined
        return (u * c - v * s - self.ox) / self.gsd, (u * s + v * c - self.oy) / self.gsd

    def px_to_uv(self, px: float, py: float) -> tuple[float, float]:
        u, v = self.world.to_uv(self.ox + px * self.gsd, self.oy + py * self.gsd)
        return float(u), float(v)


_OUTSIDE, _INSIDE, _CROSSING = 0, 1, 2


def _classify(points: np.ndarray, ends: list[int], width: int, height: int) -> list[int]:
    """Where each polygon lies against the image rectangle: ``_INSIDE``, ``_OUTSIDE`` or ``_CROSSING`` its border.

    The polygons are given concatenated: ``points[ends[k - 1]:ends[k]]`` is polygon ``k`` (none is empty).
    """
    if not ends:
        return []
    # bounding boxes of all polygons in one pass
    starts = [0, *ends[:-1]]
    x_lo, y_lo = np.minimum.reduceat(points, starts, axis=0).T.tolist()
    x_hi, y_hi = np.maximum.reduceat(points, starts, axis=0).T.tolist()
    return [
        _INSIDE
        if x_lo[k] >= 0 and y_lo[k] >= 0 and x_hi[k] <= width and y_hi[k] <= height
        else _OUTSIDE
        if x_hi[k] <= 0 or y_hi[k] <= 0 or x_lo[k] >= width or y_lo[k] >= height
        else _CROSSING
        for k in range(len(ends))
    ]


_POLYGON_TYPE = 3  # shapely.GeometryType.POLYGON (the enum's attribute lookup is slow Python code)


def _clip(
    points: np.ndarray, bounds: list[tuple[int, int]], width: int, height: int
) -> list[list[list[list[float]]]]:
    """Clip simple polygons ``points[start:end]`` (for each ``(start, end)`` of ``bounds``) that cross the image
    border to the image: for each, zero or more polygons (rounded vertices).

    All go through shapely in one vectorised call (shapely's per-call overhead is much larger than the clipping of
    a few small polygons).
    """
    out: list[list[list[list[float]]]] = [[] for _ in bounds]
    if not bounds:
        return out
    import shapely

    # one from_ragged_array call builds all polygons (cheaper than linearrings + polygons); its rings must be
    # closed, which linearrings would do: repeat the first vertex unless the last one already equals it
    firsts = [start for start, _ in bounds]
    is_open = np.logical_or.reduce(points[firsts] != points[[end - 1 for _, end in bounds]], axis=1).tolist()
    pieces, ring_ends, size = [], [0], 0
    for (start, end), open_ring in zip(bounds, is_open):
        pieces.append(points[start:end])
        size += end - start
        if open_ring:
            pieces.append(points[start : start + 1])
            size += 1
        ring_ends.append(size)
    polygons = shapely.from_ragged_array(
        shapely.GeometryType.POLYGON,
        np.concatenate(pieces),
        (np.array(ring_ends), np.arange(len(bounds) + 1)),
    )
    clipped = shapely.clip_by_rect(polygons, 0.0, 0.0, float(width), float(height))
    types = shapely.get_type_id(clipped)
    if types.tolist().count(_POLYGON_TYPE) == len(types):
        # the usual case: every result is one polygon, so splitting into parts would change nothing
        parts, owner = clipped, np.arange(len(clipped))
    else:
        parts, owner = shapely.get_parts(clipped, return_index=True)
        types = shapely.get_type_id(parts)
    # polygons of at least half a pixel (empty ones have zero area; other parts are lines or points)
    keep = (types == _POLYGON_TYPE) & (shapely.area(parts) >= 0.5)
    parts, owner = parts[keep], owner[keep]
    if not len(parts):
        return out
    # exterior rings without their closing vertex, rounded in one pass
    rings = shapely.get_exterior_ring(parts)
    rounded = round_points(shapely.get_coordinates(rings))
    start = 0
    for size, k in zip(shapely.get_num_coordinates(rings).tolist(), owner.tolist()):
        out[k].append(rounded[start : start + size - 1])
        start += size
    return out


def _blob_uv(seed: int, i: int, j: int, cu: float, cv: float, ru: float, rv: float) -> np.ndarray:
    """An irregular closed outline (a lake shore): an ellipse with smooth radial noise."""
    rng = LightRandom(mix_on(prefix(seed, "lake"), i, j))
    n = 28
    harmonics = [(k, rng.uniform(0.0, 0.18 / k), rng.uniform(0, 2 * math.pi)) for k in (2, 3, 5)]
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    r = 1.0 + sum(a * np.sin(k * t + p) for k, a, p in harmonics)
    return np.stack([cu + ru * r * np.cos(t), cv + rv * r * np.sin(t)], axis=1)


class _Grid:
    """All grid lines crossing a window, sampled once at world-aligned positions, and their intersections.

    A-lines ``i0..i1`` and B-lines ``j0..j1`` (inclusive); blocks are ``(i, j)`` with ``i0 <= i < i1``,
    ``j0 <= j < j1``. Every value is computed by the same vectorised expression whatever the window, so neighbouring
    windows agree on shared vertices.
    """

    def __init__(self, seed: int, frame: _Frame, i0: int, i1: int, j0: int, j1: int) -> None:
        self.seed, self.frame = seed, frame
        self.i0, self.i1, self.j0, self.j1 = i0, i1, j0, j1
        pa, self.kinds_a, pb, self.kinds_b = _lines(seed, (i0, i1), (j0, j1))
        ba, aa, la, fa = (row[:, None] for row in pa)
        # every line parameter spread over the whole corner grid, contiguous: ufuncs on same-shape contiguous
        # operands take numpy's fast path, broadcasting ones its much costlier iterator set-up (these grids are
        # tiny: per-call overhead, not arithmetic, is the cost)
        n_a, n_b = pa.shape[1], pb.shape[1]
        ba_, aa_, la_, fa_ = pa[:, :, None].repeat(n_b, axis=2)
        bb_, ab_, lb_, fb_ = pb[:, None, :].repeat(n_a, axis=1)
        u, v = bb_.copy(), ba_.copy()
        # v = ba + aa * sin(2 pi u / la + fa), then u = bb + ab * sin(2 pi v / lb + fb), with the ufuncs writing
        # into one scratch array
        two_pi = 2.0 * math.pi
        t = np.empty_like(u)
        for _ in range(_CORNER_ITERATIONS):
            for src, dst, base, amp, wavelength, phase in (
                (u, v, ba_, aa_, la_, fa_),
                (v, u, bb_, ab_, lb_, fb_),
            ):
                np.multiply(two_pi, src, out=t)
                np.divide(t, wavelength, out=t)
                np.add(t, phase, out=t)
                np.sin(t, out=t)
                np.multiply(amp, t, out=t)
                np.add(base, t, out=dst)
        self.cu, self.cv = u, v
        # the same values as Python lists: single lookups are much faster than numpy indexing
        self.cu_list, self.cv_list = u.tolist(), v.tolist()
        # samples along every line over the span of the corners
        # (ufunc reductions: the array methods go through Python-level wrappers)
        self.ta0 = math.floor(float(np.minimum.reduce(u, axis=None)) / EDGE_STEP_M) * EDGE_STEP_M
        u_max = float(np.maximum.reduce(u, axis=None))
        ta = self.ta0 + np.arange(math.ceil((u_max - self.ta0) / EDGE_STEP_M) + 1) * EDGE_STEP_M
        va = ba + aa * np.sin(2.0 * math.pi * ta[None, :] / la + fa)
        self.tb0 = math.floor(float(np.minimum.reduce(v, axis=None)) / EDGE_STEP_M) * EDGE_STEP_M
        v_max = float(np.maximum.reduce(v, axis=None))
        tb = self.tb0 + np.arange(math.ceil((v_max - self.tb0) / EDGE_STEP_M) + 1) * EDGE_STEP_M
        ub = pb[0][:, None] + pb[1][:, None] * np.sin(
            2.0 * math.pi * tb[None, :] / pb[2][:, None] + pb[3][:, None]
        )
        # corners, A-line samples and B-line samples to pixels in one (element-wise) conversion
        grids = ((u, v), (ta[None, :].repeat(len(va), axis=0), va), (ub, tb[None, :].repeat(len(ub), axis=0)))
        px = frame.grid_to_px(
            np.concatenate([g[0].ravel() for g in grids]), np.concatenate([g[1].ravel() for g in grids])
        )
        a_start, b_start = u.size, u.size + va.size
        self.corner_px = px[:a_start].reshape(*u.shape, 2)
        self.a_px = px[a_start:b_start].reshape(*va.shape, 2)
        self.b_px = px[b_start:].reshape(*ub.shape, 2)
        self.corner_list = self.corner_px.tolist()

    def _between(self, t0: float, t1: float, origin: float) -> tuple[int, int]:
        lo, hi = min(t0, t1), max(t0, t1)
        k0 = math.floor((lo - origin) / EDGE_STEP_M + 1e-7) + 1
        k1 = math.ceil((hi - origin) / EDGE_STEP_M - 1e-7) - 1
        return k0, k1

    def a_edge(self, i: int, ja: int, jb: int) -> np.ndarray:
        """Pixel samples of A-line ``i`` strictly between its crossings with B-lines ``ja`` and ``jb``, in order."""
        row = self.cu_list[i - self.i0]
        ua, ub = row[ja - self.j0], row[jb - self.j0]
        k0, k1 = self._between(ua, ub, self.ta0)
        pts = self.a_px[i - self.i0, k0 : k1 + 1]
        return pts if ua <= ub else pts[::-1]

    def b_edge(self, j: int, ia: int, ib: int) -> np.ndarray:
        """Pixel samples of B-line ``j`` strictly between its crossings with A-lines ``ia`` and ``ib``, in order."""
        c = j - self.j0
        va, vb = self.cv_list[ia - self.i0][c], self.cv_list[ib - self.i0][c]
        k0, k1 = self._between(va, vb, self.tb0)
        pts = self.b_px[c, k0 : k1 + 1]
        return pts if va <= vb else pts[::-1]

    def corner(self, i: int, j: int) -> np.ndarray:
        """Pixels of the intersection of A-line ``i`` and B-line ``j``, as a ``(1, 2)`` array."""
        c = j - self.j0
        return self.corner_px[i - self.i0, c : c + 1]

    def corner_xy(self, i: int, j: int) -> list[float]:
        """:meth:`corner` as a Python list ``[x, y]``."""
        return self.corner_list[i - self.i0][j - self.j0]

    def corner_uv(self, i: int, j: int) -> tuple[float, float]:
        return self.cu_list[i - self.i0][j - self.j0], self.cv_list[i - self.i0][j - self.j0]


_BLOCK_LABELS = ("variant", "furrow", "block-objects", "subregions")


def _block_hashes(
    seed: int, cells: list[tuple[int, int]], which: list[int]
) -> list[tuple[int, int, int, int]]:
    """``mix(seed, label, i, j)`` for each label of :data:`_BLOCK_LABELS` and each block ``cells[k]`` with ``k`` in
    ``which``, in one numpy batch (the same values; a Python-level hash costs as much as a few array operations)."""
    if not which:
        return []
    states = np.array([[prefix(seed, label)] for label in _BLOCK_LABELS], dtype=np.uint64)
    i, j = np.array([cells[k] for k in which]).T
    return list(zip(*mix_array(states, i, j).tolist()))


def layout(world_seed: int, origin: tuple[float, float], gsd: float, width: int, height: int) -> Layout:
    """Cut the window ``[origin, origin + (width, height) * gsd]`` out of world ``world_seed``.

    Args:
        world_seed: which world.
        origin: world metres (x east, y south) of the window's top-left pixel corner.
        gsd: metres per pixel.
        width, height: window size in pixels.

    Returns:
        A :class:`Layout`; region polygons are clipped to the window, polylines keep one vertex beyond it.
    """
    world = get_world(world_seed)
    frame = _Frame(world, origin, gsd)
    seed = world_seed
    corners_uv = [frame.px_to_uv(px, py) for px, py in ((0, 0), (width, 0), (0, height), (width, height))]
    umin, umax = min(c[0] for c in corners_uv), max(c[0] for c in corners_uv)
    vmin, vmax = min(c[1] for c in corners_uv), max(c[1] for c in corners_uv)
    # line i lies within +-0.16 spacing of i * spacing, so these ranges hold every block touching the window
    i0, i1 = math.floor(vmin / world.spacing_v) - 1, math.floor(vmax / world.spacing_v) + 2
    j0, j1 = math.floor(umin / world.spacing_u) - 1, math.floor(umax / world.spacing_u) + 2
    grid = _Grid(seed, frame, i0, i1, j0, j1)

    angle_deg = world.angle
    wiggle_px = 0.05 * max(world.spacing_u, world.spacing_v) / gsd + 2.0
    inset_m = 0.04 * max(world.spacing_u, world.spacing_v) + 9.0
    cp = grid.corner_px
    # each cell's box from its four corners (element-wise min/max: exact, and cheaper than stacking the corners)
    first, right, down, diagonal = cp[:-1, :-1], cp[:-1, 1:], cp[1:, :-1], cp[1:, 1:]
    lo = np.minimum(np.minimum(first, right), np.minimum(down, diagonal))
    hi = np.maximum(np.maximum(first, right), np.maximum(down, diagonal))
    touching = (hi[..., 0] >= -wiggle_px) & (hi[..., 1] >= -wiggle_px)
    touching &= (lo[..., 0] <= width + wiggle_px) & (lo[..., 1] <= height + wiggle_px)
    rows, cols = touching.nonzero()
    cells = [(i0 + ri, j0 + rj) for ri, rj in zip(rows.tolist(), cols.tolist())]
    pieces: list[np.ndarray] = []
    ends: list[int] = []
    end = 0
    for i, j in cells:
        edges = (
            grid.a_edge(i, j, j + 1),
            grid.b_edge(j + 1, i, i + 1),
            grid.a_edge(i + 1, j + 1, j),
            grid.b_edge(j, i + 1, i),
        )
        pieces += (
            grid.corner(i, j),
            edges[0],
            grid.corner(i, j + 1),
            edges[1],
            grid.corner(i + 1, j + 1),
            edges[2],
            grid.corner(i + 1, j),
            edges[3],
        )
        end += 4 + len(edges[0]) + len(edges[1]) + len(edges[2]) + len(edges[3])
        ends.append(end)
    outlines = np.concatenate(pieces)
    placement = _classify(outlines, ends, width, height)

    # blocks not wholly outside, with their placement frames and sub-regions; those crossing the border are clipped
    # below together with the crossing sub-regions (one shapely batch), and dropped if nothing of them is left
    candidates: list[tuple[int, str, int, float, BlockInfo | None]] = []
    live = [k for k in range(len(cells)) if placement[k] != _OUTSIDE]
    for k, (variant_hash, furrow_hash, objects_seed, subregions_seed) in zip(
        live, _block_hashes(seed, cells, live)
    ):
        i, j = cells[k]
        # block_kind's variant and pattern angle, from the hashes drawn for all blocks at once
        kind = _landuse(seed, i, j)
        variant = int(unit_of(variant_hash) * 3)
        furrow = 90.0 if unit_of(furrow_hash) < 0.5 else 0.0
        block = None
        c00, c01 = grid.corner_uv(i, j), grid.corner_uv(i, j + 1)
        c10, c11 = grid.corner_uv(i + 1, j), grid.corner_uv(i + 1, j + 1)
        u0 = max(c00[0], c10[0]) + inset_m
        u1 = min(c01[0], c11[0]) - inset_m
        v0 = max(c00[1], c01[1]) + inset_m
        v1 = min(c10[1], c11[1]) - inset_m
        if u1 - u0 >= 4.0 and v1 - v0 >= 4.0:
            block = BlockInfo(
                ij=(i, j),
                kind=kind,
                variant=variant,
                region_ids=[],
                polygon=outlines[ends[k - 1] if k else 0 : ends[k]].tolist(),
                center=frame.point_to_px((u0 + u1) / 2, (v0 + v1) / 2),
                half_u=(u1 - u0) / 2 / gsd,
                half_v=(v1 - v0) / 2 / gsd,
                angle=angle_deg,
                seed=objects_seed,
                subregions=_subregions(
                    seed, i, j, kind, (u0, u1, v0, v1), frame, LightRandom(subregions_seed)
                ),
            )
        candidates.append((k, kind, variant, furrow, block))
    subs = [(block, sub) for *_, block in candidates if block is not None for sub in block.subregions]
    sub_ends = list(accumulate(len(sub.polygon) for _, sub in subs))
    sub_points = np.array([point for _, sub in subs for point in sub.polygon], dtype=np.float64).reshape(
        -1, 2
    )
    sub_placement = _classify(sub_points, sub_ends, width, height)
    crossing = [k for k, *_ in candidates if placement[k] == _CROSSING]
    sub_crossing = [s for s in range(len(subs)) if sub_placement[s] == _CROSSING]
    # the crossing outlines and sub-regions, clipped together
    shift = len(outlines)
    clipped = _clip(
        np.concatenate([outlines, sub_points]),
        [(ends[k - 1] if k else 0, ends[k]) for k in crossing]
        + [(shift + (sub_ends[s - 1] if s else 0), shift + sub_ends[s]) for s in sub_crossing],
        width,
        height,
    )
    block_parts = dict(zip(crossing, clipped))
    sub_parts = dict(zip(sub_crossing, clipped[len(crossing) :]))

    regions: list[Region] = []
    blocks: list[BlockInfo] = []
    for k, kind, variant, furrow, block in candidates:
        if placement[k] == _INSIDE:
            parts = [round_points(outlines[ends[k - 1] if k else 0 : ends[k]])]
        else:
            parts = block_parts[k]
        region_ids = []
        for part in parts:
            region_ids.append(len(regions))
            regions.append(Region(len(regions), kind, part, None, variant, round(angle_deg + furrow, 3)))
        if region_ids and block is not None:
            block.region_ids = region_ids
            blocks.append(block)
    # sub-regions are drawn after all blocks
    for s, (block, sub) in enumerate(subs):
        if not block.region_ids:  # the block was clipped away
            continue
        if sub_placement[s] == _INSIDE:
            parts = [round_points(sub_points[sub_ends[s - 1] if s else 0 : sub_ends[s]])]
        else:
            parts = sub_parts.get(s, [])
        rect_frame = None
        if sub.kind != "water":
            rect_frame = [
                round2(sub.center[0]),
                round2(sub.center[1]),
                round2(sub.half_u),
                round2(sub.half_v),
            ]
        for part in parts:
            sub.region_ids.append(len(regions))
            regions.append(
                Region(len(regions), sub.kind, part, block.region_ids[0], 0, angle_deg, rect_frame)
            )

    roads = _roads(grid, width, height)
    rivers = _rivers(seed, frame, (umin - 100.0, umax + 100.0, vmin - 100.0, vmax + 100.0), width, height)
    bridges = _bridges(roads, rivers)
    return Layout(regions=regions, roads=roads, rivers=rivers, blocks=blocks, bridges=bridges)


def _subregions(
    seed: int,
    i: int,
    j: int,
    kind: str,
    inner: tuple[float, float, float, float],
    frame: _Frame,
    rng: LightRandom,
) -> list[SubRegion]:
    """Parking lots, aprons, parks and lakes inside a block (world-consistent: drawn from ``rng``, which is seeded
    from ``(seed, "subregions", i, j)``)."""
    u0, u1, v0, v1 = inner
    lu, lv = u1 - u0, v1 - v0
    out: list[SubRegion] = []
    gsd = frame.gsd

    def rect(kind_: str, a0: float, a1: float, b0: float, b1: float) -> SubRegion:
        corners = [frame.point_to_px(u, v) for u, v in ((a0, b0), (a1, b0), (a1, b1), (a0, b1))]
        return SubRegion(
            kind_,
            [[x, y] for x, y in corners],
            [],
            frame.point_to_px((a0 + a1) / 2, (b0 + b1) / 2),
            (a1 - a0) / 2 / gsd,
            (b1 - b0) / 2 / gsd,
            frame.world.angle,
        )

    if kind in ("residential", "industrial") and rng.random() < (0.3 if kind == "residential" else 0.55):
        lot_u = min(lu, rng.uniform(26.0, 64.0))
        lot_v = min(lv, 16.0 if rng.random() < 0.6 else 28.0)
        if lot_u > 12.0 and lot_v >= 15.0:
            side = rng.randrange(4)
            a0 = u0 + rng.uniform(0.0, lu - lot_u)
            b0 = v0 if side < 2 else v1 - lot_v
            out.append(rect("parking", a0, a0 + lot_u, b0, b0 + lot_v))
    if kind == "residential" and rng.random() < 0.15 and lu > 50 and lv > 40:
        park_u = min(lu * 0.6, rng.uniform(40.0, 75.0))
        a0 = u1 - park_u if rng.random() < 0.5 else u0
        out.append(rect("grassland", a0, a0 + park_u, v0 + lv * 0.3, v1))
    if kind == "airport":
        out.append(rect("apron", u0, u1, v0, v1))
    if (
        kind in ("grassland", "forest")
        and rng.random() < (0.3 if kind == "grassland" else 0.12)
        and min(lu, lv) > 40
    ):
        cu, cv = (u0 + u1) / 2 + rng.uniform(-0.1, 0.1) * lu, (v0 + v1) / 2 + rng.uniform(-0.1, 0.1) * lv
        blob = _blob_uv(seed, i, j, cu, cv, lu * rng.uniform(0.25, 0.4), lv * rng.uniform(0.25, 0.4))
        px = frame.uv_to_px(blob)
        out.append(
            SubRegion(
                "water",
                px.tolist(),
                [],
                frame.point_to_px(cu, cv),
                lu * 0.25 / gsd,
                lv * 0.25 / gsd,
                frame.world.angle,
            )
        )
    return out


def _trim(
    points: np.ndarray, ends: list[int], margins: list[float], width: int, height: int
) -> list[list[tuple[int, int]]]:
    """Pieces of polylines that come within their margin of the window, each keeping one vertex beyond it.

    The polylines are given concatenated (``points[ends[k - 1]:ends[k]]`` is polyline ``k``); returns, for each, the
    ``(start, end)`` row ranges of its pieces in ``points`` (pieces of a single point are left out).
    """
    pieces: list[list[tuple[int, int]]] = [[] for _ in ends]
    if not ends:
        return pieces
    margin = np.array(margins).repeat([end - start for start, end in zip([0, *ends], ends)])
    x, y = points[:, 0], points[:, 1]
    inside = (x >= -margin) & (x <= width + margin) & (y >= -margin) & (y <= height + margin)
    line, line_start, start, prev = 0, 0, -1, -2
    for k in inside.nonzero()[0].tolist():
        if k == prev + 1 and k < ends[line]:
            prev = k
            continue
        if start >= 0:
            _add_piece(pieces[line], max(line_start, start - 1), min(ends[line], prev + 2))
        while k >= ends[line]:
            line_start = ends[line]
            line += 1
        start = prev = k
    if start >= 0:
        _add_piece(pieces[line], max(line_start, start - 1), min(ends[line], prev + 2))
    return pieces


def _add_piece(pieces: list[tuple[int, int]], start: int, end: int) -> None:
    """Append the row range ``(start, end)`` to ``pieces`` if it holds a line (at least two points)."""
    if end - start >= 2:
        pieces.append((start, end))


def _roads(grid: _Grid, width: int, height: int) -> list[Polyline]:
    """Road centre lines of the grid's lines, split where segments are missing, trimmed to the window."""
    seed, gsd = grid.seed, grid.frame.gsd
    world = grid.frame.world
    reach = (0.05 * max(world.spacing_u, world.spacing_v) + ROAD_WIDTH_M["major-road"]) / gsd
    # a segment is near when the box of its two corners meets the window grown by ``reach``
    lo, x_hi, y_hi = -reach, width + reach, height + reach
    lines = [("A", i, grid.kinds_a[i - grid.i0]) for i in range(grid.i0, grid.i1 + 1)]
    lines += [("B", j, grid.kinds_b[j - grid.j0]) for j in range(grid.j0, grid.j1 + 1)]
    # runs of present segments, concatenated so that they are trimmed all at once
    pieces: list[np.ndarray] = []
    ends: list[int] = []
    end = 0
    run_kinds: list[str] = []
    for family, index, kind in lines:
        if kind == "none":
            continue
        s0, s1 = (grid.j0, grid.j1) if family == "A" else (grid.i0, grid.i1)
        if family == "A":
            corners = [grid.corner_xy(index, seg) for seg in range(s0, s1 + 1)]
        else:
            corners = [grid.corner_xy(seg, index) for seg in range(s0, s1 + 1)]
        present = []
        for (ax, ay), (bx, by), seg in zip(corners, corners[1:], range(s0, s1)):
            # not (max(ax, bx) < lo or max(ay, by) < lo or min(ax, bx) > x_hi or min(ay, by) > y_hi)
            near = (
                (ax >= lo or bx >= lo)
                and (ay >= lo or by >= lo)
                and (ax <= x_hi or bx <= x_hi)
                and (ay <= y_hi or by <= y_hi)
            )
            present.append(near and _segment_present(seed, family, index, seg, kind))
        for k, seg in enumerate(range(s0, s1)):
            if not present[k]:
                continue
            if family == "A":
                edge = grid.a_edge(index, seg, seg + 1)
                pieces += (grid.corner(index, seg), edge)
            else:
                edge = grid.b_edge(index, seg, seg + 1)
                pieces += (grid.corner(seg, index), edge)
            end += 1 + len(edge)
            if k == len(present) - 1 or not present[k + 1]:
                pieces.append(grid.corner(index, seg + 1) if family == "A" else grid.corner(seg + 1, index))
                end += 1
                ends.append(end)
                run_kinds.append(kind)
    roads: list[Polyline] = []
    if not pieces:
        return roads
    points = np.concatenate(pieces)
    pieces = _trim(points, ends, [ROAD_WIDTH_M[kind] / gsd for kind in run_kinds], width, height)
    for kind, run_pieces in zip(run_kinds, pieces):
        width_m = ROAD_WIDTH_M[kind]
        for start, end in run_pieces:
            roads.append(
                Polyline(len(roads), kind, round2(width_m / gsd), width_m, round_points(points[start:end]))
            )
    roads.sort(key=lambda r: (r.kind != "minor-road", r.id))  # minor first: majors are drawn on top
    for k, road in enumerate(roads):
        road.id = k
    return roads


def _rivers(
    seed: int, frame: _Frame, box: tuple[float, float, float, float], width: int, height: int
) -> list[Polyline]:
    """River centre lines over the grid-coordinate box ``(umin, umax, vmin, vmax)`` (the window's, grown by
    100 m), trimmed to the window."""
    umin, umax, vmin, vmax = box
    lines: list[np.ndarray] = []
    widths_m: list[float] = []
    for family, (a0, a1), (b0, b1) in (("A", (umin, umax), (vmin, vmax)), ("B", (vmin, vmax), (umin, umax))):
        reach = 200.0  # max meander amplitude + half width
        for band in range(
            math.floor((b0 - reach) / _RIVER_BAND_M), math.floor((b1 + reach) / _RIVER_BAND_M) + 1
        ):
            params = _river(seed, family, band)
            if params is None:
                continue
            # rivers that stay out of the window's reach are not sampled: the centre lies within amp1 + amp2 of
            # its base, and a point more than sqrt(2) river widths from the window's (u, v) box lies beyond the
            # margin (one river width along the image axes) within which _trim keeps points
            base, amp1, _, _, amp2, _, _, width_m = params
            slack = amp1 + amp2 + 1.5 * width_m + 1.0
            if base + slack < b0 or base - slack > b1:
                continue
            t = np.arange(math.floor(a0 / EDGE_STEP_M) - 1, math.ceil(a1 / EDGE_STEP_M) + 2) * EDGE_STEP_M
            c = river_centre(seed, family, band, t)
            lines.append(frame.grid_to_px(t, c) if family == "A" else frame.grid_to_px(c, t))
            widths_m.append(width_m)
    rivers: list[Polyline] = []
    if not lines:
        return rivers
    points = np.concatenate(lines)
    ends = list(accumulate(len(line) for line in lines))
    pieces = _trim(points, ends, [width_m / frame.gsd for width_m in widths_m], width, height)
    for width_m, line_pieces in zip(widths_m, pieces):
        for start, end in line_pieces:
            rivers.append(
                Polyline(
                    len(rivers),
                    "river",
                    round2(width_m / frame.gsd),
                    round(width_m, 2),
                    round_points(points[start:end]),
                )
            )
    return rivers


def _bridges(roads: list[Polyline], rivers: list[Polyline]) -> list[BridgeSite]:
    """Road/river centre-line crossings (segment intersection, vectorised over all road segments at once)."""
    sites: list[BridgeSite] = []
    if not rivers or not roads:
        return sites
    starts: list[list[float]] = []
    stops: list[list[float]] = []
    owner: list[Polyline] = []
    for road in roads:
        starts += road.points[:-1]
        stops += road.points[1:]
        owner += [road] * (len(road.points) - 1)
    pa, pb = np.array(starts), np.array(stops)
    d1 = (pb - pa)[:, None, :]
    for river in rivers:
        r = np.asarray(river.points)
        ra, rb = r[:-1], r[1:]
        d2 = (rb - ra)[None, :, :]
        denom = d1[..., 0] * d2[..., 1] - d1[..., 1] * d2[..., 0]
        diff = ra[None, :, :] - pa[:, None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (diff[..., 0] * d2[..., 1] - diff[..., 1] * d2[..., 0]) / denom
            s = (diff[..., 0] * d1[..., 1] - diff[..., 1] * d1[..., 0]) / denom
        hit = (denom != 0) & (t >= 0) & (t < 1) & (s >= 0) & (s < 1)
        for a, b in zip(*np.nonzero(hit)):
            pt = pa[a] + t[a, b] * (pb[a] - pa[a])
            road_dir = pb[a] - pa[a]
            river_dir = rb[b] - ra[b]
            # the 2-D cross product, as np.cross computes it
            cross = abs(float(road_dir[0] * river_dir[1] - road_dir[1] * river_dir[0])) / (
                float(np.linalg.norm(road_dir)) * float(np.linalg.norm(river_dir))
            )
            sites.append(
                BridgeSite(
                    float(pt[0]),
                    float(pt[1]),
                    math.degrees(math.atan2(road_dir[1], road_dir[0])),
                    owner[a].width,
                    river.width,
                    max(cross, 0.3),
                )
            )
    return sites


def find_landuse(
    world_seed: int, kind: str, start: tuple[float, float], tries: int = 600
) -> tuple[float, float]:
    """World position (metres) of the centre of a block of ``kind`` near ``start``, or near a river for ``river``.

    Searches blocks in growing rings around ``start``; raises ``ValueError`` if none is found within ``tries``.
    """
    world = get_world(world_seed)
    u, v = world.to_uv(*start)
    if kind == "river":
        band0 = math.floor(v / _RIVER_BAND_M)
        for k in range(tries):
            band = band0 + (k // 2 + 1) * (1 if k % 2 else -1) if k else band0
            if _river(world_seed, "A", band) is not None:
                c = float(river_centre(world_seed, "A", band, np.array([u]))[0])
                x, y = world.to_xy(u, c)
                return float(x), float(y)
        raise ValueError(f"world {world_seed}: no river found near {start}")
    i_c = math.floor(v / world.spacing_v)
    j_c = math.floor(u / world.spacing_u)
    radius = 0
    checked = 0
    while checked < tries:
        # the ring of blocks at Chebyshev distance ``radius``, row by row
        for di in range(-radius, radius + 1):
            for dj in range(-radius, radius + 1) if abs(di) == radius else (-radius, radius):
                checked += 1
                i, j = i_c + di, j_c + dj
                if _landuse(world_seed, i, j) == kind:
                    x, y = world.to_xy(*_block_centre(world_seed, i, j))
                    return float(x), float(y)
        radius += 1
    raise ValueError(f"world {world_seed}: no {kind!r} block found within {tries} blocks of {start}")
