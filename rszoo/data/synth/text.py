"""Language from the scene graph: captions, referring expressions, VQA pairs (one job: text ground truth).

Everything is derived from the graph and is deterministic given the scene (the only randomness, the choice among
equally valid phrasings, is seeded by ``scene.seed``).

**Referring expressions** single out exactly one object. When a category appears once, its name suffices
(``unique=True``); otherwise the expression uses a distinguishing attribute (colour, size class), a superlative
("the largest storage tank"), the 3x3 grid cell ("the ship in the top right") or a relation to a uniquely described
anchor of another category ("the small vehicle left of the large building"), preferring position and relation.
Each comes with ``facts``: the target (id, category, colour, size class, cell, hbox), what the expression uses, the
anchor and relation if any, and the number of same-category distractors. The rules for cells, relations and
superlatives are in :mod:`rszoo.data.synth.relations`; :func:`resolve` applies ``facts`` to a scene and returns the
objects they describe (exactly the target, by construction).

Example:
    >>> from rszoo.data.synth import generate_scene
    >>> scene = generate_scene(7)
    >>> exprs = referring_expressions(scene)
    >>> all([o.id for o in resolve(scene, e["facts"])] == [e["facts"]["target_id"]] for e in exprs)
    True
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from rszoo.data.synth.categories import CATEGORIES, CATEGORY_SPECS, COARSE_LANDCOVER, SIZE_CLASSES
from rszoo.data.synth.geometry import poly_area
from rszoo.data.synth.graph import Scene, SceneObject
from rszoo.data.synth.relations import (
    RELATIONS,
    grid_cell,
    relation_holds,
    relation_matrix,
    superlative_holds,
)
from rszoo.data.synth.seeding import stream

__all__ = [
    "CELL_PHRASES",
    "captions",
    "number_word",
    "referring_expressions",
    "resolve",
    "scene_text",
    "vqa_pairs",
]

CELL_PHRASES = {
    "top left": "in the top left",
    "top": "at the top",
    "top right": "in the top right",
    "left": "on the left",
    "center": "in the center",
    "right": "on the right",
    "bottom left": "in the bottom left",
    "bottom": "at the bottom",
    "bottom right": "in the bottom right",
}
_CAPTION_CELL = {
    "top left": "in the upper left",
    "top": "along the top",
    "top right": "in the upper right",
    "left": "on the left side",
    "center": "at the center",
    "right": "on the right side",
    "bottom left": "in the lower left",
    "bottom": "along the bottom",
    "bottom right": "in the lower right",
}
_NUMBERS = [
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
_SUPERLATIVE_WEIGHT = {
    "largest": 3,
    "smallest": 2,
    "leftmost": 1,
    "rightmost": 1,
    "topmost": 1,
    "bottommost": 1,
}
_STRATEGY_WEIGHTS = {"relation": 0.34, "cell": 0.26, "superlative": 0.2, "attribute": 0.2}
# the candidate for each superlative: the minimum of its key
_SUPERLATIVE_KEYS = {
    "largest": lambda o: -o.area,
    "smallest": lambda o: o.area,
    "leftmost": lambda o: o.center[0],
    "rightmost": lambda o: -o.center[0],
    "topmost": lambda o: o.center[1],
    "bottommost": lambda o: -o.center[1],
}

# (singular verb phrase, plural verb phrase) per category and placement context
_VERBS: dict[str, tuple[str, str]] = {
    "road": ("drives along the road", "drive along the road"),
    "parked-roadside": ("is parked by the roadside", "are parked by the roadside"),
    "parking": ("is parked in a parking lot", "park in a parking lot"),
    "driveway": ("stands on a driveway", "stand on driveways"),
    "apron": ("is parked on the apron", "are parked on the apron"),
    "helipad": ("sits on the apron", "sit on the apron"),
    "loading-dock": ("waits at a loading dock", "wait at loading docks"),
    "construction": ("works on a construction site", "work on a construction site"),
    "underway": ("sails on the river", "sail on the river"),
    "moored": ("is moored along the river bank", "are moored along the river bank"),
    "lake": ("floats on the lake", "float on the lake"),
    "tank-farm": ("stands in a tank farm", "stand together in a tank farm"),
    "residential": ("stands in a residential block", "line the streets"),
    "industrial": ("stands in an industrial area", "stand in an industrial area"),
    "farm": ("stands on a farm", "stand on a farm"),
    "park": ("lies in a park", "lie side by side in a park"),
    "garden": ("lies in a garden", "lie in gardens"),
    "river": ("spans the river", "span the river"),
}
_DEFAULT_VERB = ("is visible", "are visible")


def number_word(n: int) -> str:
    """``3 -> 'three'`` up to twenty, digits above."""
    return _NUMBERS[n] if 0 <= n < len(_NUMBERS) else str(n)


def _plural(category: str, n: int) -> str:
    spec = CATEGORY_SPECS[category]
    return spec.label if n == 1 else spec.plural


def _size_word(obj: SceneObject) -> str:
    return CATEGORY_SPECS[obj.category].size_words[SIZE_CLASSES.index(obj.size_class)]


def _phrase(obj: SceneObject, uses: Sequence[str]) -> str:
    """Noun phrase without the article: ``large white building``."""
    words = []
    if "size_class" in uses:
        words.append(_size_word(obj))
    if "colour" in uses:
        words.append(obj.colour)
    words.append(CATEGORY_SPECS[obj.category].label)
    return " ".join(words)


class _Index:
    """Per-scene lookups shared by captions, expressions and questions."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.objects = scene.objects
        self.by_cat: dict[str, list[SceneObject]] = {}
        for o in self.objects:
            self.by_cat.setdefault(o.category, []).append(o)
        self.cells = {o.id: grid_cell(o.center, scene.width, scene.height) for o in self.objects}
        self.pos = {o.id: k for k, o in enumerate(self.objects)}
        self._rel: dict[str, np.ndarray] | None = None
        self._rel_rows: dict[int, list[tuple[str, list[bool]]]] = {}
        self._rel_counts: dict[tuple[str, str], list[int]] = {}
        self._anchor_desc: dict[int, tuple[list[str], str | None] | None] = {}
        self._simple: dict[int, list[tuple[list[str], str | None]]] = {}
        self._counts: dict[tuple[str, ...], dict[int, int]] = {}
        self._landcover: tuple[list[tuple[str, float]], bool, bool] | None = None
        # the clear winner of each superlative per category (same rule as relations.superlative_holds)
        self.winners: dict[str, dict[str, int]] = {}
        for cat, objs in self.by_cat.items():
            if len(objs) < 2:
                continue
            wins = {}
            for sup, key in _SUPERLATIVE_KEYS.items():
                best = min(objs, key=key)
                if superlative_holds(sup, best, objs):
                    wins[sup] = best.id
            self.winners[cat] = wins

    @property
    def landcover(self) -> tuple[list[tuple[str, float]], bool, bool]:
        if self._landcover is None:
            self._landcover = _landcover_summary(self.scene)
        return self._landcover

    def simple(self, obj: SceneObject) -> list[tuple[list[str], str | None]]:
        cached = self._simple.get(obj.id)
        if cached is None:
            cached = self._simple[obj.id] = _simple_descriptions(self, obj)
        return cached

    @property
    def rel(self) -> dict[str, np.ndarray]:
        if self._rel is None:
            boxes = np.array([o.hbox for o in self.objects], dtype=np.float64).reshape(-1, 4)
            self._rel = relation_matrix(boxes)
        return self._rel

    def rel_row(self, i: int) -> list[tuple[str, list[bool]]]:
        """``(relation, rel[relation][i])`` for every relation, rows as lists (far faster to index than arrays)."""
        row = self._rel_rows.get(i)
        if row is None:
            row = self._rel_rows[i] = [(relation, self.rel[relation][i].tolist()) for relation in RELATIONS]
        return row

    def rel_counts(self, relation: str, category: str) -> list[int]:
        """For every object ``j``: how many objects of ``category`` stand in ``relation`` to it."""
        key = (relation, category)
        counts = self._rel_counts.get(key)
        if counts is None:
            rows = np.array([self.pos[o.id] for o in self.by_cat[category]], dtype=np.int64)
            counts = self._rel_counts[key] = self.rel[relation][rows].sum(axis=0).tolist()
        return counts

    def anchor_description(self, obj: SceneObject) -> tuple[list[str], str | None] | None:
        """How ``obj`` is described as a relation anchor: its first description by category, attribute or size
        superlative (not by cell: keeps phrases short), or ``None`` if it has none."""
        if obj.id not in self._anchor_desc:
            desc = [
                d for d in self.simple(obj) if "cell" not in d[0] and d[1] in (None, "largest", "smallest")
            ]
            self._anchor_desc[obj.id] = desc[0] if desc else None
        return self._anchor_desc[obj.id]

    def key(self, obj: SceneObject, uses: Sequence[str]) -> tuple:
        """The attribute tuple an expression using ``uses`` says about ``obj`` (category first)."""
        return (
            obj.category,
            obj.colour if "colour" in uses else None,
            obj.size_class if "size_class" in uses else None,
            self.cells[obj.id] if "cell" in uses else None,
        )

    def count(self, obj: SceneObject, uses: Sequence[str]) -> int:
        """How many objects share what ``uses`` says about ``obj`` (counted once per ``uses``, then O(1))."""
        key = tuple(uses)
        by_id = self._counts.get(key)
        if by_id is None:
            keys = [self.key(o, uses) for o in self.objects]
            counter = Counter(keys)
            by_id = self._counts[key] = {o.id: counter[k] for o, k in zip(self.objects, keys)}
        return by_id[obj.id]


