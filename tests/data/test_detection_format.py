"""Dense-detection targets and parser vs RSCoVLM's dense_det_dataset.py / eval/metric/dense_det.py (re-implemented)."""

from __future__ import annotations

import copy
import difflib
import json
import math
import random
import re

import numpy as np
import pytest

from rszoo.data import detection_format as F
from rszoo.data.geometry import polygon_iou

DOTA = (
    "plane",
    "baseball-diamond",
    "bridge",
    "ground-track-field",
    "small-vehicle",
    "large-vehicle",
    "ship",
    "tennis-court",
    "basketball-court",
    "storage-tank",
    "soccer-ball-field",
    "roundabout",
    "harbor",
    "swimming-pool",
    "helicopter",
)


# ---- reference: RSCoVLM training/data/dense_det_dataset.py (polygon branch), module `random` as there ----------
def ref_preprocess(metadata):
    categories = metadata["categories"]
    categoryid2rank, categoryid2name = {}, {}
    cat_names = sorted([c["name"] for c in categories], key=lambda s: s.replace("-", " ").lower())
    for cat in categories:
        categoryid2rank[cat["id"]] = cat_names.index(cat["name"])
        categoryid2name[cat["id"]] = cat["name"].replace("-", " ").lower()
    categories_str = ", ".join([c.replace("-", " ").lower() for c in cat_names])
    imgid2data = {}
    for image in metadata["images"]:
        image["image_width"] = image.pop("width")
        image["image_height"] = image.pop("height")
        image["categories_str"] = categories_str
        imgid2data[image["id"]] = image
        image["annotations"] = []
    for ann in metadata["annotations"]:
        x1, y1, w, h = ann["bbox"]
        ann["bbox"] = [x1, y1, int(x1 + w), int(y1 + h)]
        ann["category_name"] = categoryid2name[ann["category_id"]]
        ann["category_rank"] = categoryid2rank[ann["category_id"]]
        imgid2data[ann["image_id"]]["annotations"].append(ann)
    return list(imgid2data.values())


def ref_select_obb_json_prompt_template(prob_proxy_prompt=0.5):
    main = F.MAIN_ORIENTED_TEMPLATE
    proxy = [
        "Give me the oriented bboxes and names of {categories} using JSON format",
        "Output the category names and oriented bboxes of the {categories} in the image using JSON format.",
        "From this image, provide the oriented bboxes and categories for {categories} using JSON format",
        "Please provide the oriented bbox coordinates of the following objects: {categories}",
        "Locate {categories} in the given image and provide the oriented bboxes using JSON format",
    ]
    template = random.choice(proxy) if random.random() <= prob_proxy_prompt else main
    if random.random() <= prob_proxy_prompt:
        template = template.replace("bbox", "bounding box")
    if random.random() <= prob_proxy_prompt:
        template = template.replace("oriented", "rotated")
    return template


def ref_select_hbb_json_prompt_template(prob_proxy_prompt=0.5):
    proxy = [
        "Please output bbox coordinates and names of {categories} in JSON format."  # the missing comma, as released
        "Give me the bboxes and names of {categories} using JSON format",
        "Output the category names and bboxes of the {categories} in the image using JSON format.",
        "From this image, provide the bboxes and categories for {categories} using JSON format",
        "Please provide the bbox coordinates of the following objects: {categories}.",
        "Locate {categories} in the given image and provide the bboxes using JSON format",
    ]
    template = random.choice(proxy) if random.random() <= prob_proxy_prompt else F.MAIN_HBB_TEMPLATE
    if random.random() <= prob_proxy_prompt:
        template = template.replace("bbox", "bounding box")
    return template


def ref_resize(annotations, ori_width, ori_height, resized_width, resized_height):
    for ann in annotations:
        x1, y1, x2, y2 = ann["bbox"]
        ann["bbox"] = [
            int(x1 * resized_width / ori_width),
            int(y1 * resized_height / ori_height),
            int(x2 * resized_width / ori_width),
            int(y2 * resized_height / ori_height),
        ]
        seg = ann["segmentation"]
        for i in range(0, len(seg[0]), 2):
            seg[0][i] = int(seg[0][i] * resized_width / ori_width)
            seg[0][i + 1] = int(seg[0][i + 1] * resized_height / ori_height)
    return annotations


