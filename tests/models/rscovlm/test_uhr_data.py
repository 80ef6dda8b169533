"""LRS-VQA-Zoom-style synthetic data: answers recounted from the scene graph, shapes checked against the outline
geometry (shapely), MCQs, the LRS-VQA / visual_cot / messages files vs a re-implementation of RSCoVLM's reader,
and byte-identical output per seed."""

from __future__ import annotations

import copy
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rszoo.data.synth import generate_large_scene
from rszoo.data.synth.graph import Scene, SceneObject
from rszoo.models.rscovlm.uhr_data import (
    SHAPE_VOCABULARY,
    SHORT_ANSWER,
    coarse_region,
    grid_regions,
    object_shape,
    write_lrs_vqa_zoom,
    zoom_questions,
)

CELLS = [
    ["top left", "top", "top right"],
    ["left", "center", "right"],
    ["bottom left", "bottom", "bottom right"],
]
SIZES = [(2048, 2048), (2048, 1536)]


def cell_of(obj: SceneObject, width: int, height: int) -> str:
    """The 3x3 cell of an object's centre, with numpy edges (independent of rszoo's grid_cell)."""
    col = int(np.searchsorted([width / 3, 2 * width / 3], obj.center[0], side="right"))
    row = int(np.searchsorted([height / 3, 2 * height / 3], obj.center[1], side="right"))
    return CELLS[row][col]


def label(category: str) -> str:
    return category.replace("-", " ").replace("soccer ball field", "soccer field")


def plural(category: str) -> str:
    return label(category) + "s"


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same data set written twice (determinism) -- the first copy is used by the other tests."""
    roots = []
    for name in ("a", "b"):
        root = tmp_path_factory.mktemp(name)
        write_lrs_vqa_zoom(
            root, num_scenes=2, seed=11, sizes=SIZES, eval_scenes=1, mcq_fraction=0.6, per_type=3
        )
        roots.append(root)
    return roots[0], roots[1]


def _scenes(root: Path) -> dict[str, Scene]:
    manifest = json.loads((root / "manifest.json").read_text())
    return {
        s["folder"]: Scene.from_dict(json.loads((root / s["folder"] / "scene.json").read_text()))
        for s in manifest["scenes"]
    }


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_question(scene: Scene, q: dict[str, Any]) -> None:
    """Recompute the answer of an open question from the scene's objects."""
    objs, width, height = scene.objects, scene.width, scene.height
    answer = q["answer_text"] if q["format"] == "mcq" else q["answer"]
    facts = q["facts"]
    assert q["question"].endswith(SHORT_ANSWER)
    if q["type"] == "count":
        cat = facts["category"]
        if facts["cell"] is None:
            assert q["crop_hbox"] is None
            assert answer == str(sum(o.category == cat for o in objs))
            assert f"How many {plural(cat)} are there in the image?" in q["question"]
        else:
            counted = [o for o in objs if o.category == cat and cell_of(o, width, height) == facts["cell"]]
            assert answer == str(len(counted)) and len(counted) >= 1
            assert sum(o.category == cat for o in objs) >= 30  # region questions are for dense categories
            x1, y1, x2, y2 = q["crop_hbox"]
            assert all(x1 <= o.center[0] <= x2 and y1 <= o.center[1] <= y2 for o in counted)
            row = next(r for r, names in enumerate(CELLS) if facts["cell"] in names)
            col = CELLS[row].index(facts["cell"])
            # the cell's edges, rounded outward to whole pixels
            assert x1 <= col * width / 3 < x1 + 1 and x2 - 1 < (col + 1) * width / 3 <= x2
            assert y1 <= row * height / 3 < y1 + 1 and y2 - 1 < (row + 1) * height / 3 <= y2
    elif q["type"] == "comparison":
        a, b = facts["categories"]
        na, nb = sum(o.category == a for o in objs), sum(o.category == b for o in objs)
        assert na != nb and q["crop_hbox"] is None
        if facts["form"] == "yes-no":
            assert q["question"].startswith(f"Are there more {plural(a)} than {plural(b)}")
            assert answer == ("yes" if na > nb else "no")
        else:
            assert answer == plural(a if na > nb else b)
    else:
        target = next(o for o in objs if o.id == facts["target_id"])
        ref = facts["reference"]
        # the phrase's attributes single out exactly the target
        matching = [
            o
            for o in objs
            if (ref["category"] is None or o.category == ref["category"])
            and (ref["colour"] is None or o.colour == ref["colour"])
            and (ref["cell"] is None or cell_of(o, width, height) == ref["cell"])
        ]
        assert [o.id for o in matching] == [target.id]
        if ref["category"] is not None:
            assert f"the {label(ref['category'])}" in q["question"]
        if q["type"] == "colour":
            assert answer == target.colour and ref["colour"] is None
        elif q["type"] == "shape":
            assert answer == object_shape(target)
        else:
            assert answer == label(target.category) and ref["category"] is None
        x1, y1, x2, y2 = q["crop_hbox"]
        assert x1 >= 0 and y1 >= 0 and x2 <= width and y2 <= height
        assert x1 <= target.hbox[0] and y1 <= target.hbox[1] and target.hbox[2] <= x2 and target.hbox[3] <= y2
        assert x2 - x1 >= min(512, width) and y2 - y1 >= min(512, height)