def _object_facts(ix: _Index, obj: SceneObject) -> dict[str, Any]:
    return {
        "id": obj.id,
        "category": obj.category,
        "colour": obj.colour,
        "size_class": obj.size_class,
        "cell": ix.cells[obj.id],
        "hbox": list(obj.hbox),
    }


def _simple_descriptions(ix: _Index, obj: SceneObject) -> list[tuple[list[str], str | None]]:
    """Ways to single out ``obj`` without relations: ``(uses, superlative)`` pairs, most natural first."""
    same = ix.by_cat[obj.category]
    if len(same) == 1:
        return [([], None)]
    out: list[tuple[list[str], str | None]] = []
    for uses in (["colour"], ["size_class"], ["size_class", "colour"]):
        if ix.count(obj, uses) == 1:
            out.append((uses, None))
    for sup, winner in ix.winners.get(obj.category, {}).items():
        if winner == obj.id:
            out.append(([], sup))
    for uses in (["cell"], ["colour", "cell"]):
        if ix.count(obj, uses) == 1:
            out.append((uses, None))
    return out


def _describe(obj: SceneObject, uses: Sequence[str], superlative: str | None) -> str:
    """The expression text (with article) for a simple description."""
    noun = _phrase(obj, uses)
    if superlative:
        noun = f"{superlative} {noun}"
    text = f"the {noun}"
    return text


