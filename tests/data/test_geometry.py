"""Geometry parity: vertex order vs RSCoVLM's normalize_polygon, areas / IoU / min-area rectangles vs shapely."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
import torch

from rszoo.data import geometry as G


# ---- reference: RSCoVLM rscovlm/training/data/dense_det_dataset.py::normalize_polygon, copied verbatim ---------
def reference_normalize_polygon(polygon, clockwise=True):
    points = [(polygon[i], polygon[i + 1]) for i in range(0, 8, 2)]
    center = (sum(x for x, y in points) / 4, sum(y for x, y in points) / 4)
    angle_from_center = lambda point: math.atan2(point[1] - center[1], point[0] - center[0])  # noqa: E731
    points.sort(key=angle_from_center, reverse=not clockwise)
    start_index = points.index(min(points, key=lambda p: (p[1], p[0])))
    sorted_points = points[start_index:] + points[:start_index]
    return [x for p in sorted_points for x in p]


def _quads_with_degenerates(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 50, (n, 8)).astype(np.float64)
    k = n // 5
    q[:k] = rng.integers(0, 3, (k, 8))  # duplicated and collinear vertices everywhere
    q[k : 2 * k, 1::2] = 7  # all on one horizontal line
    q[2 * k : 3 * k, 0::2] = 3  # all on one vertical line
    q[3 * k : 4 * k] = rng.normal(size=(k, 8)) * 1000  # continuous, negative coordinates
    return q


def _rand_rects(rng: np.random.Generator, n: int, extent: float = 100.0) -> np.ndarray:
    r = np.stack(
        [
            rng.uniform(0, extent, n),
            rng.uniform(0, extent, n),
            rng.uniform(1, 30, n),
            rng.uniform(1, 30, n),
            rng.uniform(-math.pi, math.pi, n),
        ],
        axis=1,
    )
    return np.asarray(G.rboxes_to_quads(r))


def _rand_simple(rng: np.random.Generator, n: int, convex: bool | None = None) -> np.ndarray:
    out = []
    while len(out) < n:
        p = rng.uniform(0, 60, (4, 2))
        poly = shapely.Polygon(p)
        if not poly.is_valid or poly.area < 1:
            continue
        is_convex = abs(poly.convex_hull.area - poly.area) < 1e-9
        if convex is None or convex == is_convex:
            out.append(p.reshape(-1))
    return np.array(out)


def _shapely_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    pa, pb = shapely.polygons(a.reshape(-1, 4, 2)), shapely.polygons(b.reshape(-1, 4, 2))
    inter = shapely.area(shapely.intersection(pa[:, None], pb[None, :]))
    union = shapely.area(pa)[:, None] + shapely.area(pb)[None, :] - inter
    return inter / union


# ---- vertex order ----------------------------------------------------------------------------------------------
def test_normalize_quad_documented_examples():
    assert G.normalize_quad([0, 10, 10, 10, 10, 0, 0, 0]) == [0, 0, 10, 0, 10, 10, 0, 10]
    assert G.normalize_quad([0, 10, 10, 10, 10, 0, 0, 0], clockwise=False) == [0, 0, 0, 10, 10, 10, 10, 0]
    out = G.normalize_quad([3, 1, 9, 4, 6, 9, 0, 6])
    assert out[:2] == [3, 1] and all(isinstance(v, int) for v in out)


@pytest.mark.parametrize("clockwise", [True, False])
def test_normalize_quad_matches_reference_on_random_and_degenerate_quads(clockwise):
    quads = _quads_with_degenerates(10_000)
    ours_scalar = np.array([G.normalize_quad(list(q), clockwise) for q in quads])
    ref = np.array([reference_normalize_polygon(list(q), clockwise) for q in quads])
    ours_batch = np.asarray(G.normalize_quads(quads, clockwise))
    assert np.array_equal(ours_scalar, ref)
    assert np.array_equal(ours_batch, ref)


def test_normalize_quads_accepts_torch_and_is_clockwise_on_screen():
    q = torch.tensor([[10.0, 10, 0, 10, 10, 0, 0, 0]])
    out = G.normalize_quads(q)
    assert isinstance(out, torch.Tensor)
    # start at the top-left, then to the right (y down: clockwise on screen), positive shoelace area
    assert out[0].tolist() == [0, 0, 10, 0, 10, 10, 0, 10]
    assert G.polygon_area(out[0].tolist(), signed=True) > 0


# ---- areas, boxes, validity ----------------------------------------------------------------------------------
def test_area_and_hbox_match_shapely():
    rng = np.random.default_rng(1)
    q = np.concatenate([_rand_rects(rng, 200, extent=5000), _rand_simple(rng, 100)])
    ref = shapely.area(shapely.polygons(q.reshape(-1, 4, 2)))
    np.testing.assert_allclose(G.polygon_areas(q), ref, rtol=1e-12, atol=1e-9)
    hb = shapely.bounds(shapely.polygons(q.reshape(-1, 4, 2)))
    np.testing.assert_array_equal(G.hboxes_of(q), hb)
    assert G.hbox_of([1, 5, 3, 2, 4, 6, 0, 3]) == [0.0, 2.0, 4.0, 6.0]


def test_validity_flags_match_shapely():
    rng = np.random.default_rng(2)
    q = rng.integers(0, 8, (3000, 8)).astype(float)
    polys = shapely.polygons(q.reshape(-1, 4, 2))
    area = shapely.area(polys)
    v = G.quad_validity(q)
    np.testing.assert_array_equal(v["degenerate"], area <= 1e-6)
    nondegenerate = area > 1e-6
    # shapely calls a ring invalid when it self-intersects (or touches itself); on non-degenerate quads that is ours
    np.testing.assert_array_equal(
        v["self_intersecting"][nondegenerate], ~shapely.is_valid(polys)[nondegenerate]
    )
    convex_ref = (
        nondegenerate
        & shapely.is_valid(polys)
        & (np.abs(shapely.area(shapely.convex_hull(polys)) - area) < 1e-9)
    )
    np.testing.assert_array_equal(G.convex_mask(q) & ~v["self_intersecting"], convex_ref)
    assert G.is_self_intersecting([0, 0, 4, 4, 4, 0, 0, 4]) and not G.is_convex([0, 0, 4, 4, 4, 0, 0, 4])
    assert G.is_convex([0, 0, 2, 0, 4, 0, 2, 3])  # a triangle with a vertex on an edge is still convex
    assert not G.is_convex([0, 0, 4, 0, 1, 1, 0, 4])  # reflex vertex


# ---- rotated boxes -------------------------------------------------------------------------------------------
def test_quad_to_rbox_recovers_rectangles_with_long_side_convention():
    rng = np.random.default_rng(3)
    r = np.stack(
        [
            rng.uniform(0, 500, 500),
            rng.uniform(0, 500, 500),
            rng.uniform(1, 80, 500),
            rng.uniform(1, 80, 500),
            rng.uniform(-3, 3, 500),
        ],
        axis=1,
    )
    quads = np.asarray(G.rboxes_to_quads(r))
    back = np.asarray(G.quads_to_rboxes(quads))
    assert (back[:, 2] >= back[:, 3]).all()
    assert ((back[:, 4] >= -math.pi / 2) & (back[:, 4] < math.pi / 2)).all()
    np.testing.assert_allclose(back[:, :2], r[:, :2], atol=1e-9)
    np.testing.assert_allclose(np.sort(back[:, 2:4], 1), np.sort(r[:, 2:4], 1), rtol=1e-9)
    # same rectangle: IoU 1 against the input quads
    again = np.asarray(G.rboxes_to_quads(back))
    np.testing.assert_allclose(np.diag(_shapely_iou(again, quads)), 1.0, atol=1e-9)
    assert G.quad_to_rbox([0, 0, 2, 0, 2, 4, 0, 4], degrees=True) == pytest.approx([1, 2, 4, 2, -90])


def test_min_area_rect_matches_shapely_oriented_envelope_area():
    rng = np.random.default_rng(4)
    q = np.concatenate([_rand_simple(rng, 300), rng.uniform(0, 100, (300, 8))])
    rb = np.asarray(G.quads_to_rboxes(q))
    env = shapely.oriented_envelope(shapely.multipoints(q.reshape(-1, 4, 2)))
    np.testing.assert_allclose(rb[:, 2] * rb[:, 3], shapely.area(env), rtol=1e-9, atol=1e-9)
    # and the rectangle encloses every vertex
    rect = shapely.polygons(np.asarray(G.rboxes_to_quads(rb)).reshape(-1, 4, 2))
    pts = shapely.multipoints(q.reshape(-1, 4, 2))
    assert shapely.covers(shapely.buffer(rect, 1e-6), pts).all()


def test_min_area_rect_degenerate_inputs():
    assert G.quad_to_rbox([5, 5, 5, 5, 5, 5, 5, 5]) == [5.0, 5.0, 0.0, 0.0, 0.0]
    cx, cy, w, h, a = G.quad_to_rbox([0, 0, 2, 2, 4, 4, 1, 1])
    assert (
        (cx, cy, h) == pytest.approx((2, 2, 0))
        and w == pytest.approx(math.sqrt(32))
        and a == pytest.approx(math.pi / 4)
    )


# ---- IoU -----------------------------------------------------------------------------------------------------
def test_polygon_iou_matches_shapely_for_rotated_rectangles():
    rng = np.random.default_rng(5)
    a, b = _rand_rects(rng, 150), _rand_rects(rng, 120)
    ours = G.polygon_iou(a, b)
    ref = _shapely_iou(a, b)
    assert ours.shape == (150, 120) and (ref > 0).sum() > 400
    np.testing.assert_allclose(ours, ref, atol=1e-12)


@pytest.mark.parametrize("convex", [True, False])
def test_polygon_iou_matches_shapely_for_general_simple_quads(convex):
    rng = np.random.default_rng(6 + convex)
    a, b = _rand_simple(rng, 60, convex), _rand_simple(rng, 60, None)
    np.testing.assert_allclose(G.polygon_iou(a, b), _shapely_iou(a, b), atol=1e-12)


def test_polygon_iou_hand_cases_and_orientation_independence():
    sq = [0, 0, 10, 0, 10, 10, 0, 10]
    assert G.polygon_iou([sq], [sq])[0, 0] == pytest.approx(1.0)
    reversed_sq = [0, 10, 10, 10, 10, 0, 0, 0]  # counter-clockwise on screen
    assert G.polygon_iou([sq], [reversed_sq])[0, 0] == pytest.approx(1.0)
    assert G.polygon_iou([sq], [[5, 0, 15, 0, 15, 10, 5, 10]])[0, 0] == pytest.approx(1 / 3)
    assert G.polygon_iou([sq], [[10, 0, 20, 0, 20, 10, 10, 10]])[0, 0] == 0.0  # touching edge
    assert G.polygon_iou([sq], [[0, 0, 1, 1, 2, 2, 3, 3]])[0, 0] == 0.0  # zero-area polygon
    assert G.polygon_iou(np.zeros((0, 8)), [sq]).shape == (0, 1)
    t = G.polygon_iou(torch.tensor([sq], dtype=torch.float32), torch.tensor([sq]))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64


def _winding(poly: np.ndarray, p: np.ndarray) -> int:
    """Winding number of point p around the closed polyline (standard crossing rule)."""
    w = 0
    n = len(poly)
    for i in range(n):
        a, b = poly[i], poly[(i + 1) % n]
        cross = (b[0] - a[0]) * (p[1] - a[1]) - (p[0] - a[0]) * (b[1] - a[1])
        if a[1] <= p[1] < b[1] and cross > 0:
            w += 1
        elif b[1] <= p[1] < a[1] and cross < 0:
            w -= 1
    return w


def _lobes(p: np.ndarray) -> list:
    fixed = shapely.make_valid(shapely.Polygon(p))
    parts = list(getattr(fixed, "geoms", [fixed]))
    return [g for g in parts if g.geom_type == "Polygon" and g.area > 0]


def _devkit_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """DOTA_devkit semantics by a different route: integral of w_A * w_B over shapely's lobes of each polygon."""
    pa, pb = a.reshape(4, 2), b.reshape(4, 2)
    signed = lambda p: 0.5 * np.sum(p[:, 0] * np.roll(p[:, 1], -1) - np.roll(p[:, 0], -1) * p[:, 1])  # noqa: E731
    lobes_a, lobes_b = _lobes(pa), _lobes(pb)
    total = 0.0
    for la in lobes_a:
        wa = _winding(pa, np.array(la.representative_point().coords[0]))
        for lb in lobes_b:
            wb = _winding(pb, np.array(lb.representative_point().coords[0]))
            total += wa * wb * la.intersection(lb).area
    return total * np.sign(signed(pa)) * np.sign(signed(pb))


