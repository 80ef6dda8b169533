"""Text from scene graphs: referring expressions single out one object; VQA answers, relations and captions are
checked against an independent re-implementation of the documented rules."""

from __future__ import annotations

from collections import Counter

import pytest
from shapely.geometry import LineString, Polygon, box

from rszoo.data.synth import (
    CATEGORIES,
    CATEGORY_SPECS,
    Scene,
    SceneObject,
    captions,
    generate_scene,
    referring_expressions,
    relations,
    scene_text,
    vqa_pairs,
)

LANDUSES = ["residential", "industrial", "airport", "river", "grassland", None]


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    return [generate_scene(s, landuse=LANDUSES[s % len(LANDUSES)]) for s in range(36)]


# -- an independent reading of the rules in rszoo.data.synth.relations ---------------------------------------------
CELLS = [
    ["top left", "top", "top right"],
    ["left", "center", "right"],
    ["bottom left", "bottom", "bottom right"],
]


def cell_of(obj: SceneObject, scene: Scene) -> str:
    col = min(2, int(3 * obj.center[0] // scene.width))
    row = min(2, int(3 * obj.center[1] // scene.height))
    return CELLS[row][col]


def holds(rel: str, a: list[float], b: list[float]) -> bool:
    ca = ((a[0] + a[2]) / 2, (a[1] + a[3]) / 2)
    cb = ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    dx, dy = ca[0] - cb[0], ca[1] - cb[1]
    if rel == "left of":
        return a[2] <= b[0] and abs(dy) <= abs(dx)
    if rel == "right of":
        return a[0] >= b[2] and abs(dy) <= abs(dx)
    if rel == "above":
        return a[3] <= b[1] and abs(dx) <= abs(dy)
    if rel == "below":
        return a[1] >= b[3] and abs(dx) <= abs(dy)
    assert rel == "next to"
    gap = box(*a).distance(box(*b))
    return gap <= max(6.0, 0.6 * max(b[2] - b[0], b[3] - b[1]))


def is_superlative(sup: str, t: SceneObject, group: list[SceneObject]) -> bool:
    rest = [o for o in group if o.id != t.id]
    area = lambda o: o.width * o.height  # noqa: E731
    if sup == "largest":
        return all(area(t) >= 1.15 * area(o) for o in rest)
    if sup == "smallest":
        return all(1.15 * area(t) <= area(o) for o in rest)
    axis = 0 if sup in ("leftmost", "rightmost") else 1
    sign = -1 if sup in ("leftmost", "topmost") else 1
    return all(sign * t.center[axis] >= sign * o.center[axis] + 4.0 for o in rest)


def described(scene: Scene, facts: dict) -> list[SceneObject]:
    group = [o for o in scene.objects if o.category == facts["category"]]
    uses = facts["uses"]
    if "colour" in uses:
        group = [o for o in group if o.colour == facts["colour"]]
    if "size_class" in uses:
        group = [o for o in group if o.size_class == facts["size_class"]]
    if "cell" in uses:
        group = [o for o in group if cell_of(o, scene) == facts["cell"]]
    if facts.get("superlative"):
        group = [o for o in group if is_superlative(facts["superlative"], o, group)]
    if facts.get("relation"):
        anchors = described(scene, {**facts["anchor"], "relation": None})
        assert len(anchors) == 1, "the anchor itself must be unique"
        group = [o for o in group if holds(facts["relation"], o.hbox, anchors[0].hbox)]
    return group


def test_expressions_single_out_exactly_their_target(scenes: list[Scene]) -> None:
    strategies: Counter[str] = Counter()
    total = 0
    for scene in scenes:
        counts = Counter(o.category for o in scene.objects)
        for e in referring_expressions(scene):
            total += 1
            f = e["facts"]
            target = scene.object_by_id(e["target_id"])
            assert [o.id for o in described(scene, f)] == [target.id], e["expression"]
            # the facts describe the target truthfully
            assert (f["category"], f["colour"], f["size_class"]) == (
                target.category,
                target.colour,
                target.size_class,
            )
            assert f["hbox"] == e["box"] == target.hbox and f["cell"] == cell_of(target, scene)
            assert f["distractors"] == counts[target.category] - 1
            assert e["unique"] == f["unique"] == (counts[target.category] == 1)
            assert CATEGORY_SPECS[target.category].label in e["expression"]
            if f["relation"]:
                anchor = scene.object_by_id(f["anchor"]["id"])
                assert f["anchor"]["hbox"] == anchor.hbox and f["anchor"]["category"] == anchor.category
                assert anchor.category != target.category
                assert f["relation"] in e["expression"]
            if "cell" in f["uses"]:
                assert f["cell"].split()[-1] in e["expression"]
            strategies[f["strategy"]] += 1
    assert total > 150
    assert set(strategies) == {"unique-category", "attribute", "superlative", "cell", "relation"}, strategies
    # position and relation carry the repeated categories
    assert strategies["relation"] + strategies["cell"] > 0.3 * total


def test_text_is_deterministic(scenes: list[Scene]) -> None:
    scene = scenes[3]
    again = generate_scene(scene.seed, landuse=LANDUSES[3])
    assert scene_text(scene) == scene_text(again)


def _landcover_present(scene: Scene) -> set[str]:
    coarse = {
        "forest": "vegetation",
        "grassland": "vegetation",
        "cropland": "vegetation",
        "bare-soil": "bare soil",
        "water": "water",
    }
    area: Counter[str] = Counter()
    for r in scene.regions:
        area[coarse.get(r.kind, "urban")] += Polygon(r.polygon).area
    present = {k for k, v in area.items() if v >= 0.01 * scene.width * scene.height}
    image = box(0, 0, scene.width, scene.height)
    if any(LineString(r.points).intersects(image) for r in scene.rivers):
        present.add("water")
    return present


def test_vqa_answers_match_the_graph(scenes: list[Scene]) -> None:
    types: Counter[str] = Counter()
    for scene in scenes:
        counts = Counter(o.category for o in scene.objects)
        for qa in vqa_pairs(scene):
            t, q, a, f = qa["type"], qa["question"], qa["answer"], qa["facts"]
            types[t] += 1
            if t == "count":
                assert CATEGORY_SPECS[f["category"]].plural in q and a == str(counts[f["category"]])
            elif t == "presence":
                assert a == ("yes" if counts[f["category"]] else "no")
            elif t == "comparison":
                c1, c2 = f["categories"]
                assert counts[c1] != counts[c2]
                assert a == ("yes" if counts[c1] > counts[c2] else "no")
            elif t == "colour":
                (target,) = described(scene, f)
                assert a == target.colour and "colour" not in f["uses"]
            elif t == "location":
                (target,) = described(scene, f)
                assert a == cell_of(target, scene) and "cell" not in f["uses"]
            elif t == "landcover":
                assert a == ("yes" if f["landcover"] in _landcover_present(scene) else "no")
            else:
                raise AssertionError(f"unexpected type {t}")
    assert set(types) == {"count", "presence", "comparison", "colour", "location", "landcover"}


def test_relation_triples_are_exactly_the_rules(scenes: list[Scene]) -> None:
    scene = max(scenes, key=lambda s: len(s.objects))
    limit = 0.25 * min(scene.width, scene.height)
    triples = set(relations(scene))
    expected = set()
    for a in scene.objects:
        for b in scene.objects:
            if a.id == b.id or box(*a.hbox).distance(box(*b.hbox)) > limit:
                continue
            for rel in ("left of", "right of", "above", "below", "next to"):
                if holds(rel, a.hbox, b.hbox):
                    expected.add((a.id, rel, b.id))
    assert triples == expected and len(triples) > 20


def test_captions_mention_counts_and_places(scenes: list[Scene]) -> None:
    words = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ]
    for scene in scenes:
        detailed, short = captions(scene)
        assert detailed.endswith(".") and short.endswith(".")
        counts = Counter(o.category for o in scene.objects)
        if not counts:
            assert "No vehicles" in detailed
            continue
        top = max(counts, key=lambda c: (counts[c], -CATEGORIES.index(c)))
        n = counts[top]
        noun = CATEGORY_SPECS[top].label if n == 1 else CATEGORY_SPECS[top].plural
        assert noun in detailed
        if n == 1:
            assert (
                detailed.count(" a ") + detailed.count(" an ") + detailed.count("A ") + detailed.count("An ")
                > 0
            )
        elif n <= 12:
            assert words[n].capitalize() in detailed or words[n] in detailed
        assert (words[n] if n <= 20 else str(n)) + " " in short
        if scene.rivers and any(
            LineString(r.points).intersects(box(0, 0, scene.width, scene.height)) for r in scene.rivers
        ):
            assert "river" in detailed


def test_library_relations_on_hand_made_boxes() -> None:
    from rszoo.data.synth import grid_cell, relation_holds

    a = [0.0, 0.0, 10.0, 10.0]
    assert relation_holds("left of", a, [20.0, 2.0, 30.0, 12.0])
    assert not relation_holds("above", a, [20.0, 2.0, 30.0, 12.0])  # mostly sideways: not above
    assert relation_holds("above", a, [2.0, 20.0, 12.0, 30.0])
    assert not relation_holds("left of", a, [5.0, 20.0, 15.0, 30.0])  # boxes overlap in x
    # next to: gap 10 px; threshold max(6, 0.6 * longest side of the anchor)
    assert not relation_holds("next to", a, [20.0, 0.0, 30.0, 10.0])  # 0.6 * 10 = 6 < 10
    assert relation_holds("next to", a, [20.0, 0.0, 40.0, 10.0])  # 0.6 * 20 = 12 >= 10
    assert grid_cell([85.4, 128.0], 256, 256) == "center"  # 256 / 3 = 85.33
    assert grid_cell([85.3, 128.0], 256, 256) == "left"
    assert grid_cell([85.3, 170.7], 256, 256) == "bottom left"
    assert grid_cell([255.9, 0.0], 256, 256) == "top right"