def ref_normalize_polygon(polygon, clockwise=True):
    points = [(polygon[i], polygon[i + 1]) for i in range(0, 8, 2)]
    center = (sum(x for x, y in points) / 4, sum(y for x, y in points) / 4)
    points.sort(key=lambda p: math.atan2(p[1] - center[1], p[0] - center[0]), reverse=not clockwise)
    start_index = points.index(min(points, key=lambda p: (p[1], p[0])))
    sorted_points = points[start_index:] + points[:start_index]
    return [x for p in sorted_points for x in p]


def ref_get_polygon_messages(meta, prob_proxy_prompt=0.5, prob_plain_text_prompt=0.5):
    annotations = meta["annotations"]
    categories = meta["categories_str"]
    image_content = {"type": "image", "image": f"file://{meta['image_file_path']}"}
    annotations = ref_resize(
        annotations, meta["image_width"], meta["image_height"], meta["resized_width"], meta["resized_height"]
    )
    image_content["resized_width"] = meta["resized_width"]
    image_content["resized_height"] = meta["resized_height"]
    annotations.sort(key=lambda ann: (ann["category_rank"], ann["bbox"][1], ann["bbox"][0]))
    if random.random() >= prob_plain_text_prompt:
        prompt_template = ref_select_obb_json_prompt_template(prob_proxy_prompt)
        if len(annotations) == 0:
            response = "There are none."
        else:
            response = []
            for ann in annotations:
                polygon = ref_normalize_polygon(ann["segmentation"][0])
                response.append(json.dumps({"quadrant bbox": polygon, "label": ann["category_name"]}))
            response = "```json\n[\n\t" + ",\n\t".join(response) + "\n]\n```"
        sys_prompt = (
            "You are an AI assistant specializing in oriented object detection. Represent objects with "
            "quadrant bbox: the corrdinates of each vertices of the oriented bounding boxes in clock-wise "
            "order."
        )
    else:
        prompt_template = "find the {categories}"
        if len(annotations) == 0:
            response = "There are none."
        else:
            response = []
            for ann in annotations:
                x1, y1, x2, y2, x3, y3, x4, y4 = ref_normalize_polygon(ann["segmentation"][0])
                response.append(f"{x1},{y1},{x2},{y2},{x3},{y3},{x4},{y4} {ann['category_name']}")
            response = "\n".join(response) + "\n"
        sys_prompt = (
            "As an AI assistant, you specialize in accurate oriented object detection, delivering "
            "coordinates of the polygon vertices in plain text format 'x1,y1,x2,y2,x3,y3,x4,y4 object'."
        )
    return [
        {"role": "system", "content": sys_prompt},
        {
            "role": "user",
            "content": [
                image_content,
                {"type": "text", "text": prompt_template.format(categories=categories)},
            ],
        },
        {"role": "assistant", "content": response},
    ]


# ---- reference: RSCoVLM eval/metric/dense_det.py parsers (rapidfuzz -> difflib with no cut-off) ---------------
def fuzzy(label, keys):
    return difflib.get_close_matches(label, list(keys), n=1, cutoff=0)[0]


def ref_parse_plain(output, cls_map, ow, oh, rw, rh):
    polys, labels = [], []
    for line in output.strip().splitlines():
        if len(line.strip()) == 0:
            continue
        try:
            poly, label = line.split(" ", 1)
            poly = [int(c) for c in poly.split(",")]
        except Exception:
            continue
        label = label.strip().lower()
        if len(poly) != 8:
            if len(poly) > 8:
                poly = poly[:8]
            else:
                continue
        label = cls_map[label] if label in cls_map else cls_map[fuzzy(label, cls_map.keys())]
        for i in range(0, len(poly), 2):
            poly[i] = poly[i] * ow / rw
            poly[i + 1] = poly[i + 1] * oh / rh
        polys.append(poly)
        labels.append(label)
    return polys, labels


def ref_parse_json(output, cls_map, ow, oh, rw, rh):
    output = output.replace("```json\n", "").replace("\n```", "")
    try:
        output = json.loads(output)
    except Exception:
        output = output.replace("(", "[").replace(")", "]")
        output = re.sub(r"(, *)+", ", ", output)
        output = re.sub(r"(\d)\s+(\d)", r"\1, \2", output)
        output = re.sub(r'("label":\s*)+', '"label": ', output)
        new_lines = []
        for line in output.splitlines():
            try:
                json.loads(line.strip().strip(","))
            except Exception:
                continue
            new_lines.append(line)
        output = "[\n" + "\n".join(new_lines).rstrip(", ") + "\n]"
        try:
            output = json.loads(output)
        except Exception:
            output = []
    polys, labels = [], []
    for inst in output:
        if "quadrant bbox" not in inst or "label" not in inst:
            continue
        poly = inst["quadrant bbox"]
        label = inst["label"].lower()
        if not (isinstance(poly, list) and len(poly) == 8 and all(isinstance(n, int) for n in poly)):
            if isinstance(poly, list) and len(poly) > 8 and all(isinstance(n, int) for n in poly):
                poly = poly[:8]
            else:
                continue
        label = cls_map[label] if label in cls_map else cls_map[fuzzy(label, cls_map.keys())]
        for i in range(0, len(poly), 2):
            poly[i] = poly[i] * ow / rw
            poly[i + 1] = poly[i + 1] * oh / rh
        polys.append(poly)
        labels.append(label)
    return polys, labels


