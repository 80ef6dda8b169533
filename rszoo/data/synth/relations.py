"""Spatial vocabulary computed from boxes (one job: grid cells, relations, superlatives).

Definitions (in pixels, boxes ``[x1, y1, x2, y2]``, centres ``c``; ``a REL b`` reads "a is REL b"):

* **grid cell**: the 3x3 cell holding the box centre: column ``min(2, floor(3 cx / W))``, row likewise; names
  ``top left, top, top right, left, center, right, bottom left, bottom, bottom right``.
* **left of**: ``a.x2 <= b.x1`` and ``|dy| <= |dx|`` with ``d = c_a - c_b`` (entirely left and within 45 degrees of
  the horizontal); **right of**, **above** (``a.y2 <= b.y1``, ``|dx| <= |dy|``) and **below** mirror it.
* **next to**: the gap between the boxes (Euclidean distance between them, 0 if they touch) is at most
  ``max(6, 0.6 * longest side of b)`` pixels.
* **largest / smallest**: box area ``width x height`` of the oriented box; the target must beat every other candidate
  by 15% (``>= 1.15x`` / ``<= 0.87x``). **leftmost / rightmost / topmost / bottommost**: centre coordinate, with a
  margin of at least 4 px over the runner-up.

Example:
    >>> relation_holds("left of", [0, 0, 10, 10], [20, 0, 30, 10])
    True
    >>> relation_holds("above", [0, 0, 10, 10], [20, 0, 30, 10])
    False
    >>> grid_cell([100.0, 10.0], 256, 256)
    'top'
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rszoo.data.synth.graph import Scene, SceneObject

__all__ = [
    "CELL_NAMES",
    "RELATIONS",
    "SUPERLATIVES",
    "grid_cell",
    "near_threshold",
    "relation_holds",
    "relation_matrix",
    "relations",
    "superlative_holds",
]

CELL_NAMES = (
    ("top left", "top", "top right"),
    ("left", "center", "right"),
    ("bottom left", "bottom", "bottom right"),
)
RELATIONS = ("left of", "right of", "above", "below", "next to")
SUPERLATIVES = ("largest", "smallest", "leftmost", "rightmost", "topmost", "bottommost")
_AREA_MARGIN = 1.15
_POSITION_MARGIN = 4.0


def grid_cell(center: Sequence[float], width: int, height: int) -> str:
    """Name of the 3x3 grid cell holding ``center``."""
    col = min(2, max(0, math.floor(3 * center[0] / width)))
    row = min(2, max(0, math.floor(3 * center[1] / height)))
    return CELL_NAMES[row][col]


def near_threshold(anchor_box: Sequence[float]) -> float:
    """Largest box gap (pixels) that still counts as "next to" ``anchor_box``."""
    return max(6.0, 0.6 * max(anchor_box[2] - anchor_box[0], anchor_box[3] - anchor_box[1]))


def _gap(a: Sequence[float], b: Sequence[float]) -> float:
    gx = max(0.0, b[0] - a[2], a[0] - b[2])
    gy = max(0.0, b[1] - a[3], a[1] - b[3])
    return math.hypot(gx, gy)


def relation_holds(relation: str, a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether box ``a`` is ``relation`` box ``b`` (see the module docstring for the exact rules)."""
    dx = (a[0] + a[2]) / 2 - (b[0] + b[2]) / 2
    dy = (a[1] + a[3]) / 2 - (b[1] + b[3]) / 2
    if relation == "left of":
        return a[2] <= b[0] and abs(dy) <= abs(dx)
    if relation == "right of":
        return a[0] >= b[2] and abs(dy) <= abs(dx)
    if relation == "above":
        return a[3] <= b[1] and abs(dx) <= abs(dy)
    if relation == "below":
        return a[1] >= b[3] and abs(dx) <= abs(dy)
    if relation == "next to":
        return _gap(a, b) <= near_threshold(b)
    raise ValueError(f"unknown relation {relation!r}; known: {list(RELATIONS)}")


