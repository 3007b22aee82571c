"""Geometry in normalized coordinates: polygons, sides of a line, where a path meets it."""

from __future__ import annotations

import pytest

from agent.rules.geometry import (anchor, crossing_parameter, distance_to_boundary, point_in_polygon,
                                  signed_distance)
from agent.types import Box

SQUARE = ((0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8))


def test_point_in_polygon_inside_outside_and_concave() -> None:
    assert point_in_polygon((0.5, 0.5), SQUARE)
    assert not point_in_polygon((0.1, 0.5), SQUARE)
    ell = ((0.0, 0.0), (1.0, 0.0), (1.0, 0.4), (0.4, 0.4), (0.4, 1.0), (0.0, 1.0))
    assert point_in_polygon((0.2, 0.8), ell)
    assert not point_in_polygon((0.8, 0.8), ell)


def test_anchor_is_bottom_centre_by_default() -> None:
    b = Box(0.1, 0.2, 0.3, 0.6)
    assert anchor(b) == pytest.approx((0.2, 0.6))
    assert anchor(b, "centre") == pytest.approx((0.2, 0.4))


def test_side_a_is_left_of_the_line_as_drawn() -> None:
    # drawn left to right: side A is above (y smaller, origin top-left)
    assert signed_distance((0.5, 0.3), (0.0, 0.5), (1.0, 0.5)) == pytest.approx(-0.2)
    assert signed_distance((0.5, 0.7), (0.0, 0.5), (1.0, 0.5)) == pytest.approx(0.2)
    # drawn top to bottom: side A is to the right on screen
    assert signed_distance((0.9, 0.5), (0.75, 0.0), (0.75, 1.0)) < 0


def test_crossing_parameter_and_boundary_distance() -> None:
    assert crossing_parameter((0.2, 0.25), (0.8, 0.25), (0.5, 0.0), (0.5, 1.0)) == pytest.approx(0.25)
    assert crossing_parameter((0.2, 0.25), (0.8, 0.25), (0.5, 1.0), (0.5, 0.0)) == pytest.approx(0.75)
    assert crossing_parameter((0.2, 0.25), (0.2, 0.75), (0.5, 0.0), (0.5, 1.0)) is None
    assert distance_to_boundary((0.5, 0.25), SQUARE) == pytest.approx(0.05)