def ref_parse(output, fmt, categories, ow, oh, rw, rh):
    cls_map = {c.replace("-", " ").lower(): c for c in categories}  # names instead of ids, for comparison
    if output.lower().strip().rstrip(".") == "there are none":
        output = "" if fmt == "plain" else "[]"
    parse = ref_parse_plain if fmt == "plain" else ref_parse_json
    return parse(output, cls_map, ow, oh, rw, rh)


# ---- writer parity -----------------------------------------------------------------------------------------------
def coco_meta(seed: int, n_objects: int, width: int = 1000, height: int = 800):
    rng = np.random.default_rng(seed)
    anns = []
    for k in range(n_objects):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        w, h, a = rng.uniform(4, 80), rng.uniform(4, 80), rng.uniform(-math.pi, math.pi)
        c, s = math.cos(a), math.sin(a)
        pts = [
            (cx + x * c - y * s, cy + x * s + y * c)
            for x, y in [(w / 2, h / 2), (-w / 2, h / 2), (-w / 2, -h / 2), (w / 2, -h / 2)]
        ]
        if k % 4 == 0:  # integer annotations with ties in the hbb top edge
            pts = [(round(x), round(y)) for x, y in pts]
        flat = [v for p in pts for v in p]
        xs, ys = flat[0::2], flat[1::2]
        anns.append(
            {
                "id": k,
                "image_id": 0,
                "category_id": int(rng.integers(0, 15)),
                "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
                "segmentation": [flat],
            }
        )
    return {
        "images": [{"id": 0, "width": width, "height": height, "file_name": "P0001.png"}],
        "annotations": anns,
        "categories": [{"id": i, "name": n} for i, n in enumerate(DOTA)],
    }


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("prob_plain", [0.0, 1.0, 0.5])
def test_training_messages_are_byte_identical_to_reference(seed, prob_plain):
    meta = coco_meta(seed, n_objects=[0, 1, 7, 40][seed % 4])
    resized = (812, 644)
    ref_meta = ref_preprocess(copy.deepcopy(meta))[0]
    ref_meta.update(image_file_path="/data/P0001.png", resized_width=resized[0], resized_height=resized[1])
    random.seed(seed)
    ref = ref_get_polygon_messages(
        copy.deepcopy(ref_meta), prob_proxy_prompt=0.5, prob_plain_text_prompt=prob_plain
    )
    names = {c["id"]: c["name"] for c in meta["categories"]}
    objects = [
        {"label": names[a["category_id"]], "poly": a["segmentation"][0], "bbox": a["bbox"]}
        for a in meta["annotations"]
    ]
    ours = F.build_dense_det_messages(
        "file:///data/P0001.png",
        objects,
        DOTA,
        rng=random.Random(seed),
        original_size=(1000, 800),
        input_size=resized,
        prob_plain_text_prompt=prob_plain,
        prob_proxy_prompt=0.5,
        sort_key="released",
    )
    assert ours == ref


def test_sort_keys_differ_exactly_where_documented():
    # same category, same top edge: A's top vertex is far right but its left edge is far left
    a = {"label": "ship", "poly": [50, 10, 90, 40, 40, 80, 5, 40]}
    b = {"label": "ship", "poly": [20, 10, 30, 10, 30, 20, 20, 20]}
    released = F.format_quad_response([a, b], ["ship"], sort_key="released")
    paper = F.format_quad_response([a, b], ["ship"])
    assert released.splitlines()[0].startswith("50,10,") and paper.splitlines()[0].startswith("20,10,")
    # the start vertex is the smallest (y, x) and vertices run clockwise on screen
    assert paper.splitlines()[1] == "50,10,90,40,40,80,5,40 ship"