def _with_cell(text: str, ix: _Index, obj: SceneObject, uses: Sequence[str]) -> str:
    return f"{text} {CELL_PHRASES[ix.cells[obj.id]]}" if "cell" in uses else text


def _expression_for(ix: _Index, obj: SceneObject, rng: random.Random) -> dict[str, Any] | None:
    same = ix.by_cat[obj.category]
    base = {
        "target_id": obj.id,
        "category": obj.category,
        "colour": obj.colour,
        "size_class": obj.size_class,
        "cell": ix.cells[obj.id],
        "hbox": list(obj.hbox),
        "distractors": len(same) - 1,
        "unique": len(same) == 1,
        "superlative": None,
        "relation": None,
        "anchor": None,
    }
    if len(same) == 1:
        uses = rng.choice(([], [], ["colour"], ["cell"], ["size_class", "colour"]))
        text = _with_cell(_describe(obj, uses, None), ix, obj, uses)
        return {"expression": text, "facts": {**base, "strategy": "unique-category", "uses": uses}}

    options: dict[str, list[dict[str, Any]]] = {k: [] for k in _STRATEGY_WEIGHTS}
    for uses, sup in ix.simple(obj):
        text = _with_cell(_describe(obj, uses, sup), ix, obj, uses)
        if sup is not None:
            kind = "superlative"
            facts = {**base, "strategy": kind, "uses": ["superlative"], "superlative": sup}
        else:
            kind = "cell" if "cell" in uses else "attribute"
            facts = {**base, "strategy": kind, "uses": list(uses)}
        options[kind].append({"expression": text, "facts": facts})

    # relations to the 4 nearest anchors of other categories that are themselves uniquely described
    centre, category = obj.center, obj.category
    # a heap yields the others nearest first; usually only a few are looked at, so this beats a full sort
    nearby = [
        (math.dist(centre, other.center), other.id, other)
        for other in ix.objects
        if other.category != category
    ]
    heapq.heapify(nearby)
    anchors = []
    while nearby and len(anchors) < 4:
        other = heapq.heappop(nearby)[2]
        desc = ix.anchor_description(other)
        if desc is not None:
            anchors.append((other, desc))
    rel_row = ix.rel_row(ix.pos[obj.id]) if anchors else []
    for anchor, (a_uses, a_sup) in anchors:
        j = ix.pos[anchor.id]
        for relation, row in rel_row:
            if not row[j]:
                continue
            if ix.rel_counts(relation, category)[j] != 1:
                continue
            anchor_text = _describe(anchor, a_uses, a_sup)
            text = f"the {_phrase(obj, [])} {relation} {anchor_text}"
            anchor_facts = {**_object_facts(ix, anchor), "uses": list(a_uses), "superlative": a_sup}
            facts = {
                **base,
                "strategy": "relation",
                "uses": ["relation"],
                "relation": relation,
                "anchor": anchor_facts,
            }
            options["relation"].append({"expression": text, "facts": facts})
    kinds = [k for k in _STRATEGY_WEIGHTS if options[k]]
    if not kinds:
        return None
    weights = [_STRATEGY_WEIGHTS[k] for k in kinds]
    kind = rng.choices(kinds, weights=weights)[0]
    return rng.choice(options[kind])


