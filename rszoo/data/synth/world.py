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

import numpy as np

from rszoo.data.synth.geometry import round2, round_points
from rszoo.data.synth.graph import Polyline, Region
from rszoo.data.synth.seeding import light, mix, unit

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
@lru_cache(maxsize=65536)
def _line(seed: int, family: str, index: int) -> tuple[float, float, float, float, str]:
    """``(base, amplitude, wavelength, phase, kind)`` of grid line ``index`` of ``family`` ('A' or 'B')."""
    world = get_world(seed)
    spacing = world.spacing_v if family == "A" else world.spacing_u
    rng = light(seed, "line", family, index)
    base = index * spacing + rng.uniform(-0.12, 0.12) * spacing
    amplitude = rng.uniform(0.0, 0.035) * spacing
    wavelength = rng.uniform(500.0, 1400.0)
    phase = rng.uniform(0.0, 2.0 * math.pi)
    r = rng.random()
    kind = "major-road" if r < 0.16 else "minor-road" if r < 0.72 else "none"
    return base, amplitude, wavelength, phase, kind


def _line_kind(seed: int, family: str, index: int) -> str:
    return _line(seed, family, index)[4]


def _corner(seed: int, i: int, j: int) -> tuple[float, float]:
    """Intersection ``(u, v)`` of A-line ``i`` and B-line ``j`` (same arithmetic as :class:`_Grid`)."""
    a, b = _line(seed, "A", i), _line(seed, "B", j)
    u = np.float64(b[0])
    v = np.float64(a[0])
    for _ in range(_CORNER_ITERATIONS):
        v = a[0] + a[1] * np.sin(2.0 * math.pi * u / a[2] + a[3])
        u = b[0] + b[1] * np.sin(2.0 * math.pi * v / b[2] + b[3])
    return float(u), float(v)


# -- land use ----------------------------------------------------------------------------------------------------
def _smoothstep(t: float) -> float:
    return t * t * (3.0 - 2.0 * t)


@lru_cache(maxsize=65536)
def _urban_lattice(seed: int, i: int, j: int) -> float:
    return unit(seed, "urban", i, j)


@lru_cache(maxsize=65536)
def _urbanness(seed: int, i: int, j: int) -> float:
    """Smooth value noise over block indices (lattice every 5 blocks), shifted by the world's urban bias."""
    cell = 5.0
    fi, fj = i / cell, j / cell
    i0, j0 = math.floor(fi), math.floor(fj)
    ti, tj = _smoothstep(fi - i0), _smoothstep(fj - j0)
    v00 = _urban_lattice(seed, i0, j0)
    v01 = _urban_lattice(seed, i0, j0 + 1)
    v10 = _urban_lattice(seed, i0 + 1, j0)
    v11 = _urban_lattice(seed, i0 + 1, j0 + 1)
    value = (v00 * (1 - tj) + v01 * tj) * (1 - ti) + (v10 * (1 - tj) + v11 * tj) * ti
    return min(1.0, max(0.0, (value - 0.5) * 1.6 + 0.5 + get_world(seed).urban_bias))


# the land-use mixes blended below 0.5 urbanness and above, with their kinds sorted (block_kind's order)
_BLENDS = tuple((a, b, sorted(set(a) | set(b))) for a, b in ((_RURAL, _SUBURB), (_SUBURB, _URBAN)))


@lru_cache(maxsize=65536)
def block_kind(seed: int, i: int, j: int) -> tuple[str, int, float]:
    """``(kind, variant, pattern_angle_offset)`` of block ``(i, j)``: the land use between A-lines i, i+1 and
    B-lines j, j+1."""
    u = _urbanness(seed, i, j)
    if u < 0.5:
        (a, b, kinds), t = _BLENDS[0], u / 0.5
    else:
        (a, b, kinds), t = _BLENDS[1], (u - 0.5) / 0.5
    weights = [(1 - t) * a.get(k, 0.0) + t * b.get(k, 0.0) for k in kinds]
    r = unit(seed, "block", i, j) * sum(weights)
    kind = kinds[-1]
    for k, w in zip(kinds, weights):
        if r < w:
            kind = k
            break
        r -= w
    variant = int(unit(seed, "variant", i, j) * 3)
    angle = 90.0 if unit(seed, "furrow", i, j) < 0.5 else 0.0
    return kind, variant, angle


