"""Data-engine loaders on fixtures in the official formats: exact record contents, skips counted, clear errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from shapely.geometry import Polygon

from rszoo.data.engine.sources import (
    DOTA_V1_CATEGORIES,
    ConversationRecord,
    DetObject,
    QARecord,
    load_coco,
    load_dota,
    load_grounding_jsonl,
    load_image_folder,
    load_llava,
    load_lrsvqa,
    load_refgeo,
    load_rsvqa,
    load_source,
    load_synth_scenes,
    load_vrsbench_vqa,
    load_zoom,
    record_from_dict,
    record_to_dict,
)

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "engine"


def _abs(rel: str) -> str:
    return str((FIX / rel).resolve())


def test_dota_label_txt_with_headers_difficult_and_an_empty_image():
    records, stats = load_dota(FIX / "dota/labelTxt", FIX / "dota/images")
    assert [r.id for r in records] == ["P0001", "P0002"]
    p1, p2 = records
    assert p1.image == _abs("dota/images/P0001.png") and p1.size == (64, 48) and p2.size == (32, 32)
    assert p1.meta == {"imagesource": "GoogleEarth", "gsd": 0.146343590398}
    assert p2.meta == {"imagesource": "GoogleEarth", "gsd": None} and p2.objects == []
    assert p1.objects == [
        DetObject("small-vehicle", [10, 5, 30, 5, 30, 15, 10, 15], [10, 5, 30, 15], 0),
        DetObject("plane", [40, 30, 50, 20, 60, 30, 50, 40], [40, 20, 60, 40], 1),
        DetObject("ship", [2, 40, 12, 44, 12, 40, 2, 44], [2, 40, 12, 44], 0),
        DetObject("harbor", [5, 5, 15, 5, 25, 5, 35, 5], [5, 5, 35, 5], 0),
    ]
    assert p1.categories == ["harbor", "plane", "ship", "small-vehicle"]  # "auto": the classes found, sorted
    dota, _ = load_dota(FIX / "dota/labelTxt", FIX / "dota/images", categories="dota_v1")
    assert dota[0].categories == list(DOTA_V1_CATEGORIES) and len(DOTA_V1_CATEGORIES) == 15
    assert stats.loaded == 2


def test_dota_errors_name_the_file_and_line(tmp_path):
    (tmp_path / "labels").mkdir()
    (tmp_path / "images").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("gsd:0.3\n1 2 3 4 5 6 7 ship\n")
    with pytest.raises(FileNotFoundError, match=r"a\.txt: no image a"):
        load_dota(tmp_path / "labels", tmp_path / "images")
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "a.png")
    with pytest.raises(ValueError, match=r"a\.txt:2: expected 'x1 y1"):
        load_dota(tmp_path / "labels", tmp_path / "images")
    (tmp_path / "labels" / "a.txt").write_text("1 2 3 4 5 6 7 8 tree 0\n")
    with pytest.raises(ValueError, match=r"labels \['tree'\] are not in the category list"):
        load_dota(tmp_path / "labels", tmp_path / "images", categories="dota_v1")


def test_coco_polygons_min_area_rect_and_crowd_rle():
    records, stats = load_coco(FIX / "coco/annotations/instances.json", FIX / "coco/images")
    assert [r.id for r in records] == ["1", "2"] and records[1].objects == []
    assert records[0].categories == ["plane", "ship"] and records[0].size == (40, 40)
    plane, pentagon, crowd = records[0].objects
    assert plane == DetObject("plane", [5, 5, 15, 5, 15, 11, 5, 11], [5, 5, 15, 11], 0)
    # 5-vertex polygon (a square with a vertex on an edge): its minimum-area rectangle is the square itself
    corners = sorted((round(x, 6), round(y, 6)) for x, y in zip(pentagon.quad[0::2], pentagon.quad[1::2]))
    assert corners == [(20, 20), (20, 30), (30, 20), (30, 30)] and pentagon.label == "ship"
    assert crowd == DetObject("ship", [0, 30, 8, 30, 8, 34, 0, 34], [0, 30, 8, 34], 1)  # RLE: the box is used
    assert stats.skipped == {"quad_from_bbox": 1}


def test_refgeo_hbb_quad_and_obb_boxes():
    hbb, _ = load_refgeo(FIX / "refgeo/metainfo/refgeo_train.jsonl", FIX / "refgeo")
    assert [r.id for r in hbb] == ["dior_rsvg-1", "dior_rsvg-2", "dior_rsvg-3", "rsvg-7"]
    first = hbb[0]
    assert first.image == _abs("refgeo/images/dior_rsvg/00001.png") and first.size == (64, 64)
    assert first.expression == "the vehicel  on the left ," and first.box == [4, 8, 20, 30]
    assert first.box_type == "hbb" and first.source == "refgeo/dior_rsvg"
    quad, _ = load_refgeo(FIX / "refgeo/metainfo/refgeo_train.jsonl", FIX / "refgeo", box_type="quad")
    assert quad[3].box == [20, 10, 40, 20, 30, 40, 10, 30] and quad[3].size == (100, 60)
    obb, _ = load_refgeo(FIX / "refgeo/metainfo/refgeo_train.jsonl", FIX / "refgeo", box_type="obb")
    cx, cy, w, h, angle = obb[3].box
    # the polygon is a square of side sqrt(500) centred at (25, 25), rotated by atan(10 / 20)
    assert (cx, cy) == pytest.approx((25, 25)) and (w, h) == pytest.approx((math.sqrt(500),) * 2)
    assert -90 <= angle < 90 and (angle - math.degrees(math.atan2(10, 20))) % 90 == pytest.approx(0, abs=1e-9)


def test_lrsvqa_records_and_source_prefixes():
    records, stats = load_lrsvqa(FIX / "lrsvqa/LRS_VQA_merged.jsonl", FIX / "lrsvqa/image")
    assert [(r.id, r.question, r.answers, r.qtype, r.meta["source_dataset"]) for r in records] == [
        ("FAIR_0001", "What color is the largest ship?", ["white"], "object color", "FAIR"),
        ("STAR_0002", "Is this a rural or urban area?", ["urban"], "rural or urban", "STAR"),
        ("GLH_0003", "How many bridges are there?", ["2"], "count", "GLH"),
    ]
    assert records[0].images == [_abs("lrsvqa/image/fair_1.png")] and stats.notes == []


def test_zoom_open_ended_mcq_and_multi_crop_records():
    records, _ = load_zoom(FIX / "lrsvqa_zoom/zoom_train.jsonl", FIX / "lrsvqa_zoom/images")
    z1, z2, z3 = records
    assert (z1.question, z1.answer, z1.crop_boxes, z1.size, z1.choices) == (
        "What color is the ship?",
        "white",
        [[50, 40, 120, 100]],
        (200, 150),
        [],
    )
    # the MCQ suffix is removed exactly (RSCoVLM's character-set rstrip would also eat letters)
    assert z2.question == "What is the object near the dock?" and z2.answer == "B"
    assert z2.choices == ["(A) plane", "(B) ship", "(C) car", "(D) bridge"]
    assert z3.size == (200, 150) and len(z3.crop_boxes) == 2  # size read from the file header


def test_rsvqa_official_json_with_inactive_entries_and_type_filter():
    files = [FIX / f"rsvqa/LR_split_train_{k}.json" for k in ("questions", "answers", "images")]
    records, stats = load_rsvqa(*files, FIX / "rsvqa/Images_LR")
    assert [(r.id, r.question, r.answers, r.qtype) for r in records] == [
        ("0", "Is there a road?", ["yes"], "presence"),
        ("1", "How many buildings are there?", ["12"], "count"),
        ("2", "Are there more roads than water areas ?", ["no"], "comp"),
    ]
    assert records[2].images == [_abs("rsvqa/Images_LR/1.tif")]
    assert stats.skipped == {"inactive_question": 1, "inactive_image": 1}
    only, stats = load_rsvqa(*files, FIX / "rsvqa/Images_LR", types=["presence"])
    assert [r.id for r in only] == ["0"] and stats.skipped["type_filtered"] == 2


def test_vrsbench_vqa():
    records, _ = load_vrsbench_vqa(FIX / "vrsbench/VRSBench_EVAL_vqa.json", FIX / "vrsbench/Images_val")
    assert [(r.id, r.question, r.answers, r.qtype) for r in records] == [
        ("11", "What is the color of the tennis court?", ["Green"], "object color"),
        ("12", "Are there any planes?", ["No"], "object existence"),
    ]


def test_llava_conversations_become_openai_messages():
    records, _ = load_llava(FIX / "llava/geochat_instruct.json", FIX / "llava/images")
    g1, g2, g3, g4 = records
    g1_image, g2_image = _abs("llava/images/g1.png"), _abs("llava/images/g2.png")
    assert g1.messages == [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": g1_image},
                {"type": "text", "text": "[refer] give me the location of <p>the ship</p>"},
            ],
        },
        {"role": "assistant", "content": "{<10><20><30><40>|<0>}"},
    ]
    # no <image> placeholder: the image goes first in the first user turn only
    assert g2.messages[0]["content"][0] == {"type": "image", "image": g2_image}
    assert g2.messages[2] == {
        "role": "user",
        "content": [{"type": "text", "text": "[vqa] Is there a  buliding ?"}],
    }
    assert g3.messages[0] == {
        "role": "user",
        "content": [{"type": "text", "text": "What is remote sensing?"}],
    }
    assert [p.get("text", "<img>") for p in g4.messages[0]["content"]] == ["[odd] ", "<img>", "What is this?"]


def test_llava_errors(tmp_path):
    (tmp_path / "a.png").write_bytes((FIX / "llava/images/g1.png").read_bytes())
    bad = [{"id": "x", "image": "a.png", "conversations": [{"from": "human", "value": "<image><image> hi"}]}]
    (tmp_path / "c.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"c\.json item 0: 2 <image> placeholders but 1 image"):
        load_llava(tmp_path / "c.json", tmp_path)
    bad[0]["conversations"] = [{"from": "gpt", "value": "hi"}, {"from": "human", "value": "<image>"}]
    (tmp_path / "c.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"conversations\[1\] \(human\)|last turn must be the assistant"):
        load_llava(tmp_path / "c.json", tmp_path)


def test_messages_rows_feed_vqa_and_conversation_subsets():
    conv, _ = load_source(
        {"format": "messages", "annotations": str(FIX / "small/messages.jsonl")}, "conversation"
    )
    assert [type(r) for r in conv] == [ConversationRecord, ConversationRecord]
    qa, stats = load_source(
        {"format": "messages", "annotations": str(FIX / "small/messages.jsonl"), "tasks": ["vqa"]}, "vqa"
    )
    assert qa == [
        QARecord(
            "tiny",
            [_abs("small/tiny10.png")],
            "Is it water?",
            ["yes"],
            "vqa",
            source="messages",
            meta={"task": "vqa"},
        )
    ]
    assert stats.skipped == {"task_filtered": 1}
    with pytest.raises(ValueError, match="cannot feed a 'detection' subset"):
        load_source({"format": "messages", "annotations": str(FIX / "small/messages.jsonl")}, "detection")


def test_multi_turn_rows_cannot_feed_a_vqa_subset():
    with pytest.raises(ValueError, match=r"row 'g2' is not one question and one answer"):
        load_source(
            {
                "format": "llava",
                "annotations": str(FIX / "llava/geochat_instruct.json"),
                "images": str(FIX / "llava/images"),
            },
            "vqa",
        )


def test_image_folder_classification():
    records, _ = load_image_folder(FIX / "classification")
    assert [(r.id, r.answers, r.options) for r in records] == [
        ("airport/a1", ["airport"], ["airport", "dense residential", "forest"]),
        ("dense_residential/d1", ["dense residential"], ["airport", "dense residential", "forest"]),
        ("forest/f1", ["forest"], ["airport", "dense residential", "forest"]),
        ("forest/f2", ["forest"], ["airport", "dense residential", "forest"]),
    ]


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from rszoo.data.synth import write_dataset

    root = tmp_path_factory.mktemp("engine_synth")
    write_dataset(root, num_scenes=3, seed=5, size=64)
    return root


def test_synth_scene_classes_are_the_largest_block_land_cover(synth_root):
    records, _ = load_synth_scenes(synth_root / "scenes.jsonl")
    expected = []
    for line in (synth_root / "scenes.jsonl").read_text().splitlines():
        scene = json.loads(line)
        area: dict[str, float] = {}
        for region in scene["regions"]:
            if region.get("parent") is None:  # shapely areas, independent of the loader's shoelace
                area[region["kind"]] = area.get(region["kind"], 0.0) + Polygon(region["polygon"]).area
        expected.append(max(area, key=area.get).replace("-", " "))
    assert [r.answers[0] for r in records] == expected
    assert records[0].options == sorted(set(expected)) and records[0].sizes == [(64, 64)]
    assert records[0].images == [str((synth_root / "images/000000.png").resolve())]


def test_synth_outputs_load_through_dota_coco_grounding_and_messages(synth_root):
    dota, _ = load_dota(synth_root / "dota/labelTxt", synth_root / "images")
    coco, _ = load_coco(synth_root / "coco.json", synth_root, quad_from="obb")
    assert [len(r.objects) for r in dota] == [len(r.objects) for r in coco]
    for d, c in zip(dota, coco):  # DOTA lines are the COCO obb rounded to 0.01 px
        for a, b in zip(d.objects, c.objects):
            assert a.label == b.label and a.quad == pytest.approx(b.quad, abs=0.006)
    grounding, _ = load_grounding_jsonl(synth_root / "grounding.jsonl")
    lines = (synth_root / "grounding.jsonl").read_text().splitlines()
    assert len(grounding) == len(lines) and grounding[0].expression == json.loads(lines[0])["expression"]
    captions, _ = load_source(
        {"format": "messages", "annotations": str(synth_root / "messages.jsonl"), "tasks": ["caption"]},
        "caption",
    )
    assert len(captions) == 3 and all(len(r.answers) == 1 and r.images for r in captions)


def test_records_round_trip_through_dicts():
    dota, _ = load_dota(FIX / "dota/labelTxt", FIX / "dota/images")
    refs, _ = load_refgeo(FIX / "refgeo/metainfo/refgeo_train.jsonl", FIX / "refgeo")
    zoom, _ = load_zoom(FIX / "lrsvqa_zoom/zoom_train.jsonl", FIX / "lrsvqa_zoom/images")
    conv, _ = load_llava(FIX / "llava/geochat_instruct.json", FIX / "llava/images")
    for record in [*dota, *refs, *zoom, *conv]:
        assert record_from_dict(json.loads(json.dumps(record_to_dict(record)))) == record
    with pytest.raises(ValueError, match="unknown record kind"):
        record_from_dict({"kind": "video"})