def resolve(scene: Scene, facts: dict[str, Any]) -> list[SceneObject]:
    """The objects of ``scene`` that an expression's ``facts`` describe (a correct expression gives one).

    Applies, in order: category, colour / size class / grid cell (if used), the superlative (among those left), and
    the relation to the anchor (which is resolved the same way and must itself be unique).
    """
    width, height = scene.width, scene.height
    uses = facts.get("uses", [])
    out = [o for o in scene.objects if o.category == facts["category"]]
    if "colour" in uses:
        out = [o for o in out if o.colour == facts["colour"]]
    if "size_class" in uses:
        out = [o for o in out if o.size_class == facts["size_class"]]
    if "cell" in uses:
        out = [o for o in out if grid_cell(o.center, width, height) == facts["cell"]]
    if facts.get("superlative"):
        out = [o for o in out if superlative_holds(facts["superlative"], o, out)]
    if facts.get("relation"):
        anchor = facts["anchor"]
        anchors = resolve(scene, {**anchor, "relation": None, "anchor": None})
        if len(anchors) != 1:
            return []
        out = [o for o in out if relation_holds(facts["relation"], o.hbox, anchors[0].hbox)]
    return out


def referring_expressions(
    scene: Scene, max_expressions: int = 10, _ix: _Index | None = None
) -> list[dict[str, Any]]:
    """Up to ``max_expressions`` expressions, each ``{"expression", "target_id", "category", "box", "unique",
    "facts"}`` (``box`` = the target's hbox)."""
    ix = _Index(scene) if _ix is None else _ix
    rng = stream(scene.seed, "refexp")
    order = list(ix.objects)
    rng.shuffle(order)
    out = []
    for obj in order:
        if len(out) >= max_expressions:
            break
        item = _expression_for(ix, obj, rng)
        if item is None:
            continue
        facts = item["facts"]
        out.append(
            {
                "expression": item["expression"],
                "target_id": obj.id,
                "category": obj.category,
                "box": list(obj.hbox),
                "unique": facts["unique"],
                "facts": facts,
            }
        )
    return out


# -- captions ----------------------------------------------------------------------------------------------------
def _landcover_summary(scene: Scene) -> tuple[list[tuple[str, float]], bool, bool]:
    area: Counter[str] = Counter()
    for r in scene.regions:
        area[r.kind] += poly_area(r.polygon)
    total = float(scene.width * scene.height)
    fractions = sorted(((k, v / total) for k, v in area.items()), key=lambda t: (-t[1], t[0]))
    river = any(_inside(scene, river.points) for river in scene.rivers)
    road = any(_inside(scene, road.points) for road in scene.roads)
    return fractions, river, road


