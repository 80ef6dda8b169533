"""Grounding loaders on fixtures written in the official formats (tests/fixtures/grounding/make_fixtures.py)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rszoo.data.grounding import (
    REFS_TO_JSON_COMMAND,
    load_dior_rsvg,
    load_grounding_jsonl,
    load_rrsisd,
    load_vrsbench_vg,
    parse_vrsbench_box,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "grounding"


def official_dior_rsvg(root: Path, split: str, walk: str) -> list[tuple[str, list[float], str]]:
    """RSVGDataset.__init__ of ZhanYang-nwpu/RSVG-pytorch (data_loader.py): global object index semantics."""
    index = [int(line.strip("\n")) for line in (root / f"{split}.txt").read_text().splitlines(keepends=True)]
    if walk == "os_walk":
        files = [
            os.path.join(d, f)
            for d, _, names in os.walk(root / "Annotations")
            for f in names
            if f.endswith(".xml")
        ]
    else:
        files = sorted(str(p) for p in (root / "Annotations").glob("*.xml"))
    out, count = [], 0
    for anno_path in files:
        xml = ET.parse(anno_path).getroot()
        for member in xml.findall("object"):
            if count in index:
                image = str(root / "JPEGImages" / xml.find("./filename").text)
                box = [float(member[2][k].text) for k in range(4)]
                out.append((image, box, member[3].text))
            count += 1
    return out


@pytest.mark.parametrize("split", ["train", "val", "test"])
@pytest.mark.parametrize("order", ["sorted", "os_walk"])
def test_dior_rsvg_matches_the_official_index_semantics(split: str, order: str) -> None:
    root = FIXTURES / "dior_rsvg"
    with pytest.warns(UserWarning, match="zero-area") if split == "train" else _no_warning():
        records, report = load_dior_rsvg(root, split, order=order)
    reference = official_dior_rsvg(root.resolve(), split, order)
    kept = [r for r in reference if r[1][2] > r[1][0] and r[1][3] > r[1][1]]
    assert [(r.image, r.box, r.expression) for r in records] == kept
    assert report.loaded == len(records) and report.skipped_zero_area == len(reference) - len(kept)


def test_dior_rsvg_record_fields() -> None:
    with pytest.warns(
        UserWarning, match=r"dior_rsvg/train: skipped 1 zero-area GT boxes \(dior_rsvg-train-00003\)"
    ):
        records, report = load_dior_rsvg(FIXTURES / "dior_rsvg", "train")
    assert [r.id for r in records] == [
        "dior_rsvg-train-00000",
        "dior_rsvg-train-00002",
        "dior_rsvg-train-00004",
    ]
    harbor, tank = records[1], records[2]
    assert (
        harbor.category == "harbor"
        and harbor.box == [30.0, 40.0, 90.0, 90.0]
        and (harbor.width, harbor.height) == (96, 96)
    )
    assert tank.expression == "The storage tank at the top" and (tank.width, tank.height) == (128, 96)
    assert Path(tank.image).is_absolute() and Path(tank.image).name == "00003.jpg"
    assert report.zero_area_ids == ["dior_rsvg-train-00003"]
    assert "3 loaded, 1 zero-area skipped" in report.summary()


def test_dior_rsvg_errors_and_missing_images(tmp_path: Path) -> None:
    root = tmp_path / "dior"
    shutil.copytree(FIXTURES / "dior_rsvg", root)
    (root / "JPEGImages" / "00004.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"dior_rsvg-test-00005.*00004\.jpg"):
        load_dior_rsvg(root, "test")
    records, report = load_dior_rsvg(root, "test", skip_missing_images=True)
    assert (
        records == []
        and report.skipped_missing_image == 1
        and report.missing_image_ids == ["dior_rsvg-test-00005"]
    )
    assert len(load_dior_rsvg(root, "test", check_images=False)[0]) == 1
    (root / "bad.txt").write_text("0\n99\n")
    with pytest.raises(ValueError, match="beyond the 6 objects"):
        load_dior_rsvg(root, "bad")
    (root / "worse.txt").write_text("0\nx\n")
    with pytest.raises(ValueError, match=r"worse.txt:2: expected an integer"):
        load_dior_rsvg(root, "worse")
    with pytest.raises(FileNotFoundError, match="split file"):
        load_dior_rsvg(root, "nope")
    with pytest.raises(ValueError, match="order"):
        load_dior_rsvg(root, "val", order="random")  # type: ignore[arg-type]


def test_vrsbench_boxes_are_percent_of_the_image() -> None:
    path = FIXTURES / "vrsbench" / "VRSBench_EVAL_referring.json"
    with pytest.warns(UserWarning, match="vrsbench-2"):
        records, report = load_vrsbench_vg(path, FIXTURES / "vrsbench" / "Images_val")
    assert report.skipped_zero_area == 1 and report.loaded == 3
    assert [r.id for r in records] == ["vrsbench-0", "vrsbench-1", "vrsbench-3"]
    # "{<10><20><30><40>}" -> v / 100 * 512
    assert records[0].box == pytest.approx([51.2, 102.4, 153.6, 204.8])
    assert records[2].box == pytest.approx([256.0, 256.0, 409.6, 358.4])
    assert [r.unique for r in records] == [True, False, False] and records[0].category == "vehicle"
    with pytest.warns(UserWarning):
        from_header, _ = load_vrsbench_vg(path, FIXTURES / "vrsbench" / "Images_val", image_size=None)
    assert [r.box for r in from_header] == [r.box for r in records]  # the PNGs are 512 x 512


def test_vrsbench_box_parser() -> None:
    assert parse_vrsbench_box("{<0><0><100><100>}", (800, 600)) == [0.0, 0.0, 800.0, 600.0]
    assert parse_vrsbench_box(" { <1> <2> <3> <4> } ") == pytest.approx([5.12, 10.24, 15.36, 20.48])
    for bad in ("<1><2><3><4>", "{<1><2><3>}", "[1, 2, 3, 4]", None):
        with pytest.raises(ValueError, match="VRSBench box"):
            parse_vrsbench_box(bad)  # type: ignore[arg-type]


def test_rrsisd_xywh_to_xyxy_and_one_record_per_sentence() -> None:
    root = FIXTURES / "rrsisd"
    train, report = load_rrsisd(root, "train")
    assert [r.id for r in train] == ["rrsisd-train-0-0", "rrsisd-train-0-1"] and report.loaded == 2
    assert train[0].box == [10.0, 20.0, 40.0, 35.0]  # bbox [10, 20, 30, 15]
    assert train[0].expression == "The airplane at the top" and train[0].category == "airplane"
    assert Path(train[0].image).name == "00001.jpg" and Path(train[0].image).is_file()
    test, _ = load_rrsisd(root, "test", sentence_field="sent")
    assert test[0].box == [5.0, 5.0, 45.0, 35.0] and (test[0].width, test[0].height) == (80, 64)
    assert test[0].expression == "the large airplane"
    assert load_rrsisd(root, "val")[0][0].category == "vehicle"


def test_rrsisd_refuses_pickles(tmp_path: Path) -> None:
    root = tmp_path / "rrsisd"
    shutil.copytree(FIXTURES / "rrsisd", root)
    (root / "rrsisd" / "refs(unc).p").write_bytes(b"not even opened")
    with pytest.raises(ValueError, match="does not unpickle") as info:
        load_rrsisd(root, "train", refs_file="rrsisd/refs(unc).p")
    assert REFS_TO_JSON_COMMAND in str(info.value)
    (root / "rrsisd" / "renamed.json").write_bytes(pickle.dumps([{"ref_id": 0}], protocol=2))
    with pytest.raises(ValueError, match="is a pickle, not JSON"):
        load_rrsisd(root, "train", refs_file="rrsisd/renamed.json")
    (root / "rrsisd" / "refs_unc.json").write_text(
        '[{"ref_id": 5, "ann_id": 999, "split": "train", "sentences": []}]'
    )
    with pytest.raises(ValueError, match="ann_id 999"):
        load_rrsisd(root, "train")


def test_grounding_jsonl(tmp_path: Path) -> None:
    path = FIXTURES / "jsonl" / "grounding.jsonl"
    with pytest.warns(UserWarning, match="synth-000001-g02"):
        records, report = load_grounding_jsonl(path, check_images=True)
    assert [r.id for r in records] == ["synth-000001-g00", "synth-000001-g01", "synth-000001-g03"]
    assert report.skipped_zero_area == 1
    assert Path(records[0].image).is_absolute() and Path(records[0].image).is_file()
    assert records[0].facts["relation"] == "left of"
    with pytest.warns(UserWarning):
        raw, _ = load_grounding_jsonl(path, resolve_images=False)
    assert raw[0].image == "images/000001.png"
    lines = path.read_text().splitlines()
    duplicated = tmp_path / "dup.jsonl"
    duplicated.write_text("\n".join([lines[0], lines[1], lines[0]]) + "\n")
    with pytest.raises(ValueError, match=r"dup.jsonl:3: id 'synth-000001-g00' already used on line 1"):
        load_grounding_jsonl(duplicated)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(lines[0] + "\n{not json\n")
    with pytest.raises(ValueError, match=r"broken.jsonl:2"):
        load_grounding_jsonl(broken)


def test_fixture_generator_reproduces_the_committed_files(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_grounding_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    written = module.write_fixtures(tmp_path)
    assert len(written) == 21
    for path in written:
        rel = path.relative_to(tmp_path)
        committed = FIXTURES / rel
        assert committed.is_file(), rel
        assert (
            hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(committed.read_bytes()).digest()
        ), rel


class _no_warning:
    """Context manager asserting that no UserWarning is raised."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("error", UserWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)