def test_writer_formats_and_empty_images():
    objs = [
        {"label": "storage-tank", "poly": [10.9, 20.9, 30, 20, 30, 40, 10, 40]},
        {"label": "Plane", "poly": [0, 0, 4, 0, 4, 4, 0, 4]},
    ]
    cats = ["Plane", "storage-tank"]
    plain = F.format_quad_response(objs, cats)
    assert (
        plain == "0,0,4,0,4,4,0,4 plane\n10,20,30,20,30,40,10,40 storage tank\n"
    )  # int() truncates 10.9 -> 10
    js = F.format_quad_response(objs, cats, fmt="json")
    assert js == (
        '```json\n[\n\t{"quadrant bbox": [0, 0, 4, 0, 4, 4, 0, 4], "label": "plane"},\n\t'
        '{"quadrant bbox": [10, 20, 30, 20, 30, 40, 10, 40], "label": "storage tank"}\n]\n```'
    )
    assert (
        F.format_quad_response([], cats) == F.format_quad_response([], cats, fmt="json") == "There are none."
    )
    assert F.categories_text(DOTA).startswith(
        "baseball diamond, basketball court, bridge, ground track field"
    )
    with pytest.raises(ValueError, match=r"objects\[0\]: label 'tree'"):
        F.format_quad_response([{"label": "tree", "poly": [0] * 8}], cats)


def test_hbb_and_obb_writers_round_trip_through_the_parser():
    objs = [{"label": "ship", "poly": [100, 100, 180, 140, 160, 180, 80, 140]}]
    hbb = F.format_detection_response(objs, ["ship"], box="hbb", fmt="json")
    assert hbb == '```json\n[\n\t{"bbox_2d": [80, 100, 180, 180], "label": "ship"}\n]\n```'
    obb = F.format_detection_response(objs, ["ship"], box="obb")
    cx, cy, w, h, a = (int(v) for v in obb.split()[0].split(","))
    assert (cx, cy) == (130, 140) and w >= h and -90 <= a < 90
    for box, text in (("hbb", hbb), ("obb", obb)):
        parsed = F.parse_detection_response(text, ["ship"], box=box)
        assert parsed.counts["parsed"] == 1
    back = F.parse_detection_response(obb, ["ship"], box="obb").detections[0]["poly"]
    assert polygon_iou([back], [objs[0]["poly"]])[0, 0] > 0.9


@pytest.mark.parametrize("box", ["quad", "hbb"])
def test_json_prompt_draws_match_reference_rng(box):
    ref_fn = ref_select_obb_json_prompt_template if box == "quad" else ref_select_hbb_json_prompt_template
    seen = set()
    for seed in range(60):
        random.seed(seed)
        ref = ref_fn(0.5)
        ours = F.select_json_template(box, random.Random(seed), 0.5)
        assert ours == ref
        seen.add(ours)
    assert len(seen) > 6  # main, proxies and both replacements all occur
    assert F.user_prompt(DOTA, fmt="json", for_eval=True).endswith(
        "The category set includes baseball diamond, "
        "basketball court, bridge, ground track field, "
        "harbor, helicopter, large vehicle, plane, "
        "roundabout, ship, small vehicle, soccer ball "
        "field, storage tank, swimming pool, tennis court."
    )


