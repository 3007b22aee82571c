"""Plane geometry in normalized image coordinates (origin top-left): anchors, polygons, lines."""

from __future__ import annotations

import math
from typing import Sequence

from agent.types import Box

Point = tuple[float, float]


def anchor(box: Box, kind: str = "bottom_centre") -> Point:
    """The point of a box a rule tests: bottom centre (where a person stands) or centre."""
    return box.centre if kind == "centre" else box.bottom_centre


def point_in_polygon(p: Point, poly: Sequence[Point]) -> bool:
    """Even-odd ray casting; points on an edge may fall either way (hysteresis handles that)."""
    x, y = p
    inside = False
    n = len(poly)
    j = n - 1
    for i in range(n):
        xi, yi = poly[i]
        xj, yj = poly[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def distance_to_segment(p: Point, a: Point, b: Point) -> float:
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((p[0] - ax) * dx + (p[1] - ay) * dy) / length2))
    return math.hypot(p[0] - ax - t * dx, p[1] - ay - t * dy)


def distance_to_boundary(p: Point, poly: Sequence[Point]) -> float:
    return min(distance_to_segment(p, poly[i - 1], poly[i]) for i in range(len(poly)))


def signed_distance(p: Point, a: Point, b: Point) -> float:
    """Distance of p from the infinite line a->b; negative on side A, positive on side B.

    Side A is on the left of the line as drawn on screen from a to b (for a line drawn left to
    right, side A is above it). Crossing from A to B is direction "in".
    """
    dx, dy = b[0] - a[0], b[1] - a[1]
    return (dx * (p[1] - a[1]) - dy * (p[0] - a[0])) / math.hypot(dx, dy)


def crossing_parameter(p: Point, q: Point, a: Point, b: Point) -> float | None:
    """Where path p->q meets the line through a and b, as a fraction of a->b (None: parallel)."""
    rx, ry = q[0] - p[0], q[1] - p[1]
    sx, sy = b[0] - a[0], b[1] - a[1]
    denom = sx * ry - sy * rx
    if abs(denom) < 1e-12:
        return None
    return ((p[0] - a[0]) * ry - (p[1] - a[1]) * rx) / denom