def _inside(scene: Scene, points: list[list[float]]) -> bool:
    return any(0 <= x <= scene.width and 0 <= y <= scene.height for x, y in points)


_KIND_PHRASE = {
    "forest": "forest",
    "grassland": "grassland",
    "cropland": "farmland",
    "bare-soil": "bare ground",
    "water": "a lake",
    "residential": "a residential area",
    "industrial": "an industrial area",
    "airport": "an airport",
    "parking": "a parking lot",
    "apron": "an airport apron",
}


def _scene_sentence(ix: _Index, rng: random.Random) -> str:
    scene = ix.scene
    fractions, river, road = ix.landcover
    main = [k for k, f in fractions if f >= 0.15 and k not in ("parking",)][:2]
    if not main:
        main = [fractions[0][0]] if fractions else ["grassland"]
    if "apron" in main and "airport" in main:
        main.remove("apron")
    subject = " and ".join(_KIND_PHRASE[k] for k in main)
    extras = []
    if river:
        extras.append("crossed by a river")
    if road:
        majors = sum(1 for r in scene.roads if r.kind == "major-road" and _inside(scene, r.points))
        extras.append("with a major road" if majors else "with roads")
    lead = rng.choice(("An aerial view of", "An overhead image of", "A satellite image of"))
    tail = f", {' and '.join(extras)}" if extras else ""
    return f"{lead} {subject}{tail}."


def _group_sentence(ix: _Index, category: str, rng: random.Random) -> str:
    objs = ix.by_cat[category]
    n = len(objs)
    spec = CATEGORY_SPECS[category]
    contexts = Counter(o.context for o in objs)
    context = contexts.most_common(1)[0][0]
    verb = _VERBS.get(context, _DEFAULT_VERB)[0 if n == 1 else 1]
    if n == 1:
        o = objs[0]
        adjs = []
        if category not in ("small-vehicle", "large-vehicle"):
            adjs.append(_size_word(o))
        adjs.append(o.colour)
        noun = f"{' '.join(adjs)} {spec.label}"
        article = "an" if noun[0] in "aeiou" else "a"
        where = _CAPTION_CELL[ix.cells[o.id]]
        return f"{article.capitalize()} {noun} {verb} {where}"
    colours = {o.colour for o in objs}
    sizes = {o.size_class for o in objs}
    adjs = []
    if len(sizes) == 1 and category not in ("small-vehicle", "large-vehicle"):
        adjs.append(_size_word(objs[0]))
    if len(colours) == 1:
        adjs.append(objs[0].colour)
    noun = " ".join([*adjs, spec.plural])
    count = number_word(n) if n <= 12 else ("dozens of" if n >= 24 else "many")
    xs = [o.center[0] for o in objs]
    ys = [o.center[1] for o in objs]
    spread = max(max(xs) - min(xs), max(ys) - min(ys)) / max(ix.scene.width, ix.scene.height)
    if spread > 0.55:
        where = "across the scene"
    else:
        cx, cy = sum(xs) / n, sum(ys) / n
        where = _CAPTION_CELL[grid_cell((cx, cy), ix.scene.width, ix.scene.height)]
    return f"{count.capitalize()} {noun} {verb} {where}"


def captions(scene: Scene, _ix: _Index | None = None) -> list[str]:
    """Two captions: a detailed one (scene, then object groups with counts, looks and places) and a short one.

    Example:
        >>> from rszoo.data.synth import generate_scene
        >>> len(captions(generate_scene(3)))
        2
    """
    ix = _Index(scene) if _ix is None else _ix
    rng = stream(scene.seed, "caption")
    first = _scene_sentence(ix, rng)
    cats = sorted(ix.by_cat, key=lambda c: (-len(ix.by_cat[c]), CATEGORIES.index(c)))
    groups = [_group_sentence(ix, c, rng) for c in cats[:4]]
    if groups:
        body = "; ".join([groups[0]] + [g[0].lower() + g[1:] for g in groups[1:]]) + "."
        detailed = f"{first} {body}"
    else:
        detailed = f"{first} No vehicles, buildings or other objects are visible."
    if cats:
        parts = [f"{number_word(len(ix.by_cat[c]))} {_plural(c, len(ix.by_cat[c]))}" for c in cats[:3]]
        listing = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        short = f"{first[:-1]}, showing {listing}."
    else:
        short = first
    return [detailed, short]