def test_self_intersecting_quads_follow_dota_devkit_winding_rule():
    rng = np.random.default_rng(8)
    done = 0
    while done < 60:
        a = rng.uniform(0, 20, 8)
        b = rng.uniform(0, 20, 8)
        if not G.is_self_intersecting(a) or abs(G.polygon_area(a)) < 1 or abs(G.polygon_area(b)) < 1:
            continue
        inter = float(G.polygon_intersection_aligned([a], [b])[0])
        ref = _devkit_overlap(a, b)
        # ours clamps the signed overlap into [0, min(|A|, |B|)]
        clamp = min(max(ref, 0.0), abs(G.polygon_area(a)), abs(G.polygon_area(b)))
        assert inter == pytest.approx(clamp, abs=1e-9)
        done += 1


def test_aligned_iou_and_iof():
    a = np.array([[0, 0, 10, 0, 10, 10, 0, 10.0], [0, 0, 4, 0, 4, 4, 0, 4]])
    b = np.array([[5, 0, 15, 0, 15, 10, 5, 10.0], [0, 0, 2, 0, 2, 2, 0, 2]])
    np.testing.assert_allclose(G.polygon_iou_aligned(a, b), [1 / 3, 0.25])
    np.testing.assert_allclose(G.polygon_iou_aligned(a, b, mode="iof"), [0.5, 0.25])
    np.testing.assert_allclose(G.polygon_intersection_aligned(a, b), [50, 4])
    with pytest.raises(ValueError, match="same length"):
        G.polygon_iou_aligned(a, b[:1])
    with pytest.raises(ValueError, match=r"\(N, 2P\)"):
        G.polygon_iou([[1, 2, 3]], a)


