"""Zone membership with hysteresis: which confirmed tracks are in a zone, and who entered or left.

One ZoneView per zone is shared by that zone's rules; update() is memoized per timestamp so
each rule may call it. A track missing from the input for less than `forget_s` keeps its
membership (a flickering id is one visit); after that it left when it was last seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from agent.config import ZoneConfig
from agent.rules.geometry import Point, anchor, distance_to_boundary, point_in_polygon
from agent.types import Track

FORGET_S = 0.5


@dataclass(slots=True)
class Member:
    track_id: int
    label: str
    since_s: float  # when it entered
    last_seen_s: float
    point: Point
    inside: bool


@dataclass(slots=True)
class ZoneFrame:
    now_s: float
    inside: list[Member] = field(default_factory=list)
    entered: list[Member] = field(default_factory=list)
    left: list[tuple[Member, float]] = field(default_factory=list)  # (member, time it left)

    def count(self, label: str | None = None) -> int:
        return sum(1 for m in self.inside if label is None or m.label == label)


class ZoneView:
    def __init__(self, zone: ZoneConfig, forget_s: float = FORGET_S) -> None:
        self.zone = zone
        self.polygon = tuple(zone.polygon)
        self.classes = frozenset(zone.classes)
        self.forget_s = forget_s
        self.members: dict[int, Member] = {}
        self._last: ZoneFrame | None = None
        self._closed: ZoneFrame | None = None

    def update(self, tracks: Sequence[Track], now_s: float) -> ZoneFrame:
        if self._last is not None and self._last.now_s == now_s:
            return self._last
        frame = ZoneFrame(now_s)
        seen: set[int] = set()
        h = self.zone.hysteresis
        for t in tracks:
            if not t.confirmed or t.label not in self.classes:
                continue
            seen.add(t.track_id)
            p = anchor(t.box, self.zone.anchor)
            in_poly = point_in_polygon(p, self.polygon)
            m = self.members.get(t.track_id)
            if m is None:
                m = Member(t.track_id, t.label, now_s, now_s, p, in_poly)
                self.members[t.track_id] = m
                if in_poly:
                    frame.entered.append(m)
            else:
                m.last_seen_s, m.point = now_s, p
                if in_poly != m.inside and (h <= 0 or distance_to_boundary(p, self.polygon) >= h):
                    m.inside = in_poly
                    if in_poly:
                        m.since_s = now_s
                        frame.entered.append(m)
                    else:
                        frame.left.append((m, now_s))
        for tid in [tid for tid in self.members if tid not in seen]:
            m = self.members[tid]
            if now_s - m.last_seen_s > self.forget_s:
                del self.members[tid]
                if m.inside:
                    frame.left.append((m, m.last_seen_s))
        frame.inside = [m for m in self.members.values() if m.inside]
        self._last = frame
        return frame

    def close(self, now_s: float) -> ZoneFrame:
        """Everyone still inside leaves now (end of a replay or shutdown).

        Several rules share this view and each calls close(): the first call builds the frame and
        later calls get the same one. It is memoized apart from update()'s frame, whose departures
        the rules have already counted.
        """
        if self._closed is not None and self._closed.now_s == now_s:
            return self._closed
        frame = ZoneFrame(now_s)
        frame.left = [(m, min(now_s, m.last_seen_s)) for m in self.members.values() if m.inside]
        self.members.clear()
        self._closed = self._last = frame
        return frame
