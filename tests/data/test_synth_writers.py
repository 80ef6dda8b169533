"""Data set writers: identical bytes for a seed, loadable COCO/DOTA, messages and manifests that match the files."""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rszoo.data.records import GroundingRecord, iter_jsonl
from rszoo.data.synth import CATEGORIES, Change, Scene, write_dataset, write_large, write_pairs


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synth")
    manifest = write_dataset(out, num_scenes=8, seed=3, size=128)
    return out, manifest


def test_same_seed_gives_identical_files(dataset: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = dataset
    write_dataset(tmp_path, num_scenes=8, seed=3, size=128)
    first, second = _hashes(out), _hashes(tmp_path)
    assert first == second
    assert any(name.endswith(".png") for name in first) and "coco.json" in first
    other = tmp_path / "other"
    write_dataset(other, num_scenes=8, seed=4, size=128)
    assert _hashes(other)["images/000000.png"] != first["images/000000.png"]


def test_manifest_counts_equal_file_contents(dataset: tuple[Path, dict]) -> None:
    out, manifest = dataset
    assert json.loads((out / "manifest.json").read_text()) == manifest
    files = manifest["files"]
    assert files["images"] == len(list((out / "images").glob("*.png"))) == manifest["num_scenes"]
    scenes = [Scene.from_dict(obj) for _, obj in iter_jsonl(out / "scenes.jsonl")]
    messages = [obj for _, obj in iter_jsonl(out / "messages.jsonl")]
    grounding = [obj for _, obj in iter_jsonl(out / "grounding.jsonl")]
    assert files["scenes.jsonl"] == len(scenes)
    assert files["messages.jsonl"] == len(messages)
    assert files["grounding.jsonl"] == len(grounding)
    assert manifest["messages_by_task"] == dict(Counter(m["task"] for m in messages))
    assert manifest["vqa_by_type"] == dict(Counter(m["vqa_type"] for m in messages if m["task"] == "vqa"))
    coco = json.loads((out / "coco.json").read_text())
    assert files["coco.json"] == {
        "images": len(coco["images"]),
        "annotations": len(coco["annotations"]),
        "categories": len(coco["categories"]),
    }
    label_files = list((out / "dota" / "labelTxt").glob("*.txt"))
    assert files["dota/labelTxt"] == len(label_files)
    assert files["dota_objects"] == sum(len(p.read_text().splitlines()) for p in label_files)
    by_cat = Counter(o.category for s in scenes for o in s.objects)
    assert manifest["objects_by_category"] == dict(by_cat) and manifest["objects"] == sum(by_cat.values())
    assert manifest["generator"] and manifest["seed"] == 3 and manifest["size"] == 128


def test_coco_loads_with_pycocotools(dataset: tuple[Path, dict]) -> None:
    from pycocotools.coco import COCO

    out, _ = dataset
    coco = COCO(str(out / "coco.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CATEGORIES)
    scenes = {obj["id"]: Scene.from_dict(obj) for _, obj in iter_jsonl(out / "scenes.jsonl")}
    anns = coco.loadAnns(coco.getAnnIds())
    assert anns
    for ann in anns[:60]:
        image = coco.loadImgs(ann["image_id"])[0]
        assert (out / image["file_name"]).is_file()
        obj = scenes[image["scene_id"]].object_by_id(ann["object_id"])
        x, y, w, h = ann["bbox"]
        assert [x, y, x + w, y + h] == pytest.approx(obj.hbox, abs=0.011)
        assert ann["iscrowd"] == 0 and ann["category_id"] == CATEGORIES.index(obj.category) + 1
        mask = coco.annToMask(ann)
        assert mask.shape == (image["height"], image["width"])
        assert (
            abs(int(mask.sum()) - ann["area"]) <= 2 * (w + h) + 4
        )  # pycocotools' rasteriser vs polygon area


def test_dota_lines_parse(dataset: tuple[Path, dict]) -> None:
    out, _ = dataset
    scenes = [Scene.from_dict(obj) for _, obj in iter_jsonl(out / "scenes.jsonl")]
    for scene in scenes:
        lines = (out / "dota" / "labelTxt" / f"{scene.id}.txt").read_text().splitlines()
        assert len(lines) == len(scene.objects)
        for line, obj in zip(lines, scene.objects):
            parts = line.split(" ")
            assert len(parts) == 10
            coords = [float(v) for v in parts[:8]]
            assert np.allclose(coords, [v for p in obj.poly for v in p], atol=0.006)
            assert parts[8] == obj.category and parts[9] in ("0", "1")
        assert (out / "images" / f"{scene.id}.png").is_file()  # DOTA images reuse images/


def test_messages_follow_the_records_format(dataset: tuple[Path, dict]) -> None:
    out, _ = dataset
    records = {
        obj["id"]: GroundingRecord.from_dict(obj, f"grounding.jsonl:{n}")
        for n, obj in iter_jsonl(out / "grounding.jsonl")
    }
    tasks = Counter()
    for _, row in iter_jsonl(out / "messages.jsonl"):
        tasks[row["task"]] += 1
        user, assistant = row["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        image, text = user["content"]
        assert image["type"] == "image" and (out / image["image"]).is_file()
        assert text["type"] == "text" and text["text"]
        assert isinstance(assistant["content"], str) and assistant["content"]
        if row["task"] == "grounding":
            answer = json.loads(assistant["content"])
            record = records[row["id"]]
            assert answer["bbox_2d"] == [int(np.floor(v + 0.5)) for v in record.box]
            assert all(isinstance(v, int) for v in answer["bbox_2d"])
            assert answer["label"] == record.category
            assert record.expression in text["text"]
        if row["task"] == "detection":
            boxes = json.loads(assistant["content"])
            assert boxes and all(len(b["bbox_2d"]) == 4 for b in boxes)
    assert set(tasks) == {"caption", "vqa", "grounding", "detection"}
    for record in records.values():
        img = Image.open(out / record.image)
        assert img.size == (record.width, record.height)
        assert record.facts["target"]["id"] >= 0 and record.source == "synth"


def test_task_subset_and_bad_task(tmp_path: Path) -> None:
    manifest = write_dataset(tmp_path, num_scenes=2, seed=0, size=64, tasks=("caption",))
    assert manifest["messages_by_task"] == {"caption": 2}
    assert not (tmp_path / "coco.json").exists() and not (tmp_path / "grounding.jsonl").exists()
    with pytest.raises(ValueError, match="unknown tasks"):
        write_dataset(tmp_path, num_scenes=1, tasks=("segmentation",))


def test_pairs_writer(tmp_path: Path) -> None:
    manifest = write_pairs(tmp_path, num_pairs=3, seed=1, size=96, cloud_cover=(0.0, 0.3))
    pairs = [obj for _, obj in iter_jsonl(tmp_path / "pairs.jsonl")]
    rows = [obj for _, obj in iter_jsonl(tmp_path / "changes.jsonl")]
    assert len(pairs) == len(rows) == 3 == manifest["num_pairs"]
    kinds = Counter()
    for pair, row in zip(pairs, rows):
        assert pair["id"] == row["id"]
        t0, t1 = Scene.from_dict(pair["t0"]), Scene.from_dict(pair["t1"])
        assert t1.acquisition.cloud_cover == 0.3  # type: ignore[union-attr]
        changes = [Change.from_dict(c) for c in row["changes"]]
        kinds.update(c.kind for c in changes)
        label = np.asarray(Image.open(tmp_path / pair["label"]))
        assert set(np.unique(label)) <= {0, 255}
        assert (label.any()) == bool(changes)
        for key in ("image_a", "image_b"):
            assert Image.open(tmp_path / pair[key]).size == (t0.width, t0.height)
    assert manifest["changes_by_kind"] == dict(sorted(kinds.items()))


def test_large_writer_with_geotiff(tmp_path: Path) -> None:
    import rasterio

    manifest = write_large(tmp_path, seed=2, width=640, height=576, geotiff=True)
    png = np.asarray(Image.open(tmp_path / "large.png"))
    with rasterio.open(tmp_path / "large.tif") as src:
        assert src.crs.to_epsg() // 100 in (326, 327)  # a UTM zone
        assert src.res == pytest.approx((manifest["gsd"], manifest["gsd"]))
        tif = np.moveaxis(src.read(), 0, 2)
    assert np.array_equal(tif, png)
    scene = Scene.from_dict(json.loads((tmp_path / "scene.json").read_text()))
    assert manifest["objects"] == len(scene.objects) == manifest["files"]["dota_objects"]


def test_cli_protocol(tmp_path: Path) -> None:
    from rszoo.cli import synth as cli

    assert cli.NAME == "synth" and cli.HELP
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args([str(tmp_path / "out"), "--num-scenes", "2", "--size", "64", "--no-progress"])
    assert cli.run(args) == 0
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["num_scenes"] == 2
    bad = parser.parse_args([str(tmp_path / "bad"), "--num-scenes", "0", "--no-progress"])
    assert cli.run(bad) == 2
    bad = parser.parse_args([str(tmp_path / "bad"), "--geotiff", "--no-progress"])
    assert cli.run(bad) == 2


def test_bytes_do_not_depend_on_the_process(tmp_path: Path) -> None:
    """Same seed in two fresh interpreters with different string-hash salts: same files."""
    import os
    import subprocess
    import sys

    code = "import sys; from rszoo.data.synth import write_dataset; write_dataset(sys.argv[1], num_scenes=3, seed=9, size=96)"
    for k, salt in enumerate(("1", "2")):
        env = {**os.environ, "PYTHONHASHSEED": salt}
        subprocess.run([sys.executable, "-c", code, str(tmp_path / str(k))], check=True, env=env)
    assert _hashes(tmp_path / "0") == _hashes(tmp_path / "1")