# ---- parser corpus -----------------------------------------------------------------------------------------------
CATS = ["plane", "ship", "small-vehicle", "large-vehicle", "storage-tank"]
GOOD = "12,40,30,44,28,55,10,51 small vehicle\n80,12,96,12,96,30,80,30 storage tank\n"
JGOOD = F.format_quad_response(
    [
        {"label": "small-vehicle", "poly": [12, 40, 30, 44, 28, 55, 10, 51]},
        {"label": "storage-tank", "poly": [80, 12, 96, 12, 96, 30, 80, 30]},
    ],
    CATS,
    fmt="json",
)
CORPUS = [
    ("plain", GOOD),
    ("plain", "There are none."),
    ("plain", "there are none"),
    ("plain", "1,2,3,4,5,6,7,8,9,10 ship"),
    ("plain", "1,2,3,4,5,6 ship\n12,40,30,44,28,55,10,51 plane"),
    ("plain", "\n\n12,40,30,44,28,55,10,51 ship\n\n\n80,12,96,12,96,30,80,30 plane\n"),
    ("plain", "12,40,30,44,28,55,10,51 tree"),
    ("plain", "12,40,30,44,28,55,10,51 smal vehicle"),
    ("plain", "12, 40, 30, 44, 28, 55, 10, 51 ship"),
    ("plain", "(12,40,30,44,28,55,10,51) ship"),
    ("plain", "12.5,40,30,44,28,55,10,51 ship"),
    ("plain", "12,,40,30,44,28,55,10,51 ship"),
    ("plain", "12,40,30,44,28,55,10,51"),
    ("plain", "```\n12,40,30,44,28,55,10,51 ship\n```"),
    ("plain", "I can see a few ships near the harbor."),
    ("plain", "12,40,30,44,28,55,10,51 SHIP"),
    ("plain", "12,40,30,44,28,55,10,51 small-vehicle"),
    ("plain", "-3,4,30,44,28,55,10,51 large vehicle"),
    ("plain", GOOD + "12,40,30"),
    ("plain", "12,40,30,44,28,55,10,51 ship.\n13,41,31,45,29,56,11,52 ships"),
    ("json", JGOOD),
    ("json", JGOOD.replace("[12, 40, 30, 44, 28, 55, 10, 51]", "(12, 40, 30, 44, 28, 55, 10, 51)")),
    ("json", JGOOD.replace("[12, 40, 30,", "[12, 40,, 30,")),
    ("json", JGOOD.replace("[12, 40, 30,", "[12 40 30,")),
    ("json", JGOOD.replace('"label": "small vehicle"', '"label": "label": "small vehicle"')),
    ("json", JGOOD.replace("[12, 40, 30, 44, 28, 55, 10, 51]", "[12, 40, 30, 44, 28, 55, 10, 51, 9, 9]")),
    ("json", JGOOD.replace("[12, 40, 30, 44, 28, 55, 10, 51]", "[12, 40, 30, 44, 28, 55]")),
    ("json", JGOOD.replace("[12, 40, 30, 44, 28, 55, 10, 51]", "[12.0, 40, 30, 44, 28, 55, 10, 51]")),
    ("json", JGOOD.replace('"small vehicle"', '"tree"')),
    ("json", JGOOD[: JGOOD.index('{"quadrant bbox": [80') + 30]),
    (
        "json",
        '{"quadrant bbox": [1, 2, 3, 4, 5, 6, 7, 8], "label": "ship"},\n'
        '{"quadrant bbox": [9, 10, 11, 12, 13, 14, 15, 16], "label": "plane"}',
    ),
    ("json", "There are none."),
    ("json", "```json\n[]\n```"),
    (
        "json",
        '```json\n[\n\t{"quadrant bbox": [1, 2, 3, 4, 5, 6, 7, 8]},\n\t'
        '{"quadrant bbox": [1, 2, 3, 4, 5, 6, 7, 8], "label": "ship"}\n]\n```',
    ),
    ("json", "```json\n[\n\t{'quadrant bbox': [1, 2, 3, 4, 5, 6, 7, 8], 'label': 'ship'}\n]\n```"),
]
SIZES = dict(original_size=(1024, 768), input_size=(812, 616))


def _pairs(dets):
    return [(d["label"], d["poly"]) for d in dets]


@pytest.mark.parametrize(("fmt", "text"), CORPUS)
def test_strict_parser_equals_reference(fmt, text):
    assert len(CORPUS) >= 25
    polys, labels = ref_parse(text, fmt, CATS, 1024, 768, 812, 616)
    ours = F.parse_detection_response(text, CATS, fmt=fmt, strict=True, label_cutoff=0, **SIZES)
    assert _pairs(ours.detections) == list(zip(labels, polys))
    assert all(d["score"] == 1.0 for d in ours.detections)


@pytest.mark.parametrize(("fmt", "text"), CORPUS)
def test_robust_parser_keeps_everything_the_reference_keeps(fmt, text):
    polys, labels = ref_parse(text, fmt, CATS, 1024, 768, 812, 616)
    ours = F.parse_detection_response(text, CATS, fmt=fmt, label_cutoff=0, **SIZES)
    got = _pairs(ours.detections)
    for pair in zip(labels, polys):
        assert pair in got
    c = ours.counts
    assert c["parsed"] == len(got) and c["objects"] >= c["parsed"]
    assert c["parsed"] + sum(c["dropped"].values()) == c["objects"]


def _robust(text, fmt="auto", **kw):
    return F.parse_detection_response(text, CATS, fmt=fmt, **kw)