def check_mcq(q: dict[str, Any]) -> None:
    options = [c[4:] for c in q["choices"]]
    assert [c[:4] for c in q["choices"]] == ["(A) ", "(B) ", "(C) ", "(D) "]
    assert len(set(options)) == 4 and q["answer"] in "ABCD"
    assert options["ABCD".index(q["answer"])] == q["answer_text"]
    assert q["answer_text"] not in ("yes", "no")
    if q["type"] == "shape":
        assert set(options) <= set(SHAPE_VOCABULARY)
    if q["type"] == "count":
        assert all(o.isdigit() for o in options)


def test_answers_recount_from_the_scene_graph(written: tuple[Path, Path]) -> None:
    root, _ = written
    seen: Counter[str] = Counter()
    letters: Counter[str] = Counter()
    for i, scene in enumerate(_scenes(root).values()):
        for q in zoom_questions(scene, seed=11 + i, per_type=3, mcq_fraction=0.6):
            check_question(scene, q)
            if q["format"] == "mcq":
                check_mcq(q)
                letters[q["answer"]] += 1
            seen[f"{q['type']}-{q['format']}"] += 1
    assert {"count-open", "comparison-open", "colour-open", "shape-open", "category-open"} <= set(seen)
    assert sum(v for k, v in seen.items() if k.endswith("mcq")) >= 5
    assert len(letters) >= 3  # options are shuffled: the answer is not always in one position


def test_an_8192_scene(tmp_path: Path) -> None:
    scene = generate_large_scene(4, 8192, 4096, density=0.5)
    questions = zoom_questions(scene, per_type=4, mcq_fraction=0.5)
    for q in questions:
        check_question(scene, q)
        if q["format"] == "mcq":
            check_mcq(q)
    region_counts = [q for q in questions if q["type"] == "count" and q["crop_hbox"] is not None]
    assert region_counts  # thousands of objects: dense categories are counted per region
    assert zoom_questions(scene, per_type=4, mcq_fraction=0.5) == questions  # same seed, same questions
    assert zoom_questions(scene, seed=99, per_type=4, mcq_fraction=0.5) != questions


def test_shape_words_match_the_outline_geometry(written: tuple[Path, Path]) -> None:
    from shapely.geometry import Polygon

    checked: Counter[str] = Counter()
    for scene in _scenes(written[0]).values():
        for obj in scene.objects:
            shape = object_shape(obj)
            if shape is None:
                continue
            poly = Polygon(obj.shape)
            fill = poly.area / poly.minimum_rotated_rectangle.area
            roundness = 4 * math.pi * poly.area / poly.length**2
            if shape == "circular":
                assert roundness > 0.95
            elif shape == "rectangular":
                assert len(obj.shape) == 4 and fill > 0.99
            elif shape == "L-shaped":
                assert len(obj.shape) == 6 and 0.4 < fill < 0.9 and not poly.equals(poly.convex_hull)
            else:
                assert shape == "cross-shaped" and fill < 0.7 and not poly.equals(poly.convex_hull)
            checked[shape] += 1
    assert {"circular", "rectangular", "L-shaped"} <= set(checked)


def test_grid_regions_and_coarse_regions() -> None:
    regions = grid_regions(2048, 1536)
    assert regions["top left"] == [0, 0, 683, 512] and regions["bottom right"] == [1365, 1024, 2048, 1536]
    assert regions["center"] == [682, 512, 1366, 1024]
    assert coarse_region([2040, 1530, 2047, 1535], 2048, 1536, pad=8, min_side=512) == [
        1536,
        1024,
        2048,
        1536,
    ]
    assert coarse_region([0, 0, 900, 20], 1000, 300, pad=50, min_side=512) == [0, 0, 950, 300]


# ------------------------------------------------------------------------------------------------------- files