def relation_matrix(boxes: np.ndarray) -> dict[str, np.ndarray]:
    """All relations between ``n`` boxes at once: ``{relation: bool (n, n)}``, entry ``[i, j]`` = "i REL j"."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cx = (b[:, 0] + b[:, 2]) / 2
    cy = (b[:, 1] + b[:, 3]) / 2
    dx = cx[:, None] - cx[None, :]
    dy = cy[:, None] - cy[None, :]
    horiz = np.abs(dy) <= np.abs(dx)
    vert = np.abs(dx) <= np.abs(dy)
    gx = np.maximum(0.0, np.maximum(b[None, :, 0] - b[:, None, 2], b[:, None, 0] - b[None, :, 2]))
    gy = np.maximum(0.0, np.maximum(b[None, :, 1] - b[:, None, 3], b[:, None, 1] - b[None, :, 3]))
    gap = np.hypot(gx, gy)
    near = np.maximum(6.0, 0.6 * np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]))
    out = {
        "left of": (b[:, None, 2] <= b[None, :, 0]) & horiz,
        "right of": (b[:, None, 0] >= b[None, :, 2]) & horiz,
        "above": (b[:, None, 3] <= b[None, :, 1]) & vert,
        "below": (b[:, None, 1] >= b[None, :, 3]) & vert,
        "next to": gap <= near[None, :],
    }
    eye = np.eye(len(b), dtype=bool)
    for m in out.values():
        m[eye] = False
    return out


def superlative_holds(superlative: str, target: SceneObject, others: Sequence[SceneObject]) -> bool:
    """Whether ``target`` is clearly the ``superlative`` one among ``others`` (which may include it)."""
    rest = [o for o in others if o.id != target.id]
    if not rest:
        return True
    if superlative == "largest":
        return all(target.area >= _AREA_MARGIN * o.area for o in rest)
    if superlative == "smallest":
        return all(target.area * _AREA_MARGIN <= o.area for o in rest)
    axis, sign = {
        "leftmost": (0, -1),
        "rightmost": (0, 1),
        "topmost": (1, -1),
        "bottommost": (1, 1),
    }.get(superlative, (None, 0))
    if axis is None:
        raise ValueError(f"unknown superlative {superlative!r}; known: {list(SUPERLATIVES)}")
    t = target.center[axis] * sign
    return all(t >= o.center[axis] * sign + _POSITION_MARGIN for o in rest)


def relations(scene: Scene, max_gap: float | None = None) -> list[tuple[int, str, int]]:
    """Spatial relation triples ``(subject_id, relation, object_id)`` between nearby objects.

    Pairs whose boxes are more than ``max_gap`` pixels apart (default: a quarter of the shorter image side) are
    left out, so the list stays linear in the number of objects for dense scenes. Processed in blocks of rows, so
    large scenes never build an ``n x n`` matrix.

    Example:
        >>> from rszoo.data.synth import generate_scene
        >>> triples = relations(generate_scene(0, size=128))
        >>> all(rel in RELATIONS for _, rel, _ in triples)
        True
    """
    objs = scene.objects
    if len(objs) < 2:
        return []
    limit = 0.25 * min(scene.width, scene.height) if max_gap is None else max_gap
    boxes = np.array([o.hbox for o in objs], dtype=np.float64)
    ids = [o.id for o in objs]
    order = ("left of", "right of", "above", "below", "next to")
    out: list[tuple[int, str, int]] = []
    step = 256
    for start in range(0, len(objs), step):
        a = boxes[start : start + step]
        cx_a, cy_a = (a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2
        cx_b, cy_b = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        dx = cx_a[:, None] - cx_b[None, :]
        dy = cy_a[:, None] - cy_b[None, :]
        gx = np.maximum(0.0, np.maximum(boxes[None, :, 0] - a[:, None, 2], a[:, None, 0] - boxes[None, :, 2]))
        gy = np.maximum(0.0, np.maximum(boxes[None, :, 1] - a[:, None, 3], a[:, None, 1] - boxes[None, :, 3]))
        gap = np.hypot(gx, gy)
        close = gap <= limit
        close[np.arange(len(a)), np.arange(start, start + len(a))] = False
        horiz = np.abs(dy) <= np.abs(dx)
        vert = np.abs(dx) <= np.abs(dy)
        near = np.maximum(6.0, 0.6 * np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]))
        masks = {
            "left of": (a[:, None, 2] <= boxes[None, :, 0]) & horiz,
            "right of": (a[:, None, 0] >= boxes[None, :, 2]) & horiz,
            "above": (a[:, None, 3] <= boxes[None, :, 1]) & vert,
            "below": (a[:, None, 1] >= boxes[None, :, 3]) & vert,
            "next to": gap <= near[None, :],
        }
        rows, cols = np.nonzero(close)
        for i, j in zip(rows.tolist(), cols.tolist()):
            for rel in order:
                if masks[rel][i, j]:
                    out.append((ids[start + i], rel, ids[j]))
    return out