def _segment_present(seed: int, family: str, index: int, seg: int) -> bool:
    """Whether the road on line ``index`` exists between cross lines ``seg`` and ``seg + 1``."""
    kind = _line_kind(seed, family, index)
    if kind == "none":
        return False
    # the two blocks this segment separates
    if family == "A":
        sides = (block_kind(seed, index - 1, seg)[0], block_kind(seed, index, seg)[0])
        urban = (_urbanness(seed, index - 1, seg) + _urbanness(seed, index, seg)) / 2
    else:
        sides = (block_kind(seed, seg, index - 1)[0], block_kind(seed, seg, index)[0])
        urban = (_urbanness(seed, seg, index - 1) + _urbanness(seed, seg, index)) / 2
    if kind == "major-road":
        return True
    if sides[0] == sides[1] == "forest" or sides[0] == sides[1] == "airport":
        return False
    return unit(seed, "segment", family, index, seg) < 0.3 + 0.65 * urban


# -- rivers ------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def _river(seed: int, family: str, band: int) -> tuple[float, ...] | None:
    """Parameters of the river in ``band`` of ``family`` (None when that band has no river)."""
    if unit(seed, "river?", family, band) >= (0.42 if family == "A" else 0.2):
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
        x, y = self.world.to_xy(u, v)
        return (x - self.ox) / self.gsd, (y - self.oy) / self.gsd

    def px_to_uv(self, px: float, py: float) -> tuple[float, float]:
        u, v = self.world.to_uv(self.ox + px * self.gsd, self.oy + py * self.gsd)
        return float(u), float(v)


def _clip_all(polys_px: list[np.ndarray], width: int, height: int) -> list[list[list[list[float]]]]:
    """Clip simple polygons to the image rectangle: for each, zero or more polygons (rounded vertices).

    Those crossing the image border go through shapely in one vectorised call (shapely's per-call overhead is much
    larger than the clipping of a few small polygons).
    """
    out: list[list[list[list[float]]]] = [[] for _ in polys_px]
    if not polys_px:
        return out
    # bounding boxes of all polygons in one pass
    sizes = np.array([len(poly) for poly in polys_px])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    points = np.concatenate(polys_px)
    x_lo, y_lo = np.minimum.reduceat(points, starts, axis=0).T.tolist()
    x_hi, y_hi = np.maximum.reduceat(points, starts, axis=0).T.tolist()
    to_clip = []
    for k, poly_px in enumerate(polys_px):
        if x_lo[k] >= 0 and y_lo[k] >= 0 and x_hi[k] <= width and y_hi[k] <= height:
            out[k].append(round_points(poly_px))
        elif not (x_hi[k] <= 0 or y_hi[k] <= 0 or x_lo[k] >= width or y_lo[k] >= height):
            to_clip.append(k)
    if not to_clip:
        return out
    import shapely

    # one from_ragged_array call builds all polygons (cheaper than linearrings + polygons); its rings must be
    # closed, which linearrings would do: repeat the first vertex unless the last one already equals it
    pieces, ring_ends, end = [], [0], 0
    for k in to_clip:
        poly_px = np.asarray(polys_px[k], dtype=np.float64)
        pieces.append(poly_px)
        end += len(poly_px)
        if (poly_px[0] != poly_px[-1]).any():
            pieces.append(poly_px[:1])
            end += 1
        ring_ends.append(end)
    polygons = shapely.from_ragged_array(
        shapely.GeometryType.POLYGON,
        np.concatenate(pieces),
        (np.array(ring_ends), np.arange(len(to_clip) + 1)),
    )
    clipped = shapely.clip_by_rect(polygons, 0.0, 0.0, float(width), float(height))
    if (shapely.get_type_id(clipped) == shapely.GeometryType.POLYGON).all():
        # the usual case: every result is one polygon, so splitting into parts would change nothing
        parts, owner = clipped, np.arange(len(clipped))
    else:
        parts, owner = shapely.get_parts(clipped, return_index=True)
    keep = (shapely.get_type_id(parts) == shapely.GeometryType.POLYGON) & ~shapely.is_empty(parts)
    keep[keep] = shapely.area(parts[keep]) >= 0.5
    parts, owner = parts[keep], owner[keep]
    if not len(parts):
        return out
    # exterior rings without their closing vertex, rounded in one pass
    coords, ring_of = shapely.get_coordinates(shapely.get_exterior_ring(parts), return_index=True)
    ends = np.searchsorted(ring_of, np.arange(len(parts)), side="right")
    starts = np.concatenate([[0], ends[:-1]])
    rounded = round_points(coords)
    for start, end, k in zip(starts.tolist(), ends.tolist(), owner.tolist()):
        out[to_clip[k]].append(rounded[start : end - 1])
    return out


