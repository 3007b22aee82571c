"""Unattended object: a still bag with no person within a radius for `after_s`, one event each."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from agent.config import ZoneConfig
from agent.rules.geometry import Point, anchor, point_in_polygon
from agent.rules.zone import FORGET_S
from agent.types import Observation, Track


@dataclass(slots=True)
class _Object:
    label: str
    ref: Point  # where it settled
    still_since_s: float
    alone_since_s: float | None
    last_seen_s: float
    reported: bool = False


class Unattended:
    def __init__(self, zone: ZoneConfig, forget_s: float = FORGET_S) -> None:
        self.zone = zone
        self.rule_id = zone.id
        self.polygon = tuple(zone.polygon)
        self.classes = frozenset(zone.unattended_classes)
        self.after_s = zone.unattended_after_s
        self.radius = zone.unattended_radius
        self.tolerance = zone.stationary_tolerance
        self.forget_s = forget_s
        self.objects: dict[int, _Object] = {}

    def close(self, now_s: float) -> list[Observation]:
        """End of the stream: this rule holds nothing open."""
        return []

    def update(self, tracks: Sequence[Track], now_s: float) -> list[Observation]:
        people = [t.box.bottom_centre for t in tracks if t.confirmed and t.label == "person"]
        out: list[Observation] = []
        seen: set[int] = set()
        for t in tracks:
            if not t.confirmed or t.label not in self.classes:
                continue
            p = anchor(t.box, self.zone.anchor)
            if not point_in_polygon(p, self.polygon):
                continue
            seen.add(t.track_id)
            o = self.objects.get(t.track_id)
            if o is None:
                o = self.objects[t.track_id] = _Object(t.label, p, now_s, None, now_s)
            o.last_seen_s = now_s
            if math.dist(p, o.ref) > self.tolerance:  # it moved: carried, not left
                o.ref, o.still_since_s, o.alone_since_s, o.reported = p, now_s, None, False
                continue
            c = t.box.centre
            attended = any(
                math.dist(c, q) <= self.radius or math.dist(p, q) <= self.radius for q in people
            )
            if attended:  # an owner nearby; a bag already reported is not reported again
                o.alone_since_s = None
                continue
            if o.alone_since_s is None:
                o.alone_since_s = now_s
            if not o.reported and now_s - o.alone_since_s >= self.after_s:
                o.reported = True
                out.append(
                    Observation(
                        "unattended_object",
                        self.rule_id,
                        t.label,
                        now_s,
                        {"stationary_s": int(now_s - o.still_since_s)},
                        position=o.ref,
                    )
                )
        for tid in [
            k
            for k, o in self.objects.items()
            if k not in seen and now_s - o.last_seen_s > self.forget_s
        ]:
            del self.objects[tid]
        return out
