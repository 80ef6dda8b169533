"""Synthetic world: determinism, geometry, plausibility, continuity, shadows, sun, clouds, large images, pairs."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon

from rszoo.data.synth import (
    CATEGORIES,
    Acquisition,
    Scene,
    cloud_mask,
    generate_large_scene,
    generate_pair,
    generate_scene,
    landcover_map,
    render,
    render_window,
    solar_position,
)
from rszoo.data.synth.categories import LANDCOVER_CLASSES
from rszoo.data.synth.graph import Region
from rszoo.data.synth.placement import Placer
from rszoo.data.synth.seeding import stream

SEEDS = list(range(12))


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    return [generate_scene(s) for s in SEEDS]


def test_import_does_not_pull_torch() -> None:
    code = "import sys, rszoo.data.synth; print('torch' in sys.modules, 'rasterio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_categories_are_dota_style() -> None:
    assert len(CATEGORIES) >= 8
    for name in (
        "building",
        "small-vehicle",
        "large-vehicle",
        "ship",
        "plane",
        "storage-tank",
        "tennis-court",
    ):
        assert name in CATEGORIES
    assert all(c == c.lower() and " " not in c for c in CATEGORIES)


def test_same_seed_same_scene_and_pixels() -> None:
    a, b = generate_scene(42), generate_scene(42)
    assert a == b
    assert render(a).tobytes() == render(b).tobytes()
    assert generate_scene(43) != a


def test_json_round_trip(scenes: list[Scene]) -> None:
    for scene in scenes[:4]:
        text = json.dumps(scene.to_dict())
        back = Scene.from_dict(json.loads(text))
        assert back == scene
        assert json.dumps(back.to_dict()) == text


def test_from_dict_errors_name_the_key() -> None:
    d = generate_scene(1, size=64).to_dict()
    del d["gsd"]
    with pytest.raises(ValueError, match="gsd"):
        Scene.from_dict(d)
    d = generate_scene(1, size=64).to_dict()
    d["regions"][0]["kind"] = "lava"
    with pytest.raises(ValueError, match=r"regions\[0\].*lava"):
        Scene.from_dict(d)


def test_bad_arguments_are_explained() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        generate_scene(0, size=8)
    with pytest.raises(ValueError, match="landuse"):
        generate_scene(0, landuse="moon")
    with pytest.raises(ValueError, match="cloud_cover"):
        generate_scene(0, cloud_cover=1.5)


def _shoelace_screen(poly: list[list[float]]) -> float:
    # positive for clockwise order as seen on screen (y down)
    return sum(poly[i][0] * poly[(i + 1) % 4][1] - poly[(i + 1) % 4][0] * poly[i][1] for i in range(4)) / 2


def test_object_boxes_polys_and_masks(scenes: list[Scene]) -> None:
    n = 0
    for scene in scenes:
        W, H = scene.width, scene.height
        for obj in scene.objects:
            n += 1
            poly = obj.poly
            assert len(poly) == 4
            assert _shoelace_screen(poly) > 0, "corners must run clockwise on screen"
            assert poly[0] == min(poly, key=lambda p: (p[1], p[0])), "start at smallest y, then x"
            xs, ys = [p[0] for p in poly], [p[1] for p in poly]
            x1, y1, x2, y2 = obj.hbox
            assert (x1, y1, x2, y2) == (min(xs), min(ys), max(xs), max(ys))  # tight (objects lie inside)
            assert 0 <= x1 < x2 <= W and 0 <= y1 < y2 <= H
            # the oriented box has the stated size and angle
            assert math.dist(poly[0], poly[1]) * math.dist(poly[1], poly[2]) == pytest.approx(
                obj.area, rel=0.01
            )
            # the outline lies within the oriented box
            assert Polygon(poly).buffer(0.02).contains(Polygon(obj.shape))
            mask = obj.mask(H, W)
            rows, cols = np.nonzero(mask)
            assert len(rows) > 0
            # every mask pixel touches the box (pixel c covers [c, c + 1])
            assert cols.min() >= math.floor(x1) and cols.max() <= math.floor(x2)
            assert rows.min() >= math.floor(y1) and rows.max() <= math.floor(y2)
            # and the mask area matches the outline area up to one pixel along the perimeter
            shape = Polygon(obj.shape)
            assert abs(mask.sum() - shape.area) <= shape.length + 4
    assert n > 100


def test_no_heavy_overlaps(scenes: list[Scene]) -> None:
    for scene in scenes:
        polys = [Polygon(o.poly) for o in scene.objects]
        if len(polys) < 2:
            continue
        tree = shapely.STRtree(polys)
        for i, j in zip(*tree.query(polys, predicate="intersects")):
            if i < j:
                inter = polys[i].intersection(polys[j]).area
                assert inter <= 0.01 * min(polys[i].area, polys[j].area), (scene.id, i, j)


def test_objects_are_placed_plausibly() -> None:
    scenes = [generate_scene(s, landuse=lu) for s, lu in enumerate(["river", "airport", "industrial"] * 4)]
    seen: set[str] = set()
    for scene in scenes:
        labels = landcover_map(scene)
        rivers = [LineString(r.points).buffer(r.width / 2) for r in scene.rivers]
        lakes = [Polygon(r.polygon) for r in scene.regions if r.kind == "water"]
        for obj in scene.objects:
            cx, cy = obj.center
            label = LANDCOVER_CLASSES[labels[int(cy), int(cx)]]
            if obj.category == "ship":
                # independent geometry: inside a river band or a lake polygon
                assert any(w.buffer(1.0).contains(Polygon(obj.poly)) for w in rivers + lakes), obj
                seen.add("ship")
            elif obj.category == "plane":
                assert label in ("apron", "airport")
                seen.add("plane")
            elif obj.category in ("small-vehicle", "large-vehicle") and obj.context == "road":
                lines = [LineString(r.points) for r in scene.roads]
                assert (
                    min(ln.distance(Point(cx, cy)) for ln in lines) <= max(r.width for r in scene.roads) / 2
                )
                seen.add("car")
            elif obj.category == "storage-tank":
                assert label in ("industrial", "bare-soil")
                seen.add("tank")
            elif obj.category == "building":
                assert label not in ("road", "water", "parking")
    assert {"ship", "plane", "car", "tank"} <= seen


def _crossings(scene: Scene, x_edge: float) -> list[tuple[str, float]]:
    """(kind, y) where each road/river centre line crosses the vertical line x = x_edge."""
    out = []
    for line in scene.roads + scene.rivers:
        pts = line.points
        for (ax, ay), (bx, by) in itertools.pairwise(pts):
            if (ax - x_edge) * (bx - x_edge) < 0:
                t = (x_edge - ax) / (bx - ax)
                out.append((line.kind, ay + t * (by - ay)))
    return sorted(out)


def test_roads_and_rivers_continue_across_tile_borders() -> None:
    gsd, size = 0.5, 256
    for world in range(40):
        a = generate_scene(1, size, world_seed=world, origin=(1000.0, 2000.0), gsd=gsd, acquisition=False)
        b = generate_scene(
            2, size, world_seed=world, origin=(1000.0 + size * gsd, 2000.0), gsd=gsd, acquisition=False
        )
        if (_crossings(a, size) and any(r.kind == "river" for r in a.rivers + b.rivers)) or world == 39:
            break
    ca, cb = _crossings(a, size), _crossings(b, 0.0)
    assert ca, "the searched tiles must share a road"
    assert [k for k, _ in ca] == [k for k, _ in cb]
    assert np.allclose([y for _, y in ca], [y for _, y in cb], atol=0.02)
    # rasters agree too: a double-width tile of the same world equals the two tiles side by side
    both = generate_scene(
        3, width=2 * size, height=size, world_seed=world, origin=(1000.0, 2000.0), gsd=gsd, acquisition=False
    )
    la, lb, lab = landcover_map(a), landcover_map(b), landcover_map(both)
    assert (lab[:, :size] == la).mean() > 0.995
    assert (lab[:, size:] == lb).mean() > 0.995
    road = LANDCOVER_CLASSES.index("road")
    edge_a, edge_b = la[:, -1] == road, lb[:, 0] == road
    assert edge_a.any() and (edge_a == edge_b).mean() > 0.97


def _single_building_scene(acq: Acquisition | None, height_m: float) -> Scene:
    size = 160
    region = Region(0, "grassland", [[0.0, 0.0], [160.0, 0.0], [160.0, 160.0], [0.0, 160.0]])
    placer = Placer(size, size, 0.5, [region], [], [], stream(0, "test"))
    obj = placer.place(
        "building",
        80.0,
        80.0,
        12.0,
        12.0,
        0.0,
        allowed=None,
        context="test",
        style="flat",
        height_m=height_m,
        colour="white",
    )
    assert obj is not None
    return Scene("shadow", 0, size, size, 0.5, (0.0, 0.0), 1, [region], [], [], [obj], acq, "test")


@pytest.mark.parametrize(
    ("lat", "lon", "stamp"),
    [
        (45.0, 0.0, "2021-06-21T12:00:00Z"),
        (30.0, 10.0, "2021-03-20T07:30:00Z"),
        (-33.0, 151.0, "2021-01-10T01:00:00Z"),
    ],
)
def test_shadows_point_away_from_the_sun(lat: float, lon: float, stamp: str) -> None:
    acq = Acquisition.at(lat, lon, stamp, gsd=0.5)
    assert acq.sun_elevation > 10
    tall = render(_single_building_scene(acq, 12.0)).astype(float).mean(axis=2)
    flat = render(_single_building_scene(acq, 0.0)).astype(float).mean(axis=2)
    dark = (flat - tall) > 20
    rows, cols = np.nonzero(dark)
    assert len(rows) > 20
    # shadow centroid relative to the building centre (pixel centres at +0.5)
    vx, vy = cols.mean() + 0.5 - 80.0, rows.mean() + 0.5 - 80.0
    az = math.radians(acq.sun_azimuth)
    expected = (-math.sin(az), math.cos(az))  # away from the sun, north up
    cos = (vx * expected[0] + vy * expected[1]) / math.hypot(vx, vy)
    assert cos > math.cos(math.radians(10))
    # and the shadow reaches h / tan(elevation) beyond the building
    length = 12.0 / math.tan(math.radians(acq.sun_elevation)) / 0.5
    reach = max((c + 0.5 - 80) * expected[0] + (r + 0.5 - 80) * expected[1] for r, c in zip(rows, cols))
    half_extent = 12.0 * (
        abs(expected[0]) + abs(expected[1])
    )  # the 24 px square footprint along that direction
    assert reach == pytest.approx(length + half_extent, abs=2.5)


def _reference_sun(lat: float, lon: float, when: dt.datetime) -> tuple[float, float]:
    """Independent low-precision solar position (Astronomical Almanac style, via the Julian day)."""
    jd = when.timestamp() / 86400.0 + 2440587.5
    n = jd - 2451545.0
    mean_lon = math.radians((280.460 + 0.9856474 * n) % 360)
    g = math.radians((357.528 + 0.9856003 * n) % 360)
    ecl_lon = mean_lon + math.radians(1.915) * math.sin(g) + math.radians(0.020) * math.sin(2 * g)
    eps = math.radians(23.439 - 0.0000004 * n)
    ra = math.atan2(math.cos(eps) * math.sin(ecl_lon), math.cos(ecl_lon))
    dec = math.asin(math.sin(eps) * math.sin(ecl_lon))
    gmst = (18.697374558 + 24.06570982441908 * n) % 24
    ha = math.radians(gmst * 15 + lon) - ra
    phi = math.radians(lat)
    el = math.asin(math.sin(phi) * math.sin(dec) + math.cos(phi) * math.cos(dec) * math.cos(ha))
    az = math.atan2(-math.sin(ha), math.tan(dec) * math.cos(phi) - math.sin(phi) * math.cos(ha))
    return math.degrees(az) % 360, math.degrees(el)


def test_solar_position_matches_hand_values_and_a_reference() -> None:
    az, el = solar_position(40.0, 0.0, "2021-06-21T12:00:00Z")
    assert el == pytest.approx(90 - 40 + 23.44, abs=0.3) and az == pytest.approx(180, abs=3)
    assert solar_position(0.0, 0.0, "2021-03-20T12:07:00Z")[1] > 88
    assert solar_position(48.0, 11.0, "2021-12-21T23:00:00Z")[1] < 0  # night
    rng = np.random.default_rng(0)
    for _ in range(40):
        lat, lon = rng.uniform(-60, 60), rng.uniform(-180, 180)
        when = dt.datetime(2020, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            minutes=int(rng.integers(0, 5 * 365 * 1440))
        )
        az, el = solar_position(lat, lon, when.strftime("%Y-%m-%dT%H:%M:%SZ"))
        raz, rel = _reference_sun(lat, lon, when)
        assert el == pytest.approx(rel, abs=0.6)
        if rel > 5:
            assert abs((az - raz + 180) % 360 - 180) < 1.5


@pytest.mark.parametrize("cover", [0.0, 0.3, 0.75])
def test_cloud_cover_matches_the_request(cover: float) -> None:
    scene = generate_scene(5, size=192, cloud_cover=cover, landuse="residential")
    assert float(cloud_mask(scene).mean()) == pytest.approx(cover, abs=0.01)
    clear = copy.deepcopy(scene)
    clear.acquisition.cloud_cover = 0.0  # type: ignore[union-attr]
    brighter = render(scene).astype(float).mean(axis=2) - render(clear).astype(float).mean(axis=2)
    # the rendered clouds: pixels pushed at least halfway towards white
    assert float((brighter > 35).mean()) == pytest.approx(cover, abs=0.06)


def test_window_equals_crop_across_chunks() -> None:
    scene = generate_scene(9, width=700, height=560, landuse="industrial", cloud_cover=0.2)
    full = render(scene)
    assert full.shape == (560, 700, 3)
    for x, y, w, h in [
        (0, 0, 700, 560),
        (500, 400, 100, 150),
        (3, 7, 1, 1),
        (511, 511, 2, 2),
        (100, 50, 480, 300),
    ]:
        assert np.array_equal(render_window(scene, x, y, w, h), full[y : y + h, x : x + w])
    with pytest.raises(ValueError, match="inside"):
        render_window(scene, 650, 0, 100, 10)


def test_large_scene_4096_renders_and_windows_match() -> None:
    scene = generate_large_scene(0, 4096, 4096)
    assert len(scene.objects) > 1000
    assert sum(o.width * o.height < 40 * 40 for o in scene.objects) > 0.6 * len(scene.objects)  # mostly small
    full = render(scene)
    assert full.shape == (4096, 4096, 3)
    for x, y, w, h in [(1000, 1500, 700, 600), (4000, 4000, 96, 96)]:
        assert np.array_equal(render_window(scene, x, y, w, h), full[y : y + h, x : x + w])


def test_bitemporal_pair_changes_are_consistent() -> None:
    kinds: set[str] = set()
    for seed in range(8):
        t0, t1, changes = generate_pair(seed, 192, landuse="residential" if seed % 2 else "industrial")
        assert (t0.origin, t0.gsd, t0.world_seed) == (t1.origin, t1.gsd, t1.world_seed)
        assert t0.acquisition.timestamp < t1.acquisition.timestamp  # type: ignore[union-attr]
        assert (t0.acquisition.lat, t0.acquisition.lon) == (t1.acquisition.lat, t1.acquisition.lon)  # type: ignore[union-attr]
        ids0 = {o.id: o for o in t0.objects}
        ids1 = {o.id: o for o in t1.objects}
        touched = set()
        for c in changes:
            kinds.add(c.kind)
            if c.target == "region":
                r0 = next(r for r in t0.regions if r.id == c.id)
                r1 = next(r for r in t1.regions if r.id == c.id)
                assert r0.kind == c.before["kind"] != r1.kind == c.after["kind"]
                continue
            touched.add(c.id)
            if c.kind in ("removed", "demolished"):
                assert c.id in ids0 and c.id not in ids1
            elif c.kind in ("added", "new-building"):
                assert c.id in ids1 and c.id not in ids0
            elif c.kind == "moved":
                assert ids0[c.id].center != ids1[c.id].center
                assert ids0[c.id].category == ids1[c.id].category and ids0[c.id].rgb == ids1[c.id].rgb
            elif c.kind == "recoloured":
                assert ids0[c.id].colour != ids1[c.id].colour and ids0[c.id].center == ids1[c.id].center
        # every difference between the two graphs is listed
        for oid in set(ids0) | set(ids1):
            if oid not in touched:
                assert ids0[oid] == ids1[oid]
    assert {"removed", "moved", "added"} <= kinds


def test_overlap_test_agrees_with_shapely() -> None:
    import random

    from rszoo.data.synth.geometry import obb_corners, polys_overlap

    rng = random.Random(0)
    for _ in range(3000):
        a = obb_corners(
            rng.uniform(0, 50),
            rng.uniform(0, 50),
            rng.uniform(1, 30),
            rng.uniform(1, 30),
            rng.uniform(-180, 180),
        )
        b = obb_corners(
            rng.uniform(0, 50),
            rng.uniform(0, 50),
            rng.uniform(1, 30),
            rng.uniform(1, 30),
            rng.uniform(-180, 180),
        )
        expected = Polygon(a).intersection(Polygon(b)).area > 1e-9
        assert polys_overlap(a, b) == polys_overlap(a, b, rectangles=True) == expected


def test_round2_and_round2_all_equal_python_round() -> None:
    """The fast rounding used for every stored coordinate is bit-identical to ``round(v, 2) + 0.0``, ties and
    negative zero included, one value at a time and in batches."""
    from rszoo.data.synth.geometry import round2, round2_all

    rng = np.random.default_rng(0)
    values = [*(rng.uniform(-3000, 3000, 20_000)), *(rng.integers(-(10**6), 10**6, 2000) / 1000 + 0.005)]
    values += [0.0, -0.0, -0.004, 1.005, 2.675, 1e14, -1e14, 0.125, -0.125, float("inf"), -float("inf")]
    expected = [round(float(v), 2) + 0.0 for v in values]
    assert [math.copysign(1, v) for v in map(round2, values)] == [math.copysign(1, v) for v in expected]
    assert list(map(round2, values)) == expected
    assert round2_all(values) == expected
    assert math.isnan(round2(float("nan"))) and math.isnan(round2_all([float("nan")])[0])


@pytest.mark.parametrize(
    ("seed", "options"),
    [
        (0, {}),
        (1, {"size": 200, "cloud_cover": 0.3}),
        (2, {"width": 300, "height": 180, "acquisition": False, "landuse": "river"}),
        (3, {"size": 512, "density": 1.5, "landuse": "industrial"}),
        (
            4,
            {"width": 600, "height": 64, "landuse": "airport"},
        ),  # two chunks: the renderer draws its own rasters
    ],
)
def test_synthesize_equals_generate_then_render(seed: int, options: dict) -> None:
    """synthesize() shares the layout raster between placement and rendering; graph and pixels must not change."""
    from rszoo.data.synth import synthesize

    scene, image = synthesize(seed, **options)
    expected = generate_scene(seed, **options)
    assert scene == expected
    assert np.array_equal(image, render(expected))


def test_semantic_raster_is_a_lookup_of_the_material_raster() -> None:
    from rszoo.data.synth.raster import layout_raster, semantic_of

    for seed in range(25):
        s = generate_scene(
            seed, size=160, landuse=["river", "airport", "industrial", "residential", None][seed % 5]
        )
        args = (s.regions, s.rivers, s.roads, s.gsd, 0, 0, s.width, s.height)
        semantic, _ = layout_raster(*args, semantic=True)
        materials, _ = layout_raster(*args, semantic=False)
        assert semantic_of(materials).tobytes() == semantic.tobytes()


def test_placer_rejects_a_landcover_raster_of_the_wrong_size() -> None:
    from PIL import Image

    s = generate_scene(0, size=64)
    with pytest.raises(ValueError, match="64x64 mode 'L'"):
        Placer(
            64,
            64,
            s.gsd,
            s.regions,
            s.rivers,
            s.roads,
            stream(0, "objects"),
            landcover=Image.new("L", (32, 64)),
        )


def test_vectorised_hashes_equal_the_scalar_ones() -> None:
    """The numpy batch hashes used by the world layout give exactly mix()/unit()/light() of the same parts,
    negative indices included (they wrap to two's complement as the scalar hash does)."""
    from rszoo.data.synth.seeding import light, light_draws, mix, mix_array, mix_on, prefix, unit, unit_on

    rng = np.random.default_rng(1)
    for seed, label in [(0, "block"), (123456789, "line"), (2**31 - 1, "lake")]:
        i = rng.integers(-(2**40), 2**40, 64)
        j = rng.integers(-5000, 5000, 64)
        state = prefix(seed, label)
        expected = [mix(seed, label, int(a), int(b)) for a, b in zip(i, j)]
        assert [mix_on(state, int(a), int(b)) for a, b in zip(i, j)] == expected
        assert mix_array(np.array([state], dtype=np.uint64), i, j).tolist() == expected
        assert [unit_on(state, int(a), int(b)) for a, b in zip(i, j)] == [
            unit(seed, label, int(a), int(b)) for a, b in zip(i, j)
        ]
        draws = light_draws(np.array(expected, dtype=np.uint64), 5)
        for row, (a, b) in zip(draws, zip(i, j)):
            gen = light(seed, label, int(a), int(b))
            assert row.tolist() == [gen.random() for _ in range(5)]


def test_sun_position_from_a_datetime_equals_solar_position_from_its_timestamp() -> None:
    from rszoo.data.synth.sun import parse_timestamp, sun_position

    for lat, lon, stamp in [
        (52.5, 13.4, "2024-06-21T10:30:00Z"),
        (-33.9, 151.2, "2023-12-01T23:59:59Z"),
        (0.0, -0.0, "2025-03-20T12:00:00Z"),
        (78.2, 15.6, "2024-01-15T06:15:30Z"),
    ]:
        assert sun_position(lat, lon, parse_timestamp(stamp)) == solar_position(lat, lon, stamp)