def _blob_uv(seed: int, i: int, j: int, cu: float, cv: float, ru: float, rv: float) -> np.ndarray:
    """An irregular closed outline (a lake shore): an ellipse with smooth radial noise."""
    rng = light(seed, "lake", i, j)
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
        pa = np.array([_line(seed, "A", i)[:4] for i in range(i0, i1 + 1)])
        pb = np.array([_line(seed, "B", j)[:4] for j in range(j0, j1 + 1)])
        self.kinds_a = [_line(seed, "A", i)[4] for i in range(i0, i1 + 1)]
        self.kinds_b = [_line(seed, "B", j)[4] for j in range(j0, j1 + 1)]
        ba, aa, la, fa = (pa[:, k : k + 1] for k in range(4))
        bb, ab, lb, fb = (pb[:, k][None, :] for k in range(4))
        u = np.repeat(bb, len(pa), axis=0)
        v = np.repeat(ba, len(pb), axis=1)
        # v = ba + aa * sin(2 pi u / la + fa), then u = bb + ab * sin(2 pi v / lb + fb), with the ufuncs writing
        # into one scratch array (these grids are tiny: per-call overhead, not arithmetic, is the cost)
        two_pi = 2.0 * math.pi
        t = np.empty_like(u)
        for _ in range(_CORNER_ITERATIONS):
            for src, dst, base, amp, wavelength, phase in ((u, v, ba, aa, la, fa), (v, u, bb, ab, lb, fb)):
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
        self.ta0 = math.floor(float(u.min()) / EDGE_STEP_M) * EDGE_STEP_M
        ta = self.ta0 + np.arange(math.ceil((float(u.max()) - self.ta0) / EDGE_STEP_M) + 1) * EDGE_STEP_M
        va = ba + aa * np.sin(2.0 * math.pi * ta[None, :] / la + fa)
        self.tb0 = math.floor(float(v.min()) / EDGE_STEP_M) * EDGE_STEP_M
        tb = self.tb0 + np.arange(math.ceil((float(v.max()) - self.tb0) / EDGE_STEP_M) + 1) * EDGE_STEP_M
        ub = pb[:, 0:1] + pb[:, 1:2] * np.sin(2.0 * math.pi * tb[None, :] / pb[:, 2:3] + pb[:, 3:4])
        # corners, A-line samples and B-line samples to pixels in one (element-wise) conversion
        grids = ((u, v), (np.broadcast_to(ta, va.shape), va), (ub, np.broadcast_to(tb, ub.shape)))
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
        return self.corner_px[i - self.i0, j - self.j0]

    def corner_xy(self, i: int, j: int) -> list[float]:
        """:meth:`corner` as a Python list ``[x, y]``."""
        return self.corner_list[i - self.i0][j - self.j0]

    def corner_uv(self, i: int, j: int) -> tuple[float, float]:
        return self.cu_list[i - self.i0][j - self.j0], self.cv_list[i - self.i0][j - self.j0]


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

    regions: list[Region] = []
    blocks: list[BlockInfo] = []
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
    cells = [(i0 + ri, j0 + rj) for ri, rj in np.argwhere(touching).tolist()]
    outlines = [
        np.concatenate(
            [
                grid.corner(i, j)[None],
                grid.a_edge(i, j, j + 1),
                grid.corner(i, j + 1)[None],
                grid.b_edge(j + 1, i, i + 1),
                grid.corner(i + 1, j + 1)[None],
                grid.a_edge(i + 1, j + 1, j),
                grid.corner(i + 1, j)[None],
                grid.b_edge(j, i + 1, i),
            ]
        )
        for i, j in cells
    ]
    for (i, j), poly_px, clipped in zip(cells, outlines, _clip_all(outlines, width, height)):
        kind, variant, furrow = block_kind(seed, i, j)
        region_ids = []
        for part in clipped:
            region_ids.append(len(regions))
            regions.append(Region(len(regions), kind, part, None, variant, round(angle_deg + furrow, 3)))
        if not region_ids:
            continue
        c00, c01 = grid.corner_uv(i, j), grid.corner_uv(i, j + 1)
        c10, c11 = grid.corner_uv(i + 1, j), grid.corner_uv(i + 1, j + 1)
        u0 = max(c00[0], c10[0]) + inset_m
        u1 = min(c01[0], c11[0]) - inset_m
        v0 = max(c00[1], c01[1]) + inset_m
        v1 = min(c10[1], c11[1]) - inset_m
        if u1 - u0 < 4.0 or v1 - v0 < 4.0:
            continue
        blocks.append(
            BlockInfo(
                ij=(i, j),
                kind=kind,
                variant=variant,
                region_ids=region_ids,
                polygon=poly_px.tolist(),
                center=frame.point_to_px((u0 + u1) / 2, (v0 + v1) / 2),
                half_u=(u1 - u0) / 2 / gsd,
                half_v=(v1 - v0) / 2 / gsd,
                angle=angle_deg,
                seed=mix(seed, "block-objects", i, j),
                subregions=_subregions(seed, i, j, kind, (u0, u1, v0, v1), frame),
            )
        )
    # sub-regions are drawn after all blocks
    subs = [(block, sub) for block in blocks for sub in block.subregions]
    sub_parts = _clip_all([np.asarray(sub.polygon) for _, sub in subs], width, height)
    for (block, sub), clipped in zip(subs, sub_parts):
        rect_frame = None
        if sub.kind != "water":
            rect_frame = [
                round2(sub.center[0]),
                round2(sub.center[1]),
                round2(sub.half_u),
                round2(sub.half_v),
            ]
        for part in clipped:
            sub.region_ids.append(len(regions))
            regions.append(
                Region(len(regions), sub.kind, part, block.region_ids[0], 0, angle_deg, rect_frame)
            )

    roads = _roads(grid, width, height)
    rivers = _rivers(seed, frame, (umin - 100.0, umax + 100.0, vmin - 100.0, vmax + 100.0), width, height)
    bridges = _bridges(roads, rivers)
    return Layout(regions=regions, roads=roads, rivers=rivers, blocks=blocks, bridges=bridges)