# -- VQA ---------------------------------------------------------------------------------------------------------
def vqa_pairs(
    scene: Scene, expressions: list[dict[str, Any]] | None = None, _ix: _Index | None = None
) -> list[dict[str, Any]]:
    """Question/answer pairs of types ``count``, ``presence``, ``colour``, ``comparison``, ``location`` and
    ``landcover``; each ``{"type", "question", "answer", "facts"}``. Answers are short canonical strings: digits for
    counts, ``yes``/``no``, a colour name, or a 3x3 cell name (``top left`` ... ``center`` ...).
    """
    ix = _Index(scene) if _ix is None else _ix
    rng = stream(scene.seed, "vqa")
    exprs = referring_expressions(scene, _ix=ix) if expressions is None else expressions
    counts = {c: len(ix.by_cat.get(c, [])) for c in CATEGORIES}
    present = [c for c in CATEGORIES if counts[c] > 0]
    absent = [c for c in CATEGORIES if counts[c] == 0 and c != "bridge"]
    out: list[dict[str, Any]] = []
    for c in rng.sample(present, min(2, len(present))):
        out.append(
            {
                "type": "count",
                "question": f"How many {CATEGORY_SPECS[c].plural} are there in the image?",
                "answer": str(counts[c]),
                "facts": {"category": c, "count": counts[c]},
            }
        )
    ask = []
    if present:
        ask.append(rng.choice(present))
    if absent:
        ask.append(rng.choice(absent))
    for c in ask:
        out.append(
            {
                "type": "presence",
                "question": f"Is there any {CATEGORY_SPECS[c].label} in the image?",
                "answer": "yes" if counts[c] else "no",
                "facts": {"category": c, "count": counts[c]},
            }
        )
    if len(present) >= 1:
        pool = present + absent[:2]
        a, b = rng.sample(pool, 2) if len(pool) >= 2 else (pool[0], pool[0])
        if a != b and counts[a] != counts[b]:
            out.append(
                {
                    "type": "comparison",
                    "question": f"Are there more {CATEGORY_SPECS[a].plural} than {CATEGORY_SPECS[b].plural}?",
                    "answer": "yes" if counts[a] > counts[b] else "no",
                    "facts": {"categories": [a, b], "counts": [counts[a], counts[b]]},
                }
            )
    # never ask for what the expression already says (its colour, its cell)
    for_colour = [e for e in exprs if "colour" not in e["facts"]["uses"]]
    if for_colour:
        e = rng.choice(for_colour)
        out.append(
            {
                "type": "colour",
                "question": f"What colour is {e['expression']}?",
                "answer": e["facts"]["colour"],
                "facts": e["facts"],
            }
        )
    for_location = [e for e in exprs if "cell" not in e["facts"]["uses"]]
    if for_location:
        e = rng.choice(for_location)
        out.append(
            {
                "type": "location",
                "question": f"In which part of the image is {e['expression']}? Answer with a 3x3 grid cell.",
                "answer": e["facts"]["cell"],
                "facts": e["facts"],
            }
        )
    fractions, river, _ = ix.landcover
    coarse = {COARSE_LANDCOVER[k] for k, f in fractions if f >= 0.01}
    if river:
        coarse.add("water")
    cls = rng.choice(("vegetation", "water", "bare soil", "urban"))
    out.append(
        {
            "type": "landcover",
            "question": f"Does the image show any {'urban area' if cls == 'urban' else cls}?",
            "answer": "yes" if cls in coarse else "no",
            "facts": {"landcover": cls, "present": sorted(coarse)},
        }
    )
    return out


def scene_text(scene: Scene, max_expressions: int = 10) -> dict[str, Any]:
    """Captions, referring expressions and VQA pairs of a scene in one call (expressions computed once)."""
    ix = _Index(scene)
    exprs = referring_expressions(scene, max_expressions, _ix=ix)
    return {
        "captions": captions(scene, _ix=ix),
        "referring_expressions": exprs,
        "vqa": vqa_pairs(scene, exprs, _ix=ix),
    }