def test_grouped_iou_equals_per_group_matrices():
    rng = np.random.default_rng(9)
    a, b = _rand_rects(rng, 300, extent=60), _rand_rects(rng, 250, extent=60)
    ga = rng.integers(0, 6, 300).tolist()
    gb = [str(g) for g in rng.integers(0, 7, 250)]  # any hashable labels; group "6" exists only in b
    ga = [str(g) for g in ga]
    i, j, iou = G.polygon_iou_grouped(a, b, ga, gb)
    dense = np.zeros((300, 250))
    dense[i, j] = iou
    ref = _shapely_iou(a, b) * (np.asarray(ga)[:, None] == np.asarray(gb)[None, :])
    np.testing.assert_allclose(dense, ref, atol=1e-12)
    assert len(i) < 300 * 250 / 4  # sparse: only same-group pairs with overlapping boxes
    with pytest.raises(ValueError, match="one group per polygon"):
        G.polygon_iou_grouped(a, b, ga[:-1], gb)


def test_polygon_iou_on_integer_boxes_with_shared_and_touching_edges():
    # axis-aligned integer boxes on a small grid: identical, nested, edge-sharing and corner-touching pairs abound
    rng = np.random.default_rng(10)
    n = 3000
    xy, wh = rng.integers(0, 8, (2, n, 2)), rng.integers(1, 5, (2, n, 2))
    boxes = []
    for k in range(2):
        x, y, w, h = xy[k, :, 0], xy[k, :, 1], wh[k, :, 0], wh[k, :, 1]
        q = np.stack([x, y, x + w, y, x + w, y + h, x, y + h], axis=1).astype(float)
        boxes.append(np.roll(q, 2 * k, axis=1))  # the second set starts at another corner
    a, b = boxes
    b[:50] = np.roll(a[:50], 4, axis=1)  # identical boxes, listed from the opposite corner
    ours = G.polygon_iou_aligned(a, b)
    pa, pb = shapely.polygons(a.reshape(-1, 4, 2)), shapely.polygons(b.reshape(-1, 4, 2))
    inter = shapely.area(shapely.intersection(pa, pb))
    ref = inter / (shapely.area(pa) + shapely.area(pb) - inter)
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    assert (ref == 1).sum() >= 50 and ((ref == 0) & shapely.touches(pa, pb)).sum() > 50
