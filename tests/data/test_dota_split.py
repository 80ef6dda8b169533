"""DOTA splitting vs mmrotate's img_split.py (re-implemented with shapely) and merging vs a plain greedy NMS."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import shapely

from rszoo.data import dota_split as S


# ---- reference: mmrotate tools/data/dota/split/img_split.py (logic copied; shapely as there) -------------------
def ref_get_sliding_window(width, height, sizes, gaps, img_rate_thr):
    eps = 0.01
    windows = []
    for size, gap in zip(sizes, gaps):
        step = size - gap
        x_num = 1 if width <= size else math.ceil((width - size) / step + 1)
        x_start = [step * i for i in range(x_num)]
        if len(x_start) > 1 and x_start[-1] + size > width:
            x_start[-1] = width - size
        y_num = 1 if height <= size else math.ceil((height - size) / step + 1)
        y_start = [step * i for i in range(y_num)]
        if len(y_start) > 1 and y_start[-1] + size > height:
            y_start[-1] = height - size
        start = np.array(list(itertools.product(x_start, y_start)), dtype=np.int64)
        windows.append(np.concatenate([start, start + size], axis=1))
    windows = np.concatenate(windows, axis=0)
    img_in_wins = windows.copy()
    img_in_wins[:, 0::2] = np.clip(img_in_wins[:, 0::2], 0, width)
    img_in_wins[:, 1::2] = np.clip(img_in_wins[:, 1::2], 0, height)
    img_areas = (img_in_wins[:, 2] - img_in_wins[:, 0]) * (img_in_wins[:, 3] - img_in_wins[:, 1])
    win_areas = (windows[:, 2] - windows[:, 0]) * (windows[:, 3] - windows[:, 1])
    img_rates = img_areas / win_areas
    if not (img_rates > img_rate_thr).any():
        max_rate = img_rates.max()
        img_rates[abs(img_rates - max_rate) < eps] = 1
    return windows[img_rates > img_rate_thr]


def ref_bbox_overlaps_iof(bboxes1, bboxes2, eps=1e-6):
    rows, cols = bboxes1.shape[0], bboxes2.shape[0]
    if rows * cols == 0:
        return np.zeros((rows, cols), dtype=np.float32)
    pts = bboxes1.reshape(rows, 4, 2)
    hb1 = np.concatenate([pts.min(1), pts.max(1)], axis=-1)[:, None, :]
    lt = np.maximum(hb1[..., :2], bboxes2[..., :2])
    rb = np.minimum(hb1[..., 2:], bboxes2[..., 2:])
    wh = np.clip(rb - lt, 0, np.inf)
    h_overlaps = wh[..., 0] * wh[..., 1]
    x1, y1, x2, y2 = (bboxes2[..., i] for i in range(4))
    polys2 = np.stack([x1, y1, x2, y1, x2, y2, x1, y2], axis=-1)
    sg1 = [shapely.Polygon(p) for p in bboxes1.reshape(rows, -1, 2)]
    sg2 = [shapely.Polygon(p) for p in polys2.reshape(cols, -1, 2)]
    overlaps = np.zeros(h_overlaps.shape)
    for p in zip(*np.nonzero(h_overlaps)):
        overlaps[p] = sg1[p[0]].intersection(sg2[p[-1]]).area
    unions = np.clip(np.array([p.area for p in sg1], dtype=np.float32)[..., None], eps, np.inf)
    return overlaps / unions


def ref_split(img, objects, image_id, sizes, gaps, img_rate_thr=0.6, iof_thr=0.7, padding_value=0):
    height, width = img.shape[:2]
    windows = ref_get_sliding_window(width, height, sizes, gaps, img_rate_thr)
    bboxes = np.array([o["poly"] for o in objects], dtype=np.float32).reshape(-1, 8)
    iofs = ref_bbox_overlaps_iof(bboxes, windows)
    out = []
    for i, win in enumerate(windows):
        x_start, y_start, x_stop, y_stop = win.tolist()
        pos = np.nonzero(iofs[:, i] >= iof_thr)[0]
        trunc = iofs[pos, i] < 1
        translated = bboxes[pos] + np.array([-x_start, -y_start] * 4, dtype=np.float32)
        patch = img[y_start:y_stop, x_start:x_stop]
        h, w = y_stop - y_start, x_stop - x_start
        if h > patch.shape[0] or w > patch.shape[1]:
            pad = np.empty((h, w, patch.shape[-1]), dtype=np.uint8)
            pad[...] = padding_value
            pad[: patch.shape[0], : patch.shape[1], ...] = patch
            patch = pad
        lines = []
        for k, idx in enumerate(pos):
            outline = " ".join(map(str, translated[k]))
            diffs = str(objects[idx]["difficult"]) if not trunc[k] else "2"
            lines.append(outline + " " + objects[idx]["label"] + " " + diffs)
        out.append((f"{image_id}__{w}__{x_start}___{y_start}", patch, lines))
    return out


# ---- windows -------------------------------------------------------------------------------------------------
def test_windows_hand_computed():
    # 1000 x 600 with size 512, overlap 100 (step 412): x starts 0, 412, 824 -> last moved to 488; y: 0, 412 -> 88
    assert S.sliding_windows(1000, 600).tolist() == [
        [0, 0, 512, 512],
        [0, 88, 512, 600],
        [412, 0, 924, 512],
        [412, 88, 924, 600],
        [488, 0, 1000, 512],
        [488, 88, 1000, 600],
    ]
    assert S.sliding_windows(512, 512).tolist() == [[0, 0, 512, 512]]
    # smaller than a window: the image covers 23% < 60%, so the best window is kept anyway (and padded later)
    assert S.sliding_windows(300, 200).tolist() == [[0, 0, 512, 512]]
    # 1024 x 1024 with mmrotate's ss setting (1024, 200) is one window; with (512, 100) x and y starts 0, 412, 512
    assert S.sliding_windows(1024, 1024, 1024, 200).tolist() == [[0, 0, 1024, 1024]]
    assert [w[0] for w in S.sliding_windows(1024, 1024)[::3].tolist()] == [0, 412, 512]
    with pytest.raises(ValueError, match="size > gap"):
        S.sliding_windows(100, 100, 100, 100)


def test_windows_match_reference_on_random_sizes():
    rng = np.random.default_rng(0)
    for _ in range(300):
        w, h = int(rng.integers(50, 4000)), int(rng.integers(50, 4000))
        sizes, gaps = ([512], [100]) if rng.random() < 0.5 else ([1024, 512], [200, 100])
        thr = float(rng.choice([0.6, 0.9, 0.3]))
        ours = S.sliding_windows(w, h, sizes, gaps, thr)
        assert np.array_equal(ours, ref_get_sliding_window(w, h, sizes, gaps, thr)), (w, h, sizes, thr)


# ---- objects and patches -------------------------------------------------------------------------------------
def _scene(seed: int, width: int = 1100, height: int = 700, n: int = 60):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    objects = []
    for k in range(n):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        w, h, a = rng.uniform(5, 120), rng.uniform(5, 60), rng.uniform(-math.pi, math.pi)
        c, s = math.cos(a), math.sin(a)
        pts = [
            (cx + x * c - y * s, cy + x * s + y * c)
            for x, y in [(w / 2, h / 2), (-w / 2, h / 2), (-w / 2, -h / 2), (w / 2, -h / 2)]
        ]
        poly = [round(v, 1) if k % 2 else float(round(v)) for p in pts for v in p]
        objects.append(
            {"poly": poly, "label": ["plane", "ship", "small-vehicle"][k % 3], "difficult": k % 4 == 0}
        )
    for o in objects:
        o["difficult"] = int(o["difficult"])
    return img, objects


@pytest.mark.parametrize("seed", [0, 1])
def test_split_matches_reference_patches_names_and_lines(seed):
    img, objects = _scene(seed)
    ref = ref_split(img, objects, "P0001", [512], [100], padding_value=(104, 116, 124))
    ours = list(S.split_image(img, "P0001", objects, padding_value=(104, 116, 124)))
    assert [p.name for p in ours] == [r[0] for r in ref]
    for p, (_, patch, lines) in zip(ours, ref):
        assert np.array_equal(p.image, patch)
        assert S.dota_annotation_lines(p.objects) == lines
    # translated, not clipped: some truncated objects stick out of their window and are marked difficult 2
    sticking_out = [o for p in ours for o in p.objects if min(o["poly"]) < 0 or max(o["poly"]) > 512]
    assert sticking_out and all(o["difficult"] == 2 for o in sticking_out)


def test_small_image_is_padded_and_iof_threshold_applies():
    img = np.full((200, 300, 3), 7, np.uint8)
    inside = {"poly": [10, 10, 50, 10, 50, 30, 10, 30], "label": "ship"}
    half_out = {"poly": [280, 10, 320, 10, 320, 30, 280, 30], "label": "ship"}  # IoF vs the 512 window = 1
    (patch,) = S.split_image(img, "tiny", [inside, half_out], padding_value=0)
    assert patch.name == "tiny__512__0___0" and patch.image.shape == (512, 512, 3)
    assert patch.image[:200, :300].min() == 7 and patch.image[200:].max() == 0
    assert [o["difficult"] for o in patch.objects] == [0, 0]
    img = np.zeros((600, 1000), np.uint8)  # 2-D arrays work too
    obj = {"poly": [400, 100, 600, 100, 600, 120, 400, 120], "label": "bridge", "difficult": 1}
    inner = {"poly": [500, 300, 600, 300, 600, 320, 500, 320], "label": "ship", "difficult": 1}
    patches = {p.name: p for p in S.split_image(img, "g", [obj, inner])}
    # bridge: x window [0, 512) sees 112/200 = 0.56 < 0.7 -> dropped; [412, 924) sees 188/200 = 0.94 -> kept,
    # truncated, translated to x = -12; [488, 1000) sees 0.56 again -> dropped
    assert patches["g__512__0___0"].objects == []
    assert patches["g__512__412___0"].objects[0] == {
        "poly": [-12.0, 100.0, 188.0, 100.0, 188.0, 120.0, -12.0, 120.0],
        "label": "bridge",
        "difficult": 2,
    }
    # ship: fully inside [412, 924) and [488, 1000), so it keeps its own difficulty there
    assert [o["label"] for o in patches["g__512__488___0"].objects] == ["ship"]
    assert patches["g__512__488___88"].objects[0]["difficult"] == 1
    assert patches["g__512__488___88"].objects[0]["poly"][:2] == [12.0, 212.0]


def test_window_reader_reads_only_windows_and_equals_array_split():
    img, objects = _scene(3, width=1500, height=900)
    calls = []

    def read_window(x, y, w, h):
        calls.append((x, y, w, h))
        assert w <= 512 and h <= 512
        return img[y : y + h, x : x + w]

    a = list(S.split_image(img, "big", objects))
    b = list(S.split_image(read_window, "big", objects, width=1500, height=900))
    assert len(calls) == len(a)
    for p, q in zip(a, b):
        assert p.name == q.name and np.array_equal(p.image, q.image) and p.objects == q.objects
    with pytest.raises(ValueError, match="width and height are required"):
        next(S.split_image(read_window, "big", objects))


def test_rasterio_window_reader(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    img, objects = _scene(4, width=700, height=600)
    path = tmp_path / "scene.tif"
    transform = rasterio.Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 4000000.0)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=700,
        height=600,
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=transform,
    ) as dst:
        dst.write(np.moveaxis(img, -1, 0))
    reader, w, h = S.rasterio_window_reader(path)
    assert (w, h) == (700, 600)
    for p, q in zip(S.split_image(img, "t", objects), S.split_image(reader, "t", objects, width=w, height=h)):
        assert np.array_equal(p.image, q.image)


def test_annotation_file_round_trip(tmp_path):
    path = tmp_path / "P0001.txt"
    path.write_text(
        "imagesource:GoogleEarth\ngsd:0.146\n1 2 3 4 5 6 7 8 plane 0\n1.5 2 3 4 5 6 7 8 large-vehicle 1\n"
        "9 9 9 9 9 9 9 9 ship\n"
    )
    objs = S.read_dota_annotation(path)
    assert [o["label"] for o in objs] == ["plane", "large-vehicle", "ship"] and objs[2]["difficult"] == 0
    assert S.dota_annotation_lines(objs[:2]) == [
        "1.0 2.0 3.0 4.0 5.0 6.0 7.0 8.0 plane 0",
        "1.5 2.0 3.0 4.0 5.0 6.0 7.0 8.0 large-vehicle 1",
    ]


# ---- merging -------------------------------------------------------------------------------------------------
def ref_nms(records, thr, rbox=False):
    def geom(p):
        poly = shapely.Polygon(np.reshape(p, (4, 2)))
        return shapely.oriented_envelope(poly) if rbox else poly

    keep = [False] * len(records)
    groups = {}
    for i, r in enumerate(records):
        groups.setdefault((r["image"], r["label"]), []).append(i)
    for idx in groups.values():
        kept = []
        for i in sorted(idx, key=lambda i: -records[i]["score"]):  # stable
            gi = geom(records[i]["poly"])
            ok = True
            for j in kept:
                gj = geom(records[j]["poly"])
                inter = gi.intersection(gj).area
                if inter / (gi.area + gj.area - inter) > thr:
                    ok = False
                    break
            if ok:
                kept.append(i)
                keep[i] = True
    return keep


@pytest.mark.parametrize("box_type", ["poly", "rbox"])
def test_merge_translates_and_matches_greedy_nms(box_type):
    _, objects = _scene(5, n=80)
    rng = np.random.default_rng(5)
    dets = []
    for p in S.split_image(None, "P0005", objects, width=1100, height=700):
        for o in p.objects:  # every object seen by every window that keeps it, plus jitter and random scores
            dets.append(
                {
                    "image": p.name,
                    "label": o["label"],
                    "poly": list(np.asarray(o["poly"]) + rng.normal(0, 1, 8)),
                    "score": float(rng.choice([1.0, 0.9, 0.5])),
                }
            )
    merged_all = S.merge_patch_detections(dets, nms_iou_thr=None)
    assert {m["image"] for m in merged_all} == {"P0005"}
    ours = S.merge_patch_detections(dets, box_type=box_type)
    keep = ref_nms(merged_all, 0.1, rbox=box_type == "rbox")
    expected = [m for m, k in zip(merged_all, keep) if k]
    assert [(m["label"], m["poly"]) for m in ours] == [(m["label"], m["poly"]) for m in expected]
    assert len(ours) < len(merged_all)


def test_merge_offsets_and_errors():
    det = {
        "image": "P0001__512__412___88.png",
        "label": "ship",
        "poly": [0, 0, 10, 0, 10, 10, 0, 10],
        "score": 0.5,
    }
    (m,) = S.merge_patch_detections([det])
    assert m["image"] == "P0001" and m["poly"] == [412, 88, 422, 88, 422, 98, 412, 98]
    (m,) = S.merge_patch_detections([{**det, "image": "tile7"}], offsets={"tile7": ("scene", 100, 200)})
    assert (m["image"], m["poly"][:2]) == ("scene", [100.0, 200.0])
    with pytest.raises(ValueError, match="not a patch name"):
        S.merge_patch_detections([{**det, "image": "tile7"}])
    # equal scores: the first in input order survives
    a = {**det, "image": "P__512__0___0", "score": 1.0}
    b = {**det, "image": "P__512__0___0", "poly": [1, 0, 11, 0, 11, 10, 1, 10], "score": 1.0}
    assert S.merge_patch_detections([b, a])[0]["poly"][0] == 1.0
