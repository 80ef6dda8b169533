"""Quadrilateral / polygon geometry for oriented detection: vertex order, areas, boxes, validity and exact IoU.

Coordinates are image pixels with **y pointing down**. A quad is 8 numbers ``[x1, y1, x2, y2, x3, y3, x4, y4]``;
a general polygon is ``2P`` numbers. Batch functions take an array ``(N, 2P)`` (list, numpy or torch) and return
numpy for list/numpy input and torch for torch input; they compute in float64.

* :func:`normalize_quad` is RSCoVLM's ``normalize_polygon``: vertices sorted by ``atan2`` around the centroid
  (ascending = clockwise on screen), starting at the smallest ``(y, x)``. ``clockwise=False`` is LMMRotate/RefGeo.
* :func:`quad_to_rbox` is a ``cv2.minAreaRect`` equivalent without OpenCV. The minimum-area enclosing rectangle has a
  side on a convex-hull edge (rotating calipers); every hull edge joins two input points, so trying the direction of
  every point pair (6 for a quad, a superset of the hull edges) finds it with no hull construction and no branches.
* :func:`polygon_iou` is exact for convex polygons: the intersection's boundary is the parts of each polygon's edges
  inside the other (clipped Cyrus-Beck style) and Green's theorem gives its area -- no vertex sorting, vectorised
  over pairs in torch. **Non-convex fallback**: a simple concave quad is split into the two triangles on either side
  of the diagonal from its reflex vertex (exact); a self-intersecting polygon (and a concave one with more than 4
  vertices) becomes DOTA_devkit's ``polyiou`` signed fan of triangles around its centroid, so its overlap is the
  devkit's winding-number-weighted value, clamped to ``[0, min(|A|, |B|)]``, where shapely would refuse the geometry.
  Only pairs whose horizontal boxes overlap are computed; :func:`polygon_iou_grouped` does whole datasets at once.

Rotated boxes are ``(cx, cy, w, h, angle)`` with ``w >= h``, the angle (radians by default) of the ``w`` side from
+x towards +y, wrapped into ``[-pi/2, pi/2)`` -- the long-side convention RSCoVLM uses for its OBB targets. For
squares either side may come out as ``w``. The minimum-area rectangle is not always unique: when the convex hull is a
triangle (a vertex inside or on the others' hull), every side with acute base angles gives area 2 x triangle; we keep
the first direction in pair order (0-1, 0-2, 0-3, 1-2, ...), OpenCV may keep another.

Example:
    >>> normalize_quad([0, 10, 10, 10, 10, 0, 0, 0])
    [0, 0, 10, 0, 10, 10, 0, 10]
    >>> normalize_quad([0, 10, 10, 10, 10, 0, 0, 0], clockwise=False)
    [0, 0, 0, 10, 10, 10, 10, 0]
    >>> [round(v, 6) for v in quad_to_rbox([0, 0, 4, 0, 4, 2, 0, 2])]
    [2.0, 1.0, 4.0, 2.0, 0.0]
    >>> polygon_area([0, 0, 4, 0, 4, 2, 0, 2]), hbox_of([1, 5, 3, 2, 4, 6, 0, 3])
    (8.0, [0.0, 2.0, 4.0, 6.0])
    >>> round(float(polygon_iou([[0, 0, 2, 0, 2, 2, 0, 2]], [[1, 0, 3, 0, 3, 2, 1, 2]])[0, 0]), 6)
    0.333333
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported lazily so that `import rszoo.data.geometry` stays light
    import torch

__all__ = [
    "convex_mask",
    "hbox_of",
    "hboxes_of",
    "is_convex",
    "is_self_intersecting",
    "normalize_quad",
    "normalize_quads",
    "polygon_area",
    "polygon_areas",
    "polygon_intersection_aligned",
    "polygon_iou",
    "polygon_iou_aligned",
    "polygon_iou_grouped",
    "quad_to_rbox",
    "quad_validity",
    "quads_to_rboxes",
    "rbox_to_quad",
    "rboxes_to_quads",
    "self_intersection_mask",
]

# Pairs per chunk in the IoU kernels: bounds peak memory to roughly 100 MB whatever the number of pairs.
_PAIR_CHUNK = 32768
# Relative tolerances for "on the boundary" tests; coordinates are centred per pair, so these are in units of the
# polygon's own extent.
_INSIDE_RTOL = 1e-9
_PARALLEL_RTOL = 1e-12


# --------------------------------------------------------------------------------------------------------------
# conversions between list / numpy / torch
# --------------------------------------------------------------------------------------------------------------
def _as_points(polys: Any, name: str = "polys") -> tuple[torch.Tensor, bool]:
    """``(N, 2P)`` input of any kind -> float64 tensor ``(N, P, 2)`` and whether the caller gave a tensor."""
    import torch

    is_tensor = isinstance(polys, torch.Tensor)
    t = (
        polys.detach().to("cpu", torch.float64)
        if is_tensor
        else torch.as_tensor(np.asarray(polys, dtype=np.float64))
    )
    if t.ndim == 1:
        t = t.reshape(1, -1)
    if t.ndim == 3 and t.shape[-1] == 2:
        return t, is_tensor
    if t.ndim != 2 or t.shape[1] % 2 or t.shape[1] < 6:
        if t.numel() == 0:
            return t.reshape(0, 4, 2), is_tensor
        raise ValueError(
            f"{name}: expected an array of polygons shaped (N, 2P) with P >= 3 "
            f"([x1, y1, x2, y2, ...]), got shape {tuple(t.shape)}"
        )
    return t.reshape(t.shape[0], t.shape[1] // 2, 2), is_tensor


def _out(t: torch.Tensor, is_tensor: bool) -> Any:
    return t if is_tensor else t.numpy()


# --------------------------------------------------------------------------------------------------------------
# vertex order
# --------------------------------------------------------------------------------------------------------------
def normalize_quad(poly: Sequence[float], clockwise: bool = True) -> list:
    """Reorder a quad's vertices: sorted by angle around the centroid, starting at the smallest ``(y, x)``.

    Byte-for-byte RSCoVLM's ``normalize_polygon`` (scalar ``math.atan2``, Python's stable sort, first minimum), so
    training targets written with it match the released data exactly; input values keep their type (ints stay ints).

    Args:
        poly: 8 numbers ``[x1, y1, ..., x4, y4]``.
        clockwise: ``True`` sorts by ascending ``atan2(y - cy, x - cx)``, which is clockwise on screen because y
            points down (RSCoVLM dense detection); ``False`` is counter-clockwise on screen (LMMRotate, RefGeo).

    Example:
        >>> normalize_quad([10, 0, 0, 0, 0, 10, 10, 10])
        [0, 0, 10, 0, 10, 10, 0, 10]
    """
    if len(poly) != 8:
        raise ValueError(
            f"normalize_quad: a quad has 8 numbers [x1, y1, ..., x4, y4], got {len(poly)}: {list(poly)!r}"
        )
    points = [(poly[i], poly[i + 1]) for i in range(0, 8, 2)]
    cx = sum(x for x, _ in points) / 4
    cy = sum(y for _, y in points) / 4
    points.sort(key=lambda p: math.atan2(p[1] - cy, p[0] - cx), reverse=not clockwise)
    start = points.index(min(points, key=lambda p: (p[1], p[0])))
    ordered = points[start:] + points[:start]
    return [v for p in ordered for v in p]


def normalize_quads(polys: Any, clockwise: bool = True) -> Any:
    """Batch :func:`normalize_quad` on ``(N, 8)``; equal to the scalar version element by element.

    Vectorised ``np.arctan2`` and ``math.atan2`` can differ in the last bit, which only matters when two vertices
    have (nearly) the same angle around the centroid (duplicated or collinear vertices). Such quads are detected and
    redone with the scalar routine, so the result is exactly the reference order in every case. Returns float64
    (numpy, or torch for torch input).

    Example:
        >>> normalize_quads([[0, 10, 10, 10, 10, 0, 0, 0]]).tolist()
        [[0.0, 0.0, 10.0, 0.0, 10.0, 10.0, 0.0, 10.0]]
    """
    is_tensor = type(polys).__module__.startswith("torch")
    arr = np.asarray(polys.detach().cpu().numpy() if is_tensor else polys, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or (arr.shape[1] != 8 and arr.size):
        raise ValueError(f"normalize_quads: expected quads shaped (N, 8), got shape {arr.shape}")
    arr = arr.reshape(-1, 8)
    pts = arr.reshape(-1, 4, 2)
    x, y = pts[..., 0], pts[..., 1]
    # same summation order as the scalar reference: ((p0 + p1) + p2) + p3
    cx = (((x[:, 0] + x[:, 1]) + x[:, 2]) + x[:, 3]) / 4
    cy = (((y[:, 0] + y[:, 1]) + y[:, 2]) + y[:, 3]) / 4
    ang = np.arctan2(y - cy[:, None], x - cx[:, None])
    order = np.argsort(ang if clockwise else -ang, axis=1, kind="stable")
    s = np.take_along_axis(pts, order[..., None], axis=1)
    sx, sy = s[..., 0], s[..., 1]
    is_min = sy == sy.min(axis=1, keepdims=True)
    xmin = np.where(is_min, sx, np.inf).min(axis=1, keepdims=True)
    start = (is_min & (sx == xmin)).argmax(axis=1)
    idx = (start[:, None] + np.arange(4)) % 4
    out = np.take_along_axis(s, idx[..., None], axis=1).reshape(-1, 8)
    # near-ties in angle: the order depends on atan2's last bit -> use the scalar reference for those rows
    sorted_ang = np.sort(ang, axis=1)
    rows = np.nonzero((np.diff(sorted_ang, axis=1) <= 1e-12).any(axis=1))[0]
    if len(rows):
        out[rows] = [normalize_quad(r, clockwise) for r in arr[rows].tolist()]
    if is_tensor:
        import torch

        return torch.from_numpy(out)
    return out


# --------------------------------------------------------------------------------------------------------------
# areas, boxes, validity
# --------------------------------------------------------------------------------------------------------------
def _signed_area(pts: torch.Tensor) -> torch.Tensor:
    """Shoelace signed area of ``(..., P, 2)``; positive = counter-clockwise in math axes (clockwise on screen)."""
    # centre first: shoelace on raw image coordinates loses digits to cancellation
    c = pts - pts.mean(dim=-2, keepdim=True)
    nxt = c.roll(-1, dims=-2)
    return 0.5 * (c[..., 0] * nxt[..., 1] - c[..., 1] * nxt[..., 0]).sum(dim=-1)


def polygon_areas(polys: Any, signed: bool = False) -> Any:
    """Shoelace area of each polygon in ``(N, 2P)``; ``signed=True`` keeps the orientation sign.

    The sign is positive when the vertices run counter-clockwise in math axes, i.e. clockwise on screen.
    """
    pts, is_tensor = _as_points(polys)
    a = _signed_area(pts)
    return _out(a if signed else a.abs(), is_tensor)


def polygon_area(poly: Sequence[float], signed: bool = False) -> float:
    """Area of one polygon ``[x1, y1, ..., xP, yP]`` (see :func:`polygon_areas`)."""
    return float(polygon_areas([list(poly)], signed=signed)[0])


def hboxes_of(polys: Any) -> Any:
    """Horizontal boxes ``[xmin, ymin, xmax, ymax]`` of ``(N, 2P)`` polygons."""
    import torch

    pts, is_tensor = _as_points(polys)
    return _out(
        torch.cat([pts.amin(dim=1), pts.amax(dim=1)], dim=1) if len(pts) else pts.new_zeros(0, 4), is_tensor
    )


def hbox_of(poly: Sequence[float]) -> list[float]:
    """Horizontal box ``[xmin, ymin, xmax, ymax]`` of one polygon."""
    xs, ys = poly[0::2], poly[1::2]
    if len(xs) != len(ys) or not xs:
        raise ValueError(f"hbox_of: expected [x1, y1, x2, y2, ...] with an even count, got {list(poly)!r}")
    return [float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys))]


def _cross(ax: torch.Tensor, ay: torch.Tensor, bx: torch.Tensor, by: torch.Tensor) -> torch.Tensor:
    return ax * by - ay * bx


def _convex_flags(pts: torch.Tensor, area: torch.Tensor | None = None) -> torch.Tensor:
    """Strictly positive area and every turn in the same direction (collinear vertices allowed, spikes not)."""
    import torch

    area = _signed_area(pts) if area is None else area
    sign = torch.where(area < 0, -1.0, 1.0).to(pts.dtype)
    e = pts.roll(-1, dims=-2) - pts
    ep = e.roll(1, dims=-2)  # incoming edge of each vertex
    turn = _cross(ep[..., 0], ep[..., 1], e[..., 0], e[..., 1]) * sign[:, None]
    dot = ep[..., 0] * e[..., 0] + ep[..., 1] * e[..., 1]
    scale = ep.norm(dim=-1) * e.norm(dim=-1)
    tol = _PARALLEL_RTOL * scale
    left = turn >= -tol
    no_spike = (turn.abs() > tol) | (dot >= 0)
    extent = (pts.amax(dim=1) - pts.amin(dim=1)).amax(dim=1)
    return (area.abs() > 1e-12 * extent.square()) & (left & no_spike).all(dim=1)


def convex_mask(polys: Any) -> Any:
    """Boolean per polygon: non-degenerate and convex (consistent turn direction, no self-crossing)."""
    pts, is_tensor = _as_points(polys)
    return _out(_convex_flags(pts), is_tensor)


def is_convex(poly: Sequence[float]) -> bool:
    """Whether one polygon is non-degenerate and convex (see :func:`convex_mask`)."""
    return bool(convex_mask([list(poly)])[0])


def _segments_intersect(
    p1: torch.Tensor, p2: torch.Tensor, q1: torch.Tensor, q2: torch.Tensor
) -> torch.Tensor:
    """Closed-segment intersection test (touching counts) for batched points ``(..., 2)``."""
    import torch

    def orient(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return torch.sign(
            _cross(b[..., 0] - a[..., 0], b[..., 1] - a[..., 1], c[..., 0] - a[..., 0], c[..., 1] - a[..., 1])
        )

    def on_segment(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # c collinear with ab
        lo, hi = torch.minimum(a, b), torch.maximum(a, b)
        return ((c >= lo) & (c <= hi)).all(dim=-1)

    o1, o2, o3, o4 = orient(p1, p2, q1), orient(p1, p2, q2), orient(q1, q2, p1), orient(q1, q2, p2)
    proper = (o1 * o2 < 0) & (o3 * o4 < 0)
    touch = (
        ((o1 == 0) & on_segment(p1, p2, q1))
        | ((o2 == 0) & on_segment(p1, p2, q2))
        | ((o3 == 0) & on_segment(q1, q2, p1))
        | ((o4 == 0) & on_segment(q1, q2, p2))
    )
    return proper | touch


def self_intersection_mask(polys: Any) -> Any:
    """Boolean per polygon: the boundary crosses or touches itself.

    Non-adjacent edges that cross or touch (a bow-tie, a vertex on an opposite edge), and adjacent edges that fold
    back onto each other (a spike). Repeated consecutive vertices are not a crossing: a quad with a duplicated vertex
    is a triangle, and edges separated only by zero-length edges count as adjacent. This matches shapely's ring
    validity on non-degenerate polygons.
    """
    import torch

    pts, is_tensor = _as_points(polys)
    n, p = pts.shape[0], pts.shape[1]
    hit = torch.zeros(n, dtype=torch.bool)
    nxt = pts.roll(-1, dims=1)
    e = nxt - pts
    zero = (e == 0).all(dim=-1)  # (N, P)
    for i in range(p):
        for j in range(i + 1, p):
            # edges i and j are (effectively) adjacent if every edge between them on one side has zero length
            inner = zero[:, i + 1 : j].all(dim=1)
            outer = zero[:, [k for k in range(p) if k > j or k < i]].all(dim=1)
            adjacent = inner | outer
            live = ~zero[:, i] & ~zero[:, j]
            collinear = _cross(e[:, i, 0], e[:, i, 1], e[:, j, 0], e[:, j, 1]) == 0
            folded = collinear & ((e[:, i] * e[:, j]).sum(dim=-1) < 0)
            crossing = _segments_intersect(pts[:, i], nxt[:, i], pts[:, j], nxt[:, j])
            hit |= live & torch.where(adjacent, folded, crossing)
    return _out(hit, is_tensor)


def is_self_intersecting(poly: Sequence[float]) -> bool:
    """Whether non-adjacent edges of one polygon cross or touch (see :func:`self_intersection_mask`)."""
    return bool(self_intersection_mask([list(poly)])[0])


def quad_validity(polys: Any, min_area: float = 1e-6) -> dict[str, Any]:
    """Classify polygons so callers can drop and count bad ones.

    Returns boolean arrays ``degenerate`` (area <= ``min_area`` px^2), ``self_intersecting``, ``non_convex``
    (simple but concave) and ``valid`` (neither degenerate nor self-intersecting; concave quads are valid). A flat
    quad whose edges fold back onto each other is both degenerate and self-intersecting.

    Example:
        >>> v = quad_validity([[0, 0, 4, 0, 4, 4, 0, 4], [0, 0, 4, 4, 4, 0, 0, 4], [0, 0, 1, 1, 2, 2, 3, 3]])
        >>> v["valid"].tolist(), v["self_intersecting"].tolist(), v["degenerate"].tolist()
        ([True, False, False], [False, True, True], [False, True, True])
    """
    pts, is_tensor = _as_points(polys)
    degenerate = _signed_area(pts).abs() <= min_area
    crossing = self_intersection_mask(pts)  # tensor in -> tensor out
    convex = _convex_flags(pts)
    out = {
        "degenerate": degenerate,
        "self_intersecting": crossing,
        "non_convex": ~convex & ~crossing & ~degenerate,
        "valid": ~degenerate & ~crossing,
    }
    return {k: _out(v, is_tensor) for k, v in out.items()}


# --------------------------------------------------------------------------------------------------------------
# rotated boxes
# --------------------------------------------------------------------------------------------------------------
def _min_area_rect(pts: torch.Tensor) -> torch.Tensor:
    """``(N, P, 2)`` -> ``(N, 5)`` minimum-area rectangles (see the module docstring for the method)."""
    import torch

    n, p = pts.shape[0], pts.shape[1]
    if n == 0:
        return pts.new_zeros(0, 5)
    ii, jj = torch.triu_indices(p, p, offset=1)
    d = pts[:, jj] - pts[:, ii]  # (N, D, 2) candidate caliper directions
    length = d.norm(dim=-1)
    ok = length > 0
    u = d / torch.where(ok, length, 1.0)[..., None]
    v = torch.stack([-u[..., 1], u[..., 0]], dim=-1)
    c = pts - pts.mean(dim=1, keepdim=True)
    pu = torch.einsum("npk,ndk->ndp", c, u)
    pv = torch.einsum("npk,ndk->ndp", c, v)
    umin, umax = pu.amin(dim=-1), pu.amax(dim=-1)
    vmin, vmax = pv.amin(dim=-1), pv.amax(dim=-1)
    w, h = umax - umin, vmax - vmin
    area = torch.where(ok, w * h, math.inf)
    best = area.argmin(dim=1)
    rows = torch.arange(n)
    ub, vb = u[rows, best], v[rows, best]
    wb, hb = w[rows, best], h[rows, best]
    mu = (umin[rows, best] + umax[rows, best]) / 2
    mv = (vmin[rows, best] + vmax[rows, best]) / 2
    centre = pts.mean(dim=1) + mu[:, None] * ub + mv[:, None] * vb
    angle = torch.atan2(ub[:, 1], ub[:, 0])
    swap = wb < hb
    wb, hb = torch.where(swap, hb, wb), torch.where(swap, wb, hb)
    angle = torch.where(swap, angle + math.pi / 2, angle)
    angle = torch.remainder(angle + math.pi / 2, math.pi) - math.pi / 2
    degenerate = ~ok.any(dim=1)  # all points identical
    wb, hb = torch.where(degenerate, 0.0, wb), torch.where(degenerate, 0.0, hb)
    angle = torch.where(degenerate, 0.0, angle)
    return torch.stack([centre[:, 0], centre[:, 1], wb, hb, angle], dim=1)


def quads_to_rboxes(polys: Any, degrees: bool = False) -> Any:
    """Minimum-area rotated rectangles ``(N, 5)`` = ``(cx, cy, w, h, angle)`` of ``(N, 2P)`` polygons.

    Equivalent to ``cv2.minAreaRect`` followed by the long-side canonicalisation (``w >= h``, angle of the long
    side in ``[-pi/2, pi/2)``) that RSCoVLM applies to its OBB targets.
    """
    pts, is_tensor = _as_points(polys)
    r = _min_area_rect(pts)
    if degrees:
        r[:, 4] = r[:, 4] * (180.0 / math.pi)
    return _out(r, is_tensor)


def quad_to_rbox(poly: Sequence[float], degrees: bool = False) -> list[float]:
    """Minimum-area rotated rectangle ``[cx, cy, w, h, angle]`` of one polygon (see :func:`quads_to_rboxes`)."""
    return [float(v) for v in quads_to_rboxes([list(poly)], degrees=degrees)[0]]


def rboxes_to_quads(rboxes: Any, degrees: bool = False) -> Any:
    """Corner quads ``(N, 8)`` of rotated boxes ``(N, 5)``, in mmrotate's ``rbox2qbox`` corner order."""
    import torch

    is_tensor = isinstance(rboxes, torch.Tensor)
    r = (
        rboxes.detach().to("cpu", torch.float64)
        if is_tensor
        else torch.as_tensor(np.asarray(rboxes, np.float64))
    )
    if r.ndim == 1:
        r = r.reshape(1, -1)
    if r.ndim != 2 or r.shape[1] != 5:
        raise ValueError(
            f"rboxes_to_quads: expected (N, 5) [cx, cy, w, h, angle], got shape {tuple(r.shape)}"
        )
    theta = r[:, 4] * (math.pi / 180.0) if degrees else r[:, 4]
    cos, sin = torch.cos(theta), torch.sin(theta)
    ctr = r[:, :2]
    v1 = torch.stack([r[:, 2] / 2 * cos, r[:, 2] / 2 * sin], dim=1)
    v2 = torch.stack([-r[:, 3] / 2 * sin, r[:, 3] / 2 * cos], dim=1)
    q = torch.cat([ctr + v1 + v2, ctr + v1 - v2, ctr - v1 - v2, ctr - v1 + v2], dim=1)
    return _out(q, is_tensor)


