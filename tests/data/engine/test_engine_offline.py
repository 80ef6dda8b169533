"""Offline processing: task tags, text cleaning, box unification (against rszoo.data.geometry and shapely),
degenerate quads, small images and the unified-record cache."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import LinearRing, Polygon

from rszoo.data.engine.offline import (
    DEFAULT_TASK_TAGS,
    DEFAULT_TYPOS,
    OfflineOptions,
    OfflineReport,
    clean_text,
    process_records,
    process_source,
    replace_task_tags,
    unify_quads,
)
from rszoo.data.engine.sources import ReferringRecord
from rszoo.data.geometry import normalize_quad, quad_validity, rbox_to_quad

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "engine"
DOTA = {
    "format": "dota",
    "labels": str(FIX / "dota/labelTxt"),
    "images": str(FIX / "dota/images"),
    "categories": "auto",
}
REFGEO = {
    "format": "refgeo",
    "annotations": str(FIX / "refgeo/metainfo/refgeo_train.jsonl"),
    "images": str(FIX / "refgeo"),
    "box_type": "hbb",
}


@pytest.mark.parametrize(
    ("text", "expected", "typos"),
    [
        ("There are  two planes ,, near the  buliding .", "There are two planes, near the building.", 1),
        ("Is it  urban ?? Yes..", "Is it urban? Yes.", 0),
        ("Wait... there is more!!", "Wait... there is more!", 0),
        ("Buliding and VECHICLE", "Building and Vehicle", 2),
        ("  line one  \n\n\n\n    indented  code();\n", "line one\n\n    indented code();", 0),
        ("12,40,30,44 ship", "12,40,30,44 ship", 0),
        ("An area , with a road ;.", "An area, with a road.", 0),
    ],
)
def test_clean_text_rules(text, expected, typos):
    assert clean_text(text, DEFAULT_TYPOS) == (expected, typos)


def test_typo_and_tag_tables_are_configurable():
    opts = OfflineOptions(typos={"aeroplane": "airplane", "tenis": None})
    table = opts.typo_table()
    assert table["aeroplane"] == "airplane" and "tenis" not in table and table["buliding"] == "building"
    assert OfflineOptions(default_typos=False, typos={"a": "b"}).typo_table() == {"a": "b"}
    tags = OfflineOptions(task_tags={"[refer]": "Locate: {text}", "[vqa]": None}).tag_table()
    assert tags["[refer]"] == "Locate: {text}" and "[vqa]" not in tags and "[identify]" in tags
    with pytest.raises(ValueError, match=r"task_tags\['\[x\]'\]: the template must contain \{text\}"):
        OfflineOptions.from_dict({"task_tags": {"[x]": "no placeholder"}}, "offline")
    with pytest.raises(ValueError, match=r"unknown offline option\(s\) \['typo'\]"):
        OfflineOptions.from_dict({"typo": {}}, "offline")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[refer] give me the location of <p>the ship</p>", ("give me the location of the ship", 1, 0)),
        ("[REFER]  where is it?", ("where is it?", 1, 0)),
        (
            "[grounding] describe the image",
            ("describe the image Give the location of each object you mention.", 1, 0),
        ),
        ("[identify] what is this {<1><2><3><4>|<0>}", ("what is this {<1><2><3><4>|<0>}", 1, 0)),
        ("[odd] what is it?", ("[odd] what is it?", 0, 1)),
        ("no tag here", ("no tag here", 0, 0)),
    ],
)
def test_task_tags_become_natural_language(text, expected):
    assert replace_task_tags(text, DEFAULT_TASK_TAGS, ["<p>", "</p>"]) == expected


def test_unify_quads_matches_geometry_and_shapely_on_random_quads():
    rng = np.random.default_rng(0)
    centres = rng.uniform(20, 200, (300, 2))
    angles = rng.uniform(0, np.pi, 300)
    quads = []
    for (cx, cy), a in zip(centres, angles):  # random rectangles, vertices shuffled (often a crossing order)
        corners = rbox_to_quad([cx, cy, rng.uniform(2, 40), rng.uniform(2, 40), a])
        pts = [corners[i : i + 2] for i in range(0, 8, 2)]
        random.Random(int(cx * 1000)).shuffle(pts)
        quads.append([v for p in pts for v in p])
    quads += [[0, 0, 1, 1, 2, 2, 3, 3], [0, 0, 4, 4, 4, 0, 0, 4], [5, 5, 5, 5, 5, 5, 5, 5]]
    ordered, flags = unify_quads(quads, clockwise=True)
    for quad, out in zip(quads, ordered):
        assert out == pytest.approx(normalize_quad(quad, clockwise=True), abs=1e-12)
    after = quad_validity(ordered)
    assert flags["zero_area"] == after["degenerate"].tolist()
    before = quad_validity(quads)["self_intersecting"]
    assert flags["reordered"] == (before & ~after["self_intersecting"]).tolist()
    assert sum(flags["reordered"]) > 50 and flags["zero_area"][-3:] == [True, False, True]
    for out, zero in zip(ordered, flags["zero_area"]):
        if zero:
            continue
        pts = list(zip(out[0::2], out[1::2]))
        ring = LinearRing(pts)
        # clockwise on screen (y down) is counter-clockwise in shapely's y-up axes; start at the smallest (y, x)
        assert ring.is_valid and ring.is_ccw and pts[0] == min(pts, key=lambda p: (p[1], p[0]))
        assert Polygon(pts).area == pytest.approx(Polygon(pts).convex_hull.area)
    ccw, _ = unify_quads([[0, 10, 10, 10, 10, 0, 0, 0]], clockwise=False)
    assert ccw == [[0, 0, 0, 10, 10, 10, 10, 0]]  # RSCoVLM refGeo / LMMRotate order


def test_detection_unification_counts_and_drops_degenerate_quads():
    records, report = process_source("dota", "detection", DOTA, OfflineOptions())
    objects = {o.label: o for o in records[0].objects}
    assert sorted(objects) == ["plane", "ship", "small-vehicle"]  # the zero-area harbor quad is dropped
    assert objects["ship"].quad == [2, 40, 12, 40, 12, 44, 2, 44]  # crossing order repaired
    assert objects["plane"].quad == [50, 20, 60, 30, 50, 40, 40, 30] and objects["plane"].hbox == [
        40,
        20,
        60,
        40,
    ]
    assert (report.quads, report.reordered, report.zero_area, report.self_intersecting) == (4, 1, 1, 0)
    assert (report.degenerate_dropped, report.empty_images, report.kept) == (1, 1, 2)
    kept, report = process_source("dota", "detection", DOTA, OfflineOptions(degenerate="keep"))
    assert len(kept[0].objects) == 4 and report.degenerate_dropped == 0 and report.zero_area == 1
    assert kept[0].objects[3].quad == [5, 5, 15, 5, 25, 5, 35, 5]  # kept as annotated


def test_grounding_boxes_are_unified_and_degenerate_ones_dropped():
    records, report = process_source("refgeo", "grounding", REFGEO, OfflineOptions())
    assert [r.id for r in records] == [
        "dior_rsvg-1",
        "dior_rsvg-2",
        "rsvg-7",
    ] and report.degenerate_dropped == 1
    first = records[0]
    assert first.expression == "the vehicle on the left"  # double space, typo, trailing comma
    assert first.quad == [4, 8, 20, 8, 20, 30, 4, 30] and first.hbox == [4, 8, 20, 30]
    quad_source = {**REFGEO, "box_type": "quad"}
    quads, _ = process_source("refgeo", "grounding", quad_source, OfflineOptions())
    assert quads[1].quad == [30, 2, 50, 2, 50, 12, 30, 12] and quads[1].hbox == [30, 2, 50, 12]
    obb = ReferringRecord("o", "/x.png", (100, 100), "a ship", [50, 50, 20, 10, 30], "obb")
    report = OfflineReport("s", "grounding", "test")
    (out,) = process_records([obb], "grounding", OfflineOptions(), report)
    assert out.quad == pytest.approx(normalize_quad(rbox_to_quad([50, 50, 20, 10, 30], degrees=True)))
    assert Polygon(list(zip(out.quad[0::2], out.quad[1::2]))).area == pytest.approx(200)
    kept, report = process_source("refgeo", "grounding", REFGEO, OfflineOptions(degenerate="keep"))
    assert len(kept) == 4 and report.zero_area == 1


def test_small_images_are_flagged_for_upscaling():
    source = {"format": "messages", "annotations": str(FIX / "small/messages.jsonl"), "tasks": ["vqa"]}
    (record,), report = process_source("small", "vqa", source, OfflineOptions(), factor=28)
    assert record.sizes == [(10, 10)] and record.meta["upscaled"] is True
    assert report.small_images == 1 and report.small_image_ids == ["tiny"]


def test_conversation_user_turns_are_cleaned_assistant_turns_kept():
    source = {
        "format": "llava",
        "annotations": str(FIX / "llava/geochat_instruct.json"),
        "images": str(FIX / "llava/images"),
    }
    records, report = process_source("geochat", "conversation", source, OfflineOptions())
    g2 = records[1].messages
    assert (
        g2[0]["content"][1]["text"]
        == "describe the image in detail Give the location of each object you mention."
    )
    assert g2[1]["content"] == "A harbor with <p>two ships</p> {<1><2><3><4>|<0>}."  # verbatim
    assert g2[2]["content"] == [{"type": "text", "text": "Is there a building?"}]
    assert records[1].sizes == [(30, 70)] and records[2].sizes == []
    assert (report.tags_replaced, report.unknown_tags, report.typos_fixed) == (3, 1, 1)


def test_unified_records_are_cached_and_invalidated(tmp_path):
    labels = tmp_path / "labelTxt"
    labels.mkdir()
    for txt in (FIX / "dota/labelTxt").glob("*.txt"):
        (labels / txt.name).write_text(txt.read_text())
    source = {**DOTA, "labels": str(labels)}
    first, r1 = process_source("dota", "detection", source, OfflineOptions(), cache_dir=tmp_path / "cache")
    again, r2 = process_source("dota", "detection", source, OfflineOptions(), cache_dir=tmp_path / "cache")
    assert not r1.from_cache and r2.from_cache and again == first and r2.fingerprint == r1.fingerprint
    assert len(list((tmp_path / "cache").glob("dota-*.jsonl"))) == 1
    (labels / "P0002.txt").write_text("1 1 9 1 9 9 1 9 ship 0\n")
    os.utime(labels / "P0002.txt", ns=(1, 1))
    changed, r3 = process_source("dota", "detection", source, OfflineOptions(), cache_dir=tmp_path / "cache")
    assert not r3.from_cache and r3.fingerprint != r1.fingerprint and len(changed[1].objects) == 1
    _, r4 = process_source(
        "dota", "detection", source, OfflineOptions(degenerate="keep"), cache_dir=tmp_path / "cache"
    )
    assert not r4.from_cache  # offline options are part of the fingerprint


def test_zoom_records_with_a_crop_outside_the_image_are_dropped(tmp_path):
    rows = [
        {
            "image": "scene1.png",
            "question": "q?",
            "answer": "a",
            "bbox_info": {"crop_hbox": [[150, 100, 210, 140]]},
        },
        {
            "image": "scene1.png",
            "question": "q?",
            "answer": "a",
            "bbox_info": {"crop_hbox": [[50, 40, 50, 60]]},
        },
        {
            "image": "scene1.png",
            "question": "q?",
            "answer": "a",
            "bbox_info": {"crop_hbox": [[0, 0, 200, 150]]},
        },
        {
            "image": "scene1.png",
            "question": "q?",
            "answer": "a",
            "bbox_info": {"crop_hbox": [[0, 0, 1, 1], [-5, 0, 9, 9]]},
        },
    ]
    (tmp_path / "z.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    source = {
        "format": "zoom",
        "annotations": str(tmp_path / "z.jsonl"),
        "images": str(FIX / "lrsvqa_zoom/images"),
    }
    records, report = process_source("z", "zoom_vqa", source, OfflineOptions())
    assert (
        report.invalid_crops == 2 and len(records) == 2
    )  # 200 px wide image; an empty box; two boxes: no chain
    assert "2 zoom records with a crop outside the image dropped" in report.summary()