def test_robust_repairs_and_counts():
    ship = [12, 40, 30, 44, 28, 55, 10, 51]
    for text in (
        "12, 40, 30, 44, 28, 55, 10, 51 ship",
        "(12,40,30,44,28,55,10,51) ship",
        "12,,40,30,44,28,55,10,51 ship",
        "[12 40 30 44 28 55 10 51] ship",
    ):
        r = _robust(text)
        assert _pairs(r.detections) == [("ship", ship)] and r.counts["repaired"] == 1, text
    r = _robust("12.5,40,30,44,28,55,10,51 ship")
    assert r.detections[0]["poly"][0] == 12.5 and r.counts["repaired"] == 1
    r = _robust("1,2,3,4,5,6,7,8,9,10 ship\n1,2,3,4,5,6 ship\n12,40,30,44,28,55,10,51\nhello there")
    assert r.counts["parsed"] == 1 and r.counts["truncated_numbers"] == 1
    assert r.counts["dropped"] == {"too_few_numbers": 1, "bad_label": 1, "bad_line": 1}
    r = _robust("12,40,30,44,28,55,10,51 tree\n12,40,30,44,28,55,10,51 smal vehicle")
    assert _pairs(r.detections) == [("small-vehicle", ship)]
    assert r.counts["dropped"] == {"unknown_label": 1} and r.counts["fuzzy_labels"] == 1
    assert (
        _robust("12,40,30,44,28,55,10,51 tree", label_cutoff=0).counts["parsed"] == 1
    )  # reference behaviour
    r = _robust("There is none.")
    assert r.detections == [] and r.counts["empty"] == 1


def test_robust_json_repairs():
    r = _robust(JGOOD[: JGOOD.index('{"quadrant bbox": [80') + 30], fmt="json")  # generation cut mid-object
    assert r.counts["parsed"] == 1 and r.counts["dropped"] == {"truncated_object": 1}
    r = _robust("```json\n[\n\t{'quadrant bbox': [1, 2, 3, 4, 5, 6, 7, 8], 'label': 'ship'}\n]\n```")
    assert _pairs(r.detections) == [("ship", [1, 2, 3, 4, 5, 6, 7, 8])] and r.counts["repaired"] == 1
    r = _robust('Here you go: [{"polygon": [[1, 2], [3, 4], [5, 6], [7, 8]], "category": "Ships"}]')
    assert _pairs(r.detections) == [("ship", [1, 2, 3, 4, 5, 6, 7, 8])] and r.counts["repaired"] == 1
    r = _robust(
        '[{"quadrant bbox": [1, 2, 3, 4, 5, 6, 7, 8], "label": "ship"}, '
        '{"quadrant bbox": ["a", 2, 3, 4, 5, 6, 7, 8], "label": "ship"}, {"label": "ship"}]'
    )
    assert r.counts["parsed"] == 1 and r.counts["dropped"] == {"bad_box": 1, "missing_key": 1}


def test_back_scaling_and_image_field():
    r = F.parse_detection_response(
        "406,308,812,308,812,616,406,616 plane",
        CATS,
        image="P1__512__0___0",
        original_size=(1024, 768),
        input_size=(812, 616),
    )
    assert r.detections == [
        {
            "image": "P1__512__0___0",
            "label": "plane",
            "poly": [512.0, 384.0, 1024.0, 384.0, 1024.0, 768.0, 512.0, 768.0],
            "score": 1.0,
        }
    ]


def test_parser_never_raises_on_garbage():
    rng = random.Random(0)
    alphabet = "0123456789,.-[](){}\"' :\n\tlabelshipquadrant bbox```json"
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        for strict in (False, True):
            for fmt in ("plain", "json", "auto"):
                r = F.parse_detection_response(text, CATS, fmt=fmt, strict=strict)
                assert r.counts["parsed"] == len(r.detections)
    for junk in (None, 42, b"12,40", ["x"]):
        r = F.parse_detection_response(junk, CATS)
        assert r.detections == [] and r.counts["dropped"] == {"not_text": 1}
    huge = ",".join(["9" * 400] * 8) + " ship"  # no float can hold it: dropped, not raised
    assert F.parse_detection_response(huge, CATS, **SIZES).counts["dropped"] == {"bad_box": 1}
    assert F.parse_detection_response(huge, CATS, strict=True).counts["dropped"] == {"bad_box": 1}


def test_map_label_rules():
    assert F.map_label("Storage-Tanks.", CATS) == ("storage-tank", "normalized")
    assert F.map_label("plain", CATS, cutoff=0.9) == (None, "unknown")
    assert F.map_label("plain", CATS, cutoff=0.5) == ("plane", "fuzzy")
    assert F.map_label("small_vehicle", CATS, strict=True)[1] == "fuzzy"  # the reference only lower-cases