def rbox_to_quad(rbox: Sequence[float], degrees: bool = False) -> list[float]:
    """Corners ``[x1, y1, ..., x4, y4]`` of one rotated box ``[cx, cy, w, h, angle]``."""
    return [float(v) for v in rboxes_to_quads([list(rbox)], degrees=degrees)[0]]


# --------------------------------------------------------------------------------------------------------------
# exact polygon intersection and IoU
# --------------------------------------------------------------------------------------------------------------
def _inside_part(
    a: torch.Tensor,
    d: torch.Tensor,
    dlen: torch.Tensor,
    q: torch.Tensor,
    qe: torch.Tensor,
    qlen: torch.Tensor,
    eps: torch.Tensor,
    keep_shared: bool,
) -> torch.Tensor:
    """Boundary-integral share of the edges ``a + t d`` (``(B, K, 2)``) that lie inside convex ``q``.

    Each edge is clipped to ``q``'s half-planes (Cyrus-Beck); the kept piece ``[t0, t1]`` contributes
    ``(t1 - t0) * cross(a, d) / 2``. An edge lying on one of ``q``'s edges counts only if it runs the same way and
    ``keep_shared`` (so a shared boundary is counted once, from one side, and a touching one not at all).
    """
    import torch

    qx, qy = qe[:, None, :, 0], qe[:, None, :, 1]
    ax, ay = a[:, :, None, 0], a[:, :, None, 1]
    dx, dy = d[:, :, None, 0], d[:, :, None, 1]
    # n0 = cross(qe_j, a_i - q_j) > 0: the edge starts strictly inside half-plane j; n1: its rate along the edge
    n0 = qx * ay - qy * ax - (qe[..., 0] * q[..., 1] - qe[..., 1] * q[..., 0])[:, None, :]
    n1 = qx * dy - qy * dx
    ql = qlen[:, None, :]
    live = ql > 0  # a repeated vertex is no constraint
    par = n1.abs() <= _PARALLEL_RTOL * ql * dlen[:, :, None]
    tol = eps * ql
    inside = n0 > tol
    if keep_shared:
        inside |= (n0.abs() <= tol) & ((qx * dx + qy * dy) > 0)
    blocked = (par & live & ~inside).any(dim=2)
    cut = live & ~par
    t = -n0 / torch.where(cut, n1, 1.0)
    lo = torch.where(cut & (n1 > 0), t, -math.inf).amax(dim=2).clamp(min=0.0)
    hi = torch.where(cut & (n1 < 0), t, math.inf).amin(dim=2).clamp(max=1.0)
    seg = torch.where(blocked, 0.0, (hi - lo).clamp(min=0.0))
    return 0.5 * (seg * (a[..., 0] * d[..., 1] - a[..., 1] * d[..., 0])).sum(dim=1)


