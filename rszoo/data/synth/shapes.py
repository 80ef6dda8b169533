"""Category outlines and drawing parts in the unit frame (one job: what each object type looks like).

The unit frame of an object has ``u`` along its heading and ``v`` across it, both in ``[-1, 1]``; the oriented box is
the unit square. A :class:`Style` gives the *outline* (the mask polygon: a cross for planes, a disc for tanks, an L
for some buildings) and a list of *parts* drawn on top of it (windows, court lines, containers ...), each with a
colour rule relative to the object's RGB.

Example:
    >>> style = STYLES["plane"]["airliner"]
    >>> len(style.outline) > 8, all(abs(u) <= 1 and abs(v) <= 1 for u, v in style.outline)
    (True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["STYLES", "Part", "Style", "circle", "default_style", "rect"]

Colour = tuple[int, int, int]


def rect(u0: float, u1: float, v0: float, v1: float) -> list[tuple[float, float]]:
    """Axis-aligned rectangle in the unit frame."""
    return [(u0, v0), (u1, v0), (u1, v1), (u0, v1)]


def circle(cu: float, cv: float, ru: float, rv: float, n: int = 24) -> list[tuple[float, float]]:
    """Ellipse (a circle once scaled) in the unit frame."""
    return [
        (cu + ru * math.cos(2 * math.pi * k / n), cv + rv * math.sin(2 * math.pi * k / n)) for k in range(n)
    ]


@dataclass(frozen=True)
class Part:
    """A drawn piece: a polygon (``kind='poly'``) or a polyline (``kind='line'``) with a colour rule.

    ``colour`` is either a fixed RGB or a rule: ``'body'`` (the object's RGB), ``'dark'``, ``'light'``, ``'lit'`` /
    ``'unlit'`` (a roof half towards / away from the sun: the renderer decides which).
    """

    points: tuple[tuple[float, float], ...]
    colour: str | Colour
    kind: str = "poly"


@dataclass(frozen=True)
class Style:
    """Outline (mask polygon) and parts of one drawing variant; ``thin`` objects cast a translated, not swept,
    shadow (aircraft, bridges)."""

    outline: tuple[tuple[float, float], ...]
    parts: tuple[Part, ...] = field(default_factory=tuple)
    outline_colour: str | Colour = "body"
    thin: bool = False

    def unit_points(self) -> np.ndarray:
        """All vertices (outline first, then parts) as one array, for a single vectorised transform."""
        pts = list(self.outline)
        for part in self.parts:
            pts.extend(part.points)
        return np.asarray(pts, dtype=np.float64)


def _p(points: list[tuple[float, float]], colour: str | Colour, kind: str = "poly") -> Part:
    return Part(tuple(points), colour, kind)


WHITE_LINE: Colour = (236, 236, 230)
GLASS: Colour = (38, 46, 56)
_RECT = tuple(rect(-1, 1, -1, 1))
_CAR = ((-1, -0.7), (-0.85, -1), (0.85, -1), (1, -0.7), (1, 0.7), (0.85, 1), (-0.85, 1), (-1, 0.7))
_HULL = ((-1, -0.85), (0.45, -1), (0.82, -0.62), (1, 0), (0.82, 0.62), (0.45, 1), (-1, 0.85))


def _plane_outline() -> tuple[tuple[float, float], ...]:
    half = [
        (1.0, 0.0),
        (0.9, 0.07),
        (0.3, 0.09),
        (-0.12, 1.0),
        (-0.3, 1.0),
        (-0.1, 0.09),
        (-0.7, 0.07),
        (-0.86, 0.38),
        (-1.0, 0.38),
        (-0.95, 0.0),
    ]
    mirrored = [(u, -v) for u, v in reversed(half[1:-1])]
    return tuple([*half, *mirrored])


def _heli_outline() -> tuple[tuple[float, float], ...]:
    body = circle(0.2, 0.0, 0.32, 0.34, n=12)
    # keep the front half of the body, then run down the tail boom
    front = [(u, v) for u, v in body if u >= 0.05]
    front.sort(key=lambda p: math.atan2(p[1], p[0] - 0.2))
    return tuple([*front, (0.02, 0.3), (-0.9, 0.06), (-1.0, 0.2), (-1.0, -0.2), (-0.9, -0.06), (0.02, -0.3)])


def _court_lines_tennis() -> list[Part]:
    bu, dv, sv, su = 0.685, 0.64, 0.48, 0.37
    lines = [
        [*rect(-bu, bu, -dv, dv), (-bu, -dv)],
        [(-bu, -sv), (bu, -sv)],
        [(-bu, sv), (bu, sv)],
        [(-su, -sv), (-su, sv)],
        [(su, -sv), (su, sv)],
        [(-su, 0.0), (su, 0.0)],
    ]
    return (
        [_p(rect(-bu, bu, -dv, dv), "body")]
        + [_p(ln, WHITE_LINE, "line") for ln in lines]
        + [_p([(0.0, -0.72), (0.0, 0.72)], (40, 40, 40), "line")]
    )


def _court_lines_basketball() -> list[Part]:
    bu, bv = 0.86, 0.8
    key_u, key_v = 0.33, 0.3
    return [
        _p(rect(-bu, bu, -bv, bv), "body"),
        _p(rect(-bu, -bu + key_u, -key_v, key_v), "light"),
        _p(rect(bu - key_u, bu, -key_v, key_v), "light"),
        _p([*rect(-bu, bu, -bv, bv), (-bu, -bv)], WHITE_LINE, "line"),
        _p([(0.0, -bv), (0.0, bv)], WHITE_LINE, "line"),
        _p([*circle(0.0, 0.0, 0.12, 0.22, n=12), (0.12, 0.0)], WHITE_LINE, "line"),
        _p(
            [(bu - 0.52 * math.cos(a), 0.72 * math.sin(a)) for a in np.linspace(-1.3, 1.3, 9)],
            WHITE_LINE,
            "line",
        ),
        _p(
            [(-bu + 0.52 * math.cos(a), 0.72 * math.sin(a)) for a in np.linspace(-1.3, 1.3, 9)],
            WHITE_LINE,
            "line",
        ),
    ]


def _soccer_parts() -> list[Part]:
    parts = [_p(rect(-0.92, 0.92, -0.9, 0.9), "body")]
    n = 10
    for k in range(0, n, 2):
        u0 = -0.92 + 1.84 * k / n
        parts.append(_p(rect(u0, u0 + 1.84 / n, -0.9, 0.9), "light"))
    parts += [
        _p([*rect(-0.92, 0.92, -0.9, 0.9), (-0.92, -0.9)], WHITE_LINE, "line"),
        _p([(0.0, -0.9), (0.0, 0.9)], WHITE_LINE, "line"),
        _p([*circle(0.0, 0.0, 0.17, 0.27, n=16), (0.17, 0.0)], WHITE_LINE, "line"),
        _p([(-0.92, -0.6), (-0.6, -0.6), (-0.6, 0.6), (-0.92, 0.6)], WHITE_LINE, "line"),
        _p([(0.92, -0.6), (0.6, -0.6), (0.6, 0.6), (0.92, 0.6)], WHITE_LINE, "line"),
        _p([(-0.92, -0.27), (-0.82, -0.27), (-0.82, 0.27), (-0.92, 0.27)], WHITE_LINE, "line"),
        _p([(0.92, -0.27), (0.82, -0.27), (0.82, 0.27), (0.92, 0.27)], WHITE_LINE, "line"),
    ]
    return parts


def _containers() -> list[Part]:
    colours: list[Colour] = [(170, 60, 50), (60, 90, 150), (200, 160, 60), (90, 120, 90), (150, 150, 150)]
    parts = [_p(rect(-0.6, 0.62, -0.78, 0.78), (90, 90, 92))]
    k = 0
    for i in range(6):
        u0 = -0.58 + i * 0.2
        for v0 in (-0.74, -0.24, 0.26):
            parts.append(_p(rect(u0, u0 + 0.17, v0, v0 + 0.46), colours[(i * 3 + k) % len(colours)]))
            k += 1
    return parts


STYLES: dict[str, dict[str, Style]] = {
    "building": {
        "gable": Style(
            _RECT,
            (
                _p(rect(-1, 1, -1, 0), "lit"),
                _p(rect(-1, 1, 0, 1), "unlit"),
                _p([(-1, 0), (1, 0)], "dark", "line"),
            ),
        ),
        "flat": Style(
            _RECT,
            (
                _p(rect(-0.9, 0.9, -0.86, 0.86), "dark"),
                _p(rect(-0.86, 0.86, -0.8, 0.8), "body"),
                _p(rect(-0.5, -0.3, -0.45, -0.15), "light"),
                _p(rect(0.2, 0.45, 0.1, 0.4), "light"),
            ),
        ),
        "warehouse": Style(
            _RECT,
            tuple(_p([(-0.97, v), (0.97, v)], "dark", "line") for v in (-0.6, -0.2, 0.2, 0.6)),
        ),
        "l-shape": Style(
            ((-1, -1), (1, -1), (1, 0.05), (-0.15, 0.05), (-0.15, 1), (-1, 1)),
            (
                _p(
                    [(-0.93, -0.9), (0.93, -0.9), (0.93, -0.05), (-0.25, -0.05), (-0.25, 0.9), (-0.93, 0.9)],
                    "light",
                ),
                _p(
                    [
                        (-0.88, -0.82),
                        (0.88, -0.82),
                        (0.88, -0.12),
                        (-0.32, -0.12),
                        (-0.32, 0.82),
                        (-0.88, 0.82),
                    ],
                    "body",
                ),
            ),
        ),
    },
    "small-vehicle": {
        "car": Style(
            _CAR,
            (
                _p(rect(0.18, 0.46, -0.8, 0.8), GLASS),
                _p(rect(-0.78, -0.58, -0.78, 0.78), GLASS),
                _p(rect(-0.56, 0.16, -0.72, 0.72), "light"),
            ),
        ),
    },
    "large-vehicle": {
        "truck": Style(
            _RECT,
            (
                _p(rect(0.7, 1.0, -0.92, 0.92), "dark"),
                _p(rect(0.82, 0.95, -0.85, 0.85), GLASS),
                _p(rect(0.64, 0.7, -1.0, 1.0), (40, 40, 40)),
                _p(rect(-1.0, 0.64, -1.0, 1.0), "body"),
            ),
        ),
        "bus": Style(
            _RECT,
            (
                _p(rect(0.86, 0.98, -0.85, 0.85), GLASS),
                _p(rect(-0.6, -0.3, -0.45, 0.45), "light"),
                _p(rect(0.0, 0.3, -0.45, 0.45), "light"),
            ),
        ),
    },
    "ship": {
        "boat": Style(
            _HULL,
            (
                _p([(-0.85, -0.6), (0.4, -0.75), (0.7, 0), (0.4, 0.75), (-0.85, 0.6)], "light"),
                _p(rect(-0.45, 0.05, -0.5, 0.5), WHITE_LINE),
                _p(rect(-0.1, 0.03, -0.42, 0.42), GLASS),
            ),
        ),
        "cargo": Style(
            _HULL,
            (
                *_containers(),
                _p(rect(-0.92, -0.66, -0.72, 0.72), WHITE_LINE),
                _p(rect(-0.7, -0.66, -0.6, 0.6), GLASS),
            ),
        ),
        "tanker": Style(
            _HULL,
            (
                _p(rect(-0.62, 0.7, -0.06, 0.06), "dark"),
                _p(rect(-0.2, -0.12, -0.7, 0.7), "dark"),
                _p(rect(0.3, 0.38, -0.7, 0.7), "dark"),
                _p(rect(-0.93, -0.68, -0.72, 0.72), WHITE_LINE),
            ),
        ),
    },
    "plane": {
        "airliner": Style(
            _plane_outline(),
            (
                _p(rect(0.02, 0.16, 0.36, 0.46), (70, 72, 76)),
                _p(rect(0.02, 0.16, -0.46, -0.36), (70, 72, 76)),
                _p(rect(0.84, 0.9, -0.04, 0.04), GLASS),
                _p([(-0.9, 0.0), (0.88, 0.0)], "dark", "line"),
            ),
            thin=True,
        ),
    },
    "helicopter": {
        "rotor": Style(
            _heli_outline(),
            (
                _p(rect(0.38, 0.5, -0.2, 0.2), GLASS),
                _p([(0.2 - 0.78, -0.62), (0.2 + 0.78, 0.62)], (50, 50, 54), "line"),
                _p([(0.2 - 0.78, 0.62), (0.2 + 0.78, -0.62)], (50, 50, 54), "line"),
            ),
            thin=True,
        ),
    },
    "storage-tank": {
        "floating": Style(
            tuple(circle(0, 0, 1, 1)),
            (
                _p(circle(0, 0, 0.86, 0.86), "dark"),
                _p(circle(0, 0, 0.8, 0.8), "body"),
                _p(circle(0.0, 0.0, 0.08, 0.08, n=8), "dark"),
            ),
        ),
        "dome": Style(
            tuple(circle(0, 0, 1, 1)),
            (
                _p(circle(0, 0, 0.8, 0.8), "light"),
                _p(circle(0, 0, 0.45, 0.45), "light"),
            ),
        ),
    },
    "tennis-court": {"court": Style(_RECT, tuple(_court_lines_tennis()), outline_colour="surround")},
    "basketball-court": {"court": Style(_RECT, tuple(_court_lines_basketball()), outline_colour="surround")},
    "soccer-ball-field": {"pitch": Style(_RECT, tuple(_soccer_parts()), outline_colour="surround")},
    "swimming-pool": {
        "private": Style(_RECT, (_p(rect(-0.86, 0.86, -0.8, 0.8), "body"),), outline_colour=(214, 210, 200)),
        "public": Style(
            _RECT,
            (
                _p(rect(-0.92, 0.92, -0.88, 0.88), "body"),
                *(_p([(-0.85, v), (0.85, v)], (36, 96, 150), "line") for v in (-0.5, -0.17, 0.17, 0.5)),
            ),
            outline_colour=(214, 210, 200),
        ),
    },
    "bridge": {
        "deck": Style(
            _RECT,
            (_p([(-1, -0.86), (1, -0.86)], "dark", "line"), _p([(-1, 0.86), (1, 0.86)], "dark", "line")),
            thin=True,
        ),
    },
}


def default_style(category: str) -> str:
    """The first style of a category."""
    return next(iter(STYLES[category]))