def _subregions(
    seed: int, i: int, j: int, kind: str, inner: tuple[float, float, float, float], frame: _Frame
) -> list[SubRegion]:
    """Parking lots, aprons, parks and lakes inside a block (world-consistent: hashed from the block index)."""
    u0, u1, v0, v1 = inner
    lu, lv = u1 - u0, v1 - v0
    rng = light(seed, "subregions", i, j)
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


def _trim(points: np.ndarray, width: int, height: int, margin: float) -> list[np.ndarray]:
    """Pieces of a polyline that come within ``margin`` of the window, each keeping one vertex beyond it."""
    inside = (
        (points[:, 0] >= -margin)
        & (points[:, 0] <= width + margin)
        & (points[:, 1] >= -margin)
        & (points[:, 1] <= height + margin)
    )
    if not inside.any():
        return []
    idx = np.flatnonzero(inside)
    pieces = []
    start = prev = int(idx[0])
    for k in idx[1:].tolist():
        if k != prev + 1:
            pieces.append((start, prev))
            start = k
        prev = k
    pieces.append((start, prev))
    return [points[max(0, a - 1) : min(len(points), b + 2)] for a, b in pieces]


def _roads(grid: _Grid, width: int, height: int) -> list[Polyline]:
    """Road centre lines of the grid's lines, split where segments are missing, trimmed to the window."""
    seed, gsd = grid.seed, grid.frame.gsd
    world = grid.frame.world
    reach = (0.05 * max(world.spacing_u, world.spacing_v) + ROAD_WIDTH_M["major-road"]) / gsd
    roads: list[Polyline] = []
    lines = [("A", i, grid.kinds_a[i - grid.i0]) for i in range(grid.i0, grid.i1 + 1)]
    lines += [("B", j, grid.kinds_b[j - grid.j0]) for j in range(grid.j0, grid.j1 + 1)]
    for family, index, kind in lines:
        if kind == "none":
            continue
        s0, s1 = (grid.j0, grid.j1) if family == "A" else (grid.i0, grid.i1)
        present = []
        for seg in range(s0, s1):
            a = grid.corner_xy(index, seg) if family == "A" else grid.corner_xy(seg, index)
            b = grid.corner_xy(index, seg + 1) if family == "A" else grid.corner_xy(seg + 1, index)
            near = not (
                max(a[0], b[0]) < -reach
                or max(a[1], b[1]) < -reach
                or min(a[0], b[0]) > width + reach
                or min(a[1], b[1]) > height + reach
            )
            present.append(near and _segment_present(seed, family, index, seg))
        runs: list[np.ndarray] = []
        run: list[np.ndarray] = []
        for k, seg in enumerate(range(s0, s1)):
            if not present[k]:
                continue
            if family == "A":
                run += [grid.corner(index, seg)[None], grid.a_edge(index, seg, seg + 1)]
                end = grid.corner(index, seg + 1)
            else:
                run += [grid.corner(seg, index)[None], grid.b_edge(index, seg, seg + 1)]
                end = grid.corner(seg + 1, index)
            if k == len(present) - 1 or not present[k + 1]:
                runs.append(np.concatenate([*run, end[None]]))
                run = []
        width_m = ROAD_WIDTH_M[kind]
        for px in runs:
            for piece in _trim(px, width, height, width_m / gsd):
                if len(piece) < 2:
                    continue
                roads.append(
                    Polyline(
                        len(roads),
                        kind,
                        round2(width_m / gsd),
                        width_m,
                        round_points(piece),
                    )
                )
    roads.sort(key=lambda r: (r.kind != "minor-road", r.id))  # minor first: majors are drawn on top
    for k, road in enumerate(roads):
        road.id = k
    return roads