def _convex_intersection_area(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Intersection area of positively oriented convex polygons ``p (B, K, 2)`` and ``q (B, L, 2)``.

    The intersection's boundary is made of the parts of ``p``'s edges inside ``q`` and of ``q``'s edges inside ``p``;
    Green's theorem turns its area into a sum over those parts, so there is no vertex sorting and no ``atan2``.
    Repeated vertices (triangles stored as quads) add nothing.
    """
    origin = p.mean(dim=1, keepdim=True)  # centring keeps the cross products well conditioned
    p, q = p - origin, q - origin
    eps = (_INSIDE_RTOL * _max_abs(p, q))[:, None, None]
    pe = p.roll(-1, dims=1) - p
    qe = q.roll(-1, dims=1) - q
    plen, qlen = pe.norm(dim=-1), qe.norm(dim=-1)
    area = _inside_part(p, pe, plen, q, qe, qlen, eps, True) + _inside_part(
        q, qe, qlen, p, pe, plen, eps, False
    )
    return area.clamp(min=0.0)


def _max_abs(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Largest absolute coordinate of each pair (the length scale of the tolerances)."""
    import torch

    return torch.maximum(p.abs().amax(dim=(1, 2)), q.abs().amax(dim=(1, 2))) + 1e-300


def _pieces(pts: torch.Tensor, convex: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split positively oriented polygons ``(B, P, 2)`` into convex pieces ``(B, P, P, 2)`` with weights ``(B, P)``.

    Convex: the polygon itself (weight 1). Simple concave quad: the two triangles on either side of the diagonal
    from its reflex vertex (weight 1 each). Anything else (self-intersecting, P > 4 concave): DOTA_devkit's signed
    fan of triangles around the centroid (weight = orientation sign). Triangles repeat a vertex to keep P corners;
    unused pieces have weight 0. The signed sum of piece intersections is the overlap integral of winding numbers,
    i.e. the area of intersection for simple polygons.
    """
    import torch

    b, p = pts.shape[0], pts.shape[1]
    pieces = pts[:, None].expand(b, p, p, 2).clone()
    weight = pts.new_zeros(b, p)
    weight[:, 0] = convex.to(pts.dtype)
    rest = ~convex
    if rest.any():
        sub = pts[rest]
        simple = ~self_intersection_mask(sub) if p == 4 else torch.zeros(len(sub), dtype=torch.bool)
        # fan for everything first, then overwrite simple concave quads with the reflex split
        c = sub.mean(dim=1, keepdim=True).expand(-1, p, -1)
        tri = torch.stack([c, sub, sub.roll(-1, dims=1)], dim=2)  # (m, P, 3, 2)
        sgn = torch.sign(_signed_area(tri))
        tri = torch.where((sgn < 0)[..., None, None], tri[:, :, [0, 2, 1]], tri)
        pad = tri[:, :, 2:3].expand(-1, -1, p - 3, -1)
        sub_pieces = torch.cat([tri, pad], dim=2)
        sub_weight = sgn
        if simple.any():
            q = sub[simple]
            e = q.roll(-1, dims=1) - q
            ep = e.roll(1, dims=1)
            turn = _cross(ep[..., 0], ep[..., 1], e[..., 0], e[..., 1])
            r = turn.argmin(dim=1)  # the reflex vertex turns the wrong way (orientation is positive)
            idx = (r[:, None] + torch.arange(4)) % 4
            v = torch.gather(q, 1, idx[..., None].expand(-1, -1, 2))  # v0 = reflex vertex
            t1 = torch.stack([v[:, 0], v[:, 1], v[:, 2], v[:, 2]], dim=1)
            t2 = torch.stack([v[:, 2], v[:, 3], v[:, 0], v[:, 0]], dim=1)
            split = sub_pieces[simple].clone()
            split[:, 0], split[:, 1] = t1, t2
            w = torch.zeros(len(q), p, dtype=pts.dtype)
            w[:, :2] = 1.0
            sub_pieces[simple] = split
            sub_weight[simple] = w
        pieces[rest] = sub_pieces
        weight[rest] = sub_weight
    return pieces, weight


def _intersection_pairs(
    pa: torch.Tensor, pb: torch.Tensor, convex_a: torch.Tensor, convex_b: torch.Tensor
) -> torch.Tensor:
    """Intersection areas of aligned pairs ``(B, P, 2)`` x ``(B, Q, 2)`` (positively oriented)."""
    import torch

    out = pa.new_zeros(pa.shape[0])
    both = convex_a & convex_b
    idx = torch.nonzero(both).flatten()
    for s in range(0, len(idx), _PAIR_CHUNK):
        sel = idx[s : s + _PAIR_CHUNK]
        out[sel] = _convex_intersection_area(pa[sel], pb[sel])
    idx = torch.nonzero(~both).flatten()
    if len(idx):
        na, nb = pa.shape[1], pb.shape[1]
        step = max(1, _PAIR_CHUNK // (na * nb))
        for s in range(0, len(idx), step):
            sel = idx[s : s + step]
            ka, wa = _pieces(pa[sel], convex_a[sel])
            kb, wb = _pieces(pb[sel], convex_b[sel])
            w = (wa[:, :, None] * wb[:, None, :]).reshape(len(sel), -1)
            live = torch.nonzero(w != 0, as_tuple=True)  # (pair, piece-pair)
            i, j = live[1] // nb, live[1] % nb
            part = _convex_intersection_area(ka[live[0], i], kb[live[0], j]) * w[live]
            out[sel] = torch.zeros(len(sel), dtype=out.dtype).index_add_(0, live[0], part)
    return out


class _Prepared:
    """Oriented points, |area|, convexity and horizontal boxes of a polygon set (computed once per call)."""

    def __init__(self, pts: torch.Tensor) -> None:
        import torch

        if not len(pts):
            self.pts, self.area, self.hbox = pts, pts.new_zeros(0), pts.new_zeros(0, 4)
            self.convex = torch.zeros(0, dtype=torch.bool)
            return
        signed = _signed_area(pts)
        neg = signed < 0
        self.pts = torch.where(neg[:, None, None], pts.flip(dims=[1]), pts)  # positive orientation
        self.area = signed.abs()
        self.convex = _convex_flags(self.pts, self.area)
        self.hbox = torch.cat([pts.amin(dim=1), pts.amax(dim=1)], dim=1)


def _pair_iou(
    a: _Prepared, b: _Prepared, ia: torch.Tensor, ib: torch.Tensor, mode: str = "iou"
) -> torch.Tensor:
    """IoU (or IoF w.r.t. ``a``, or raw intersection) of the index pairs ``(ia, ib)``."""
    import torch

    inter = _intersection_pairs(a.pts[ia], b.pts[ib], a.convex[ia], b.convex[ib])
    aa, ab = a.area[ia], b.area[ib]
    inter = torch.minimum(inter.clamp(min=0.0), torch.minimum(aa, ab))
    if mode == "inter":
        return inter
    if mode == "iof":
        return torch.where(aa > 0, inter / aa.clamp(min=1e-300), 0.0)
    union = aa + ab - inter
    return torch.where((aa > 0) & (ab > 0) & (union > 0), inter / union.clamp(min=1e-300), 0.0)


def _hbox_overlap_pairs(ha: torch.Tensor, hb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index pairs whose horizontal boxes overlap with positive area (row chunks bound the N x M temporaries)."""
    import torch

    ias, ibs = [], []
    rows = max(1, 4_000_000 // max(1, len(hb)))
    for s in range(0, len(ha), rows):
        h = ha[s : s + rows]
        w = torch.minimum(h[:, None, 2], hb[None, :, 2]) - torch.maximum(h[:, None, 0], hb[None, :, 0])
        hh = torch.minimum(h[:, None, 3], hb[None, :, 3]) - torch.maximum(h[:, None, 1], hb[None, :, 1])
        i, j = torch.nonzero((w > 0) & (hh > 0), as_tuple=True)
        ias.append(i + s)
        ibs.append(j)
    if not ias:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    return torch.cat(ias), torch.cat(ibs)


def polygon_iou(a: Any, b: Any) -> Any:
    """Pairwise IoU matrix ``(N, M)`` between polygons ``a (N, 2P)`` and ``b (M, 2Q)``.

    Exact for convex polygons; non-convex and self-intersecting ones follow DOTA_devkit's ``polyiou`` (see the module
    docstring). Degenerate (zero-area) polygons have IoU 0 with everything. Vertex order may be clockwise or not.

    Example:
        >>> iou = polygon_iou([[0, 0, 2, 0, 2, 2, 0, 2], [5, 5, 6, 5, 6, 6, 5, 6]], [[0, 0, 2, 0, 2, 1, 0, 1]])
        >>> iou.round(6).tolist()
        [[0.5], [0.0]]
    """
    import torch

    pa, ta = _as_points(a, "a")
    pb, _ = _as_points(b, "b")
    out = torch.zeros(len(pa), len(pb), dtype=torch.float64)
    if len(pa) and len(pb):
        A, B = _Prepared(pa), _Prepared(pb)
        ia, ib = _hbox_overlap_pairs(A.hbox, B.hbox)
        if len(ia):
            out[ia, ib] = _pair_iou(A, B, ia, ib)
    return _out(out, ta)


def polygon_iou_aligned(a: Any, b: Any, mode: str = "iou") -> Any:
    """IoU of row-aligned pairs ``a[i]`` / ``b[i]`` -> ``(N,)``; ``mode="iof"`` divides by ``area(a[i])`` instead."""
    import torch

    if mode not in ("iou", "iof"):
        raise ValueError(f"polygon_iou_aligned: mode must be 'iou' or 'iof', got {mode!r}")
    pa, ta = _as_points(a, "a")
    pb, _ = _as_points(b, "b")
    if len(pa) != len(pb):
        raise ValueError(f"polygon_iou_aligned: a and b need the same length, got {len(pa)} and {len(pb)}")
    out = torch.zeros(len(pa), dtype=torch.float64)
    if len(pa):
        A, B = _Prepared(pa), _Prepared(pb)
        w = torch.minimum(A.hbox[:, 2], B.hbox[:, 2]) - torch.maximum(A.hbox[:, 0], B.hbox[:, 0])
        h = torch.minimum(A.hbox[:, 3], B.hbox[:, 3]) - torch.maximum(A.hbox[:, 1], B.hbox[:, 1])
        idx = torch.nonzero((w > 0) & (h > 0)).flatten()
        if len(idx):
            out[idx] = _pair_iou(A, B, idx, idx, mode=mode)
    return _out(out, ta)


def polygon_intersection_aligned(a: Any, b: Any) -> Any:
    """Intersection area of row-aligned pairs ``a[i]`` / ``b[i]`` -> ``(N,)``."""
    import torch

    pa, ta = _as_points(a, "a")
    pb, _ = _as_points(b, "b")
    if len(pa) != len(pb):
        raise ValueError(
            f"polygon_intersection_aligned: a and b need the same length, got {len(pa)} and {len(pb)}"
        )
    out = torch.zeros(len(pa), dtype=torch.float64)
    if len(pa):
        A, B = _Prepared(pa), _Prepared(pb)
        idx = torch.arange(len(pa))
        out = _pair_iou(A, B, idx, idx, mode="inter")
    return _out(out, ta)


def _group_pairs(
    key_a: np.ndarray, key_b: np.ndarray, hbox_a: np.ndarray, hbox_b: np.ndarray, max_pairs: int = 4_000_000
) -> list[tuple[np.ndarray, np.ndarray]]:
    """All ``(i, j)`` with ``key_a[i] == key_b[j]`` whose horizontal boxes overlap.

    Large groups (hundreds of candidate pairs each, e.g. whole images) are tested group by group with a dense
    broadcast; many small groups (e.g. image x class) in one flat expansion, chunked to ``max_pairs`` candidates.
    """
    order_b = np.argsort(key_b, kind="stable")
    sorted_b = key_b[order_b]
    lo = np.searchsorted(sorted_b, key_a, "left")
    counts = np.searchsorted(sorted_b, key_a, "right") - lo
    total = int(counts.sum())
    if total == 0:
        return []
    n_groups = len(np.unique(key_a[counts > 0]))
    out = []
    if total >= 512 * n_groups:
        order_a = np.argsort(key_a, kind="stable")
        sorted_a = key_a[order_a]
        keys = np.unique(sorted_a)
        a_lo, a_hi = np.searchsorted(sorted_a, keys, "left"), np.searchsorted(sorted_a, keys, "right")
        b_lo, b_hi = np.searchsorted(sorted_b, keys, "left"), np.searchsorted(sorted_b, keys, "right")
        for k in np.nonzero(b_hi > b_lo)[0]:
            ia, jb = order_a[a_lo[k] : a_hi[k]], order_b[b_lo[k] : b_hi[k]]
            ha, hb = hbox_a[ia], hbox_b[jb]
            w = np.minimum(ha[:, None, 2], hb[None, :, 2]) - np.maximum(ha[:, None, 0], hb[None, :, 0])
            h = np.minimum(ha[:, None, 3], hb[None, :, 3]) - np.maximum(ha[:, None, 1], hb[None, :, 1])
            r, c = np.nonzero((w > 0) & (h > 0))
            out.append((ia[r], jb[c]))
        return out
    csum = np.cumsum(counts)
    start = 0
    while start < len(key_a):
        base = csum[start - 1] if start else 0
        stop = max(int(np.searchsorted(csum, base + max_pairs, "right")), start + 1)
        c = counts[start:stop]
        ia = np.repeat(np.arange(start, stop), c)
        jb = order_b[lo[ia] + np.arange(len(ia)) - np.repeat(np.cumsum(c) - c, c)]
        ha, hb = hbox_a[ia], hbox_b[jb]
        w = np.minimum(ha[:, 2], hb[:, 2]) - np.maximum(ha[:, 0], hb[:, 0])
        h = np.minimum(ha[:, 3], hb[:, 3]) - np.maximum(ha[:, 1], hb[:, 1])
        ok = (w > 0) & (h > 0)
        out.append((ia[ok], jb[ok]))
        start = stop
    return out


def polygon_iou_grouped(
    a: Any, b: Any, groups_a: Sequence[Any], groups_b: Sequence[Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse IoU of every pair ``(i, j)`` with ``groups_a[i] == groups_b[j]``: e.g. all images of a dataset at once.

    Only pairs whose horizontal boxes overlap are returned (every other pair of the same group has IoU 0), so one
    call replaces a loop of per-image :func:`polygon_iou` matrices at a fraction of the cost.

    Args:
        a, b: polygons ``(N, 2P)`` and ``(M, 2Q)``.
        groups_a, groups_b: one hashable group label per polygon (image id, or (image, class)).

    Returns:
        ``(i, j, iou)`` numpy arrays.

    Example:
        >>> sq = [0, 0, 2, 0, 2, 2, 0, 2]
        >>> i, j, iou = polygon_iou_grouped([sq, sq], [sq, sq], ["img1", "img2"], ["img2", "img1"])
        >>> i.tolist(), j.tolist(), iou.tolist()
        ([0, 1], [1, 0], [1.0, 1.0])
    """
    import torch

    pa, _ = _as_points(a, "a")
    pb, _ = _as_points(b, "b")
    ga, gb = list(groups_a), list(groups_b)
    if len(ga) != len(pa) or len(gb) != len(pb):
        raise ValueError(
            f"polygon_iou_grouped: need one group per polygon, got {len(ga)} groups for {len(pa)} polygons in a "
            f"and {len(gb)} for {len(pb)} in b"
        )
    empty = np.zeros(0, dtype=np.int64)
    if not len(pa) or not len(pb):
        return empty, empty, np.zeros(0)
    ids: dict[Any, int] = {}
    ka = np.fromiter((ids.setdefault(g, len(ids)) for g in ga), dtype=np.int64, count=len(ga))
    kb = np.fromiter((ids.get(g, -1) for g in gb), dtype=np.int64, count=len(gb))
    A, B = _Prepared(pa), _Prepared(pb)
    chunks = _group_pairs(ka, kb, A.hbox.numpy(), B.hbox.numpy())
    ia = np.concatenate([c[0] for c in chunks]) if chunks else empty
    ib = np.concatenate([c[1] for c in chunks]) if chunks else empty
    if not len(ia):
        return empty, empty, np.zeros(0)
    iou = _pair_iou(A, B, torch.from_numpy(ia), torch.from_numpy(ib)).numpy()
    return ia, ib, iou