def ref_question(meta: dict[str, Any]) -> tuple[str, str]:
    """RSCoVLM visual_cot_dataset.get_messages: the question and answer of a row (open or MCQ fields)."""
    if "question" in meta and "answer" in meta:
        return meta["question"], meta["answer"]
    choice_prompt = " The choices are listed below: \n"
    for choice in meta["Answer choices"]:
        choice_prompt += choice + "\n"
    question = (
        meta["Text"].rstrip("\n Answer the question using a single word or phrase.")  # noqa: B005
        + choice_prompt
        + "Select the best answer to the above multiple-choice question based on the image. Respond with only the "
        "letter (A, B, C, D, or E) of the correct option." + "\nThe best answer is:"
    )
    return question, meta["Ground truth"]


def test_eval_file_is_lrs_vqa_format_and_scores(written: tuple[Path, Path]) -> None:
    from rszoo.metrics.vqa import lrs_vqa

    root = written[0]
    rows = _rows(root / "lrs_vqa_zoom_eval.jsonl")
    assert rows and all(
        set(r) == {"question_id", "image", "text", "ground_truth", "category", "type"} for r in rows
    )
    assert all(
        r["question_id"].startswith("SYN_0001_") and r["image"] == "scenes/0001/large.tif" for r in rows
    )
    assert len({r["question_id"] for r in rows}) == len(rows)
    perfect = lrs_vqa([{**r, "prediction": r["ground_truth"] + "."} for r in rows])
    assert perfect["OA"] == 1.0 and list(perfect["per_source"]) == ["SYN"]
    wrong = lrs_vqa([{**r, "prediction": "zebra"} for r in rows])
    assert wrong["OA"] == 0.0
    mcq = [r for r in rows if r["type"].endswith("-mcq")]
    assert mcq and all(r["ground_truth"] in "ABCD" and r["text"].endswith("The best answer is:") for r in mcq)


def test_train_rows_and_messages_match_the_reference_reader(written: tuple[Path, Path]) -> None:
    from rszoo.data.resize import smart_resize
    from rszoo.models.rscovlm.zoom import ZOOM_INSTRUCTION, ZOOM_TOOL_SYSTEM_PROMPT, format_tool_call
    from rszoo.training.data import load_messages_jsonl

    root = written[0]
    train = _rows(root / "lrs_vqa_zoom_train.jsonl")
    messages = _rows(root / "messages.jsonl")
    assert [r["question_id"] for r in train] == [m["id"] for m in messages]
    assert all(r["question_id"].startswith("SYN_0000_") for r in train)  # scene 1 is the eval split
    chains = 0
    for row, msg in zip(train, messages):
        meta = copy.deepcopy(row)
        question, answer = ref_question(meta)
        width, height = meta["image_ori_width"], meta["image_ori_height"]
        assert (width, height) in SIZES
        rh, rw = smart_resize(height, width, 28, 224 * 224, 1008 * 1008)
        crop = meta["bbox_info"]["crop_hbox"]
        turns = msg["messages"]
        assert turns[-1] == {"role": "assistant", "content": answer}
        if len(crop) == 1:
            chains += 1
            x1, y1, x2, y2 = crop[0]
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
            assert turns[0] == {"role": "system", "content": ZOOM_TOOL_SYSTEM_PROMPT}
            assert turns[1]["content"][1]["text"] == f"{question}\n{ZOOM_INSTRUCTION}"
            scaled = [
                int(x1 * rw / width),
                int(y1 * rh / height),
                int(x2 * rw / width),
                int(y2 * rh / height),
            ]
            assert turns[2]["content"] == format_tool_call(scaled)
            assert turns[3]["content"][0]["crop"] == crop[0]
        else:
            assert crop == [] and len(turns) == 2 and turns[0]["content"][1]["text"] == question
        assert turns[1 if len(crop) == 1 else 0]["content"][0] == {
            "type": "image",
            "image": row["image"],
            "resized_width": rw,
            "resized_height": rh,
        }
    assert chains >= 5
    loaded = load_messages_jsonl(root / "messages.jsonl")  # the SFT loader accepts the rows (images exist)
    assert len(loaded) == len(messages)


def test_same_seed_same_bytes(written: tuple[Path, Path]) -> None:
    a, b = written
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert Path("lrs_vqa_zoom_eval.jsonl") in files and Path("scenes/0000/large.tif") in files
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_scenes": 1, "eval_scenes": 2}, "eval_scenes"),
        ({"sizes": [(8, 8)]}, "sizes"),
        ({"sizes": []}, "sizes"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        write_lrs_vqa_zoom(tmp_path, **kwargs)


def test_bad_question_options() -> None:
    scene = generate_large_scene(1, 512, 512)
    with pytest.raises(ValueError, match="mcq_fraction"):
        zoom_questions(scene, mcq_fraction=1.5)
    with pytest.raises(ValueError, match="dense_threshold"):
        zoom_questions(scene, dense_threshold=0)