def _rivers(
    seed: int, frame: _Frame, box: tuple[float, float, float, float], width: int, height: int
) -> list[Polyline]:
    umin, umax, vmin, vmax = box
    rivers: list[Polyline] = []
    for family, (a0, a1), (b0, b1) in (("A", (umin, umax), (vmin, vmax)), ("B", (vmin, vmax), (umin, umax))):
        reach = 200.0  # max meander amplitude + half width
        for band in range(
            math.floor((b0 - reach) / _RIVER_BAND_M), math.floor((b1 + reach) / _RIVER_BAND_M) + 1
        ):
            params = _river(seed, family, band)
            if params is None:
                continue
            t = np.arange(math.floor(a0 / EDGE_STEP_M) - 1, math.ceil(a1 / EDGE_STEP_M) + 2) * EDGE_STEP_M
            c = river_centre(seed, family, band, t)
            px = frame.grid_to_px(t, c) if family == "A" else frame.grid_to_px(c, t)
            width_m = params[7]
            for piece in _trim(px, width, height, width_m / frame.gsd):
                if len(piece) < 2:
                    continue
                rivers.append(
                    Polyline(
                        0,
                        "river",
                        round2(width_m / frame.gsd),
                        round(width_m, 2),
                        round_points(piece),
                    )
                )
    for k, river in enumerate(rivers):
        river.id = k
    return rivers


def _bridges(roads: list[Polyline], rivers: list[Polyline]) -> list[BridgeSite]:
    """Road/river centre-line crossings (vectorised segment intersection)."""
    sites: list[BridgeSite] = []
    for river in rivers:
        r = np.asarray(river.points)
        ra, rb = r[:-1], r[1:]
        for road in roads:
            p = np.asarray(road.points)
            pa, pb = p[:-1], p[1:]
            d1 = (pb - pa)[:, None, :]
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
                cross = abs(float(np.cross(road_dir, river_dir))) / (
                    float(np.linalg.norm(road_dir)) * float(np.linalg.norm(river_dir))
                )
                sites.append(
                    BridgeSite(
                        float(pt[0]),
                        float(pt[1]),
                        math.degrees(math.atan2(road_dir[1], road_dir[0])),
                        road.width,
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
        for di in range(-radius, radius + 1):
            for dj in range(-radius, radius + 1):
                if max(abs(di), abs(dj)) != radius:
                    continue
                checked += 1
                i, j = i_c + di, j_c + dj
                if block_kind(world_seed, i, j)[0] == kind:
                    a, b = _corner(world_seed, i, j), _corner(world_seed, i + 1, j + 1)
                    x, y = world.to_xy((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
                    return float(x), float(y)
        radius += 1
    raise ValueError(f"world {world_seed}: no {kind!r} block found within {tries} blocks of {start}")
