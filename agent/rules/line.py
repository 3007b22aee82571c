"""Line crossing with direction, hysteresis, confirmation and a minimum displacement.

A track has a committed side (A or B) once its anchor is at least `hysteresis` from the line;
positions inside that band change nothing, so a track standing on the line never counts. It
crosses when it has been seen on the other side, beyond the band, for `confirm_frames`
observations in a row (a one-frame flicker is forgotten, in neither direction), has moved at
least `min_displacement` across the line (from its farthest point on the old side), and its
path met the drawn segment (not the line's extension). Only confirmed tracks, and only frames
where the track was really detected, count; a track born on one side never counts until it
crosses. Direction "in" is from side A (left of a->b as drawn on screen) to side B.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from agent.config import LineConfig
from agent.rules.geometry import Point, anchor, crossing_parameter
from agent.rules.zone import FORGET_S
from agent.types import Observation, Track


@dataclass(slots=True)
class _Side:
    side: int  # -1 side A, +1 side B
    far: float  # farthest distance reached on the committed side
    last: Point  # last point on the committed side
    pending: int = 0
    last_seen_s: float = 0.0


class LineCrossing:
    def __init__(self, line: LineConfig, forget_s: float = FORGET_S) -> None:
        self.line = line
        self.rule_id = line.id
        self.a, self.b = line.points
        length = math.hypot(self.b[0] - self.a[0], self.b[1] - self.a[1])
        self.unit = ((self.b[0] - self.a[0]) / length, (self.b[1] - self.a[1]) / length)
        self.classes = frozenset(line.classes)
        self.forget_s = forget_s
        self.states: dict[int, _Side] = {}

    def close(self, now_s: float) -> list[Observation]:
        """End of the stream: this rule holds nothing open."""
        return []

    def update(self, tracks: Sequence[Track], now_s: float) -> list[Observation]:
        out: list[Observation] = []
        h = self.line.hysteresis
        (ax, ay), (nx, ny) = self.a, self.unit
        seen: set[int] = set()
        for t in tracks:
            if not t.confirmed or t.label not in self.classes:
                continue
            seen.add(t.track_id)
            st = self.states.get(t.track_id)
            if st is not None:
                st.last_seen_s = now_s
            if t.misses:  # a coasting track has no new position
                continue
            p = anchor(t.box, self.line.anchor)
            d = (p[1] - ay) * nx - (p[0] - ax) * ny  # signed_distance(p, a, b), unrolled
            side = -1 if d <= -h else (1 if d >= h else 0)
            if st is None:
                if side:
                    self.states[t.track_id] = _Side(side, abs(d), p, 0, now_s)
                continue
            if side == 0:
                continue
            if side == st.side:
                st.pending = 0
                st.far = max(st.far, abs(d))
                st.last = p
                continue
            st.pending += 1
            if st.pending < self.line.confirm_frames:
                continue
            travel = st.far + abs(d)
            u = crossing_parameter(st.last, p, self.a, self.b)
            on_segment = u is not None and -1e-9 <= u <= 1 + 1e-9
            if travel >= self.line.min_displacement and on_segment:
                direction = "in" if st.side < 0 else "out"
                out.append(
                    Observation(
                        "line_crossing",
                        self.rule_id,
                        t.label,
                        now_s,
                        {"count": 1},
                        direction,
                        position=p,
                    )
                )
            st.side, st.far, st.last, st.pending = side, abs(d), p, 0
        for tid in [
            k
            for k, s in self.states.items()
            if k not in seen and now_s - s.last_seen_s > self.forget_s
        ]:
            del self.states[tid]
        return out
