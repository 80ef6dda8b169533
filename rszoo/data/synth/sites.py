"""Layouts of parking stalls and aircraft stands (one job: shared by the placer and the renderer).

Both the object placer (cars go into stalls, planes onto stands) and the renderer (white stall lines, yellow lead-in
lines) derive the same layout from a rectangular region's ``frame`` ``[cx, cy, half_u, half_v]`` (pixels, unclipped)
and ``angle``, so cars sit between the painted lines.

Example:
    >>> stalls = parking_stalls([50.0, 50.0, 20.0, 16.0], 0.0, gsd=0.5)
    >>> len(stalls) > 0 and all(abs(s.heading) in (90.0, -90.0) for s in stalls)
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "STALL_DEPTH_M",
    "STALL_WIDTH_M",
    "STAND_SPACING_M",
    "Slot",
    "apron_stands",
    "parking_stalls",
    "stall_lines",
    "stall_rows",
]

STALL_WIDTH_M = 2.6
STALL_DEPTH_M = 5.2
AISLE_M = 6.0
STAND_SPACING_M = 82.0  # fits an aircraft of up to ~70 m wingspan with clearance


@dataclass(frozen=True)
class Slot:
    """A parking place: centre in pixels and the heading a parked vehicle has there (degrees)."""

    x: float
    y: float
    heading: float
    row: int


def _axes(angle: float) -> tuple[float, float, float, float]:
    a = math.radians(angle)
    return math.cos(a), math.sin(a), -math.sin(a), math.cos(a)


def _rows(half_v_m: float) -> list[tuple[float, int]]:
    """Stall rows as (centre offset across the lot in metres, facing sign): pairs of rows back-to-back or across an
    aisle."""
    depth = 2 * half_v_m
    rows: list[tuple[float, int]] = []
    # bays of two rows with an aisle between them
    bay = 2 * STALL_DEPTH_M + AISLE_M
    n_bays = max(0, int((depth + 0.01) // bay))
    start = -half_v_m
    for _ in range(n_bays):
        rows.append((start + STALL_DEPTH_M / 2, 1))
        rows.append((start + bay - STALL_DEPTH_M / 2, -1))
        start += bay
    if depth - n_bays * bay >= STALL_DEPTH_M + 1.0:
        rows.append((start + STALL_DEPTH_M / 2, 1))
    return rows


def parking_stalls(frame: list[float], angle: float, gsd: float) -> list[Slot]:
    """Every stall of a parking lot (rows along the lot's long axis ``angle``; vehicles face the aisle)."""
    return [
        Slot(x, y, heading, row)
        for row, stalls in enumerate(stall_rows(frame, angle, gsd))
        for x, y, heading in stalls
    ]


def stall_rows(frame: list[float], angle: float, gsd: float) -> list[list[tuple[float, float, float]]]:
    """:func:`parking_stalls` as plain ``(x, y, heading)`` tuples, one list per row (cheaper for the placer).

    Example:
        >>> rows = stall_rows([50.0, 50.0, 20.0, 16.0], 0.0, gsd=0.5)
        >>> [(s.x, s.y, s.heading) for s in parking_stalls([50.0, 50.0, 20.0, 16.0], 0.0, 0.5)] == sum(rows, [])
        True
    """
    cx, cy, half_u, half_v = frame
    hu_m, hv_m = half_u * gsd, half_v * gsd
    eu_x, eu_y, ev_x, ev_y = _axes(angle)
    n = int((2 * hu_m - 1.0) // STALL_WIDTH_M)
    rows = []
    for off_v, facing in _rows(hv_m):
        heading = angle + (90.0 if facing > 0 else -90.0)
        heading = (heading + 180.0) % 360.0 - 180.0
        stalls = []
        for k in range(n):
            off_u = -hu_m + 0.5 + (k + 0.5) * STALL_WIDTH_M
            stalls.append(
                (cx + (off_u * eu_x + off_v * ev_x) / gsd, cy + (off_u * eu_y + off_v * ev_y) / gsd, heading)
            )
        rows.append(stalls)
    return rows


def stall_lines(frame: list[float], angle: float, gsd: float) -> list[tuple[float, float, float, float]]:
    """Painted separator lines ``(x1, y1, x2, y2)`` between the stalls of :func:`parking_stalls`."""
    cx, cy, half_u, half_v = frame
    hu_m, hv_m = half_u * gsd, half_v * gsd
    eu_x, eu_y, ev_x, ev_y = _axes(angle)
    n = int((2 * hu_m - 1.0) // STALL_WIDTH_M)
    lines = []
    for off_v, _ in _rows(hv_m):
        v0, v1 = off_v - STALL_DEPTH_M / 2, off_v + STALL_DEPTH_M / 2
        for k in range(n + 1):
            off_u = -hu_m + 0.5 + k * STALL_WIDTH_M
            lines.append(
                (
                    cx + (off_u * eu_x + v0 * ev_x) / gsd,
                    cy + (off_u * eu_y + v0 * ev_y) / gsd,
                    cx + (off_u * eu_x + v1 * ev_x) / gsd,
                    cy + (off_u * eu_y + v1 * ev_y) / gsd,
                )
            )
    return lines


def apron_stands(frame: list[float], angle: float, gsd: float) -> list[Slot]:
    """Aircraft stands along the apron's long axis; noses point across the apron (towards ``-v``)."""
    cx, cy, half_u, half_v = frame
    hu_m, hv_m = half_u * gsd, half_v * gsd
    eu_x, eu_y, ev_x, ev_y = _axes(angle)
    n = int((2 * hu_m) // STAND_SPACING_M)
    if n == 0 or hv_m < 25.0:
        return []
    slots = []
    rows = [-hv_m + 40.0] if hv_m < 80.0 else [-hv_m + 40.0, hv_m - 40.0]
    for r, off_v in enumerate(rows):
        for k in range(n):
            off_u = -hu_m + (k + 0.5) * (2 * hu_m / n)
            x = cx + (off_u * eu_x + off_v * ev_x) / gsd
            y = cy + (off_u * eu_y + off_v * ev_y) / gsd
            heading = angle - 90.0 if r == 0 else angle + 90.0
            slots.append(Slot(x, y, (heading + 180.0) % 360.0 - 180.0, r))
    return slots
