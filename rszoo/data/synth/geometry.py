"""Small planar geometry used by the generator (one job: boxes and polygons in pixel coordinates).

Pixel convention everywhere in :mod:`rszoo.data.synth`: ``x`` to the right, ``y`` down, pixel ``(row r, col c)``
covers the square ``[c, c + 1] x [r, r + 1]``, so its centre is ``(c + 0.5, r + 0.5)``. Angles are degrees measured
clockwise *on screen* from the +x axis (because y points down), so 90 deg points down (south).

Example:
    >>> corners = obb_corners(10.0, 10.0, 4.0, 2.0, 0.0)
    >>> order_poly(corners)
    [[8.0, 9.0], [12.0, 9.0], [12.0, 11.0], [8.0, 11.0]]
    >>> poly_area(order_poly(corners))
    8.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "boxes_overlap",
    "convex_hull",
    "hbox_of",
    "obb_corners",
    "order_poly",
    "poly_area",
    "polys_overlap",
    "round2",
    "round2_all",
    "round_points",
    "transform_unit",
]

Point = Sequence[float]
# x + _NEAREST - _NEAREST is the integer nearest to a float x with |x| < 2**51: adding 1.5 * 2**52 leaves no
# fraction bits
_NEAREST = 6755399441055744.0


def round2(value: float) -> float:
    """Round to 0.01 px: the precision stored in scene graphs (keeps JSON short and round-trips exact).

    Equals ``round(value, 2) + 0.0`` (the ``+ 0.0`` turns -0.0 into 0.0), bit for bit, but is faster: ``round``
    goes through decimal strings. See :func:`round2_all` for how.
    """
    return round2_all((value,))[0]


def round2_all(values: Sequence[float]) -> list[float]:
    """:func:`round2` of each value, in one call (hot: every placed object's numbers).

    Away from ties, ``value * 100`` is within rounding error of the exact product, so its nearest integer is the
    exact decimal rounding, and dividing it by 100 gives the closest float to the rounded decimal, as ``round`` does;
    near ties (and for huge or non-finite values) ``round`` decides.

    Example:
        >>> round2_all([1.005, -0.001, 2.675])
        [1.0, 0.0, 2.67]
    """
    nearest = _NEAREST
    out = []
    for value in values:
        scaled = float(value) * 100.0
        # the nearest integer, as a float (the same integer as floor(scaled + 0.5) wherever the tie test passes)
        n = scaled + nearest - nearest
        if -0.4999 < scaled - n < 0.4999 and -1e12 < scaled < 1e12:
            out.append(
                n / 100
            )  # never -0.0 (n is the integer exactly, so this is the integer division's float)
        else:
            out.append(round(float(value), 2) + 0.0)
    return out


def round_points(points: np.ndarray) -> list[list[float]]:
    """Round an ``(n, 2)`` array to 0.01 px and return it as nested lists (no ``-0.0``)."""
    # the array method directly: np.round only forwards to it, through a Python-level wrapper (hot: small arrays)
    return (np.asarray(points, dtype=np.float64).round(2) + 0.0).tolist()


def obb_corners(cx: float, cy: float, length: float, breadth: float, angle_deg: float) -> list[list[float]]:
    """Corners of an oriented box: ``length`` along the heading ``angle_deg``, ``breadth`` across it.

    Returned in the object's own order (rear-left, front-left, front-right, rear-right as seen along the heading).
    """
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    hl, hb = length / 2.0, breadth / 2.0
    out = []
    for u, v in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        out.append([cx + u * hl * c - v * hb * s, cy + u * hl * s + v * hb * c])
    return out


def transform_unit(
    unit: np.ndarray, cx: float, cy: float, length: float, breadth: float, angle_deg: float
) -> np.ndarray:
    """Map points from the unit frame (``u`` along the heading in [-1, 1], ``v`` across in [-1, 1]) to pixels."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    hl, hb = length / 2.0, breadth / 2.0
    m = np.array([[hl * c, hl * s], [-hb * s, hb * c]])
    return unit @ m + np.array([cx, cy])


def order_poly(points: Sequence[Point]) -> list[list[float]]:
    """Order 4 corners clockwise on screen, starting at the smallest y (ties: smallest x); values rounded to 0.01."""
    flat = round2_all([v for p in points for v in (p[0], p[1])])
    return order_rounded([[flat[i], flat[i + 1]] for i in range(0, len(flat), 2)])


def order_rounded(pts: list[list[float]]) -> list[list[float]]:
    """:func:`order_poly` for corners already rounded to 0.01 (the list is reordered, its points are reused)."""
    n = len(pts)
    # shoelace with y down: positive means clockwise as seen on screen
    if n == 4:
        # unrolled for the oriented boxes (hot): the same products, summed in the same order
        (ax, ay), (bx, by), (cx, cy), (dx, dy) = pts
        area2 = (ax * by - bx * ay) + (bx * cy - cx * by) + (cx * dy - dx * cy) + (dx * ay - ax * dy)
    else:
        area2 = 0
        for i in range(n):
            p, q = pts[i], pts[(i + 1) % n]
            area2 += p[0] * q[1] - q[0] * p[1]
    if area2 < 0:
        pts = pts[::-1]
    # the first point with the smallest (y, x), as min() with that key would pick it
    start = 0
    sx, sy = pts[0]
    for i in range(1, n):
        x, y = pts[i]
        if y < sy or (y == sy and x < sx):
            start, sx, sy = i, x, y
    return pts[start:] + pts[:start]


def poly_area(points: Sequence[Point]) -> float:
    """Absolute area of a simple polygon (shoelace)."""
    s = 0.0
    for p, q in zip(points, [*points[1:], *points[:1]]):
        s += p[0] * q[1] - q[0] * p[1]
    return abs(s) / 2.0


def hbox_of(points: Sequence[Point], width: float, height: float) -> list[float]:
    """Tight axis-aligned box ``[x1, y1, x2, y2]`` around ``points``, clipped to the image ``width x height``."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return [
        round2(min(max(min(xs), 0.0), width)),
        round2(min(max(min(ys), 0.0), height)),
        round2(min(max(max(xs), 0.0), width)),
        round2(min(max(max(ys), 0.0), height)),
    ]


def boxes_overlap(a: Sequence[float], b: Sequence[float], pad: float = 0.0) -> bool:
    """True when two ``[x1, y1, x2, y2]`` boxes, grown by ``pad``, intersect with positive area."""
    return a[0] - pad < b[2] and b[0] - pad < a[2] and a[1] - pad < b[3] and b[1] - pad < a[3]


def polys_overlap(p: Sequence[Point], q: Sequence[Point], pad: float = 0.0, rectangles: bool = False) -> bool:
    """Separating-axis test for two convex polygons; ``pad`` pixels of clearance are required to count as apart.

    With ``rectangles=True`` only the first two edges of each polygon are tried (opposite edges of a rectangle give
    the same axis), halving the work for oriented boxes.
    """
    for poly in (p, q):
        n = 2 if rectangles else len(poly)
        for i in range(n):
            x1, y1 = poly[i][0], poly[i][1]
            x2, y2 = poly[(i + 1) % len(poly)][0], poly[(i + 1) % len(poly)][1]
            nx, ny = y1 - y2, x2 - x1
            norm = math.hypot(nx, ny)
            if norm == 0.0:
                continue
            nx, ny = nx / norm, ny / norm
            dp = [pt[0] * nx + pt[1] * ny for pt in p]
            dq = [pt[0] * nx + pt[1] * ny for pt in q]
            if max(dp) + pad <= min(dq) or max(dq) + pad <= min(dp):
                return False
    return True


def convex_hull(points: Sequence[Point]) -> list[tuple[float, float]]:
    """Convex hull (Andrew's monotone chain), counter-clockwise in maths orientation."""
    pts = sorted({(float(p[0]), float(p[1])) for p in points})
    if len(pts) <= 2:
        return pts

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]
