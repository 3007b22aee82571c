"""Loitering: an object staying in a (restricted) zone over loiter_after_s, once per visit."""

from __future__ import annotations

from typing import Sequence

from agent.rules.zone import Member, ZoneView
from agent.types import Observation, Track

# Dwell buckets (seconds): an end event says [min, max) of the bucket; -1 means "or more".
DWELL_EDGES = (0, 10, 30, 60, 120, 300, 600, 1800, 3600)


def dwell_bucket(seconds: float) -> tuple[int, int]:
    for lo, hi in zip(DWELL_EDGES, DWELL_EDGES[1:]):
        if seconds < hi:
            return lo, hi
    return DWELL_EDGES[-1], -1


class Loitering:
    def __init__(self, view: ZoneView, after_s: float) -> None:
        self.view = view
        self.rule_id = view.zone.id
        self.after_s = after_s
        self.started: set[int] = set()

    def _ends(self, left: list[tuple[Member, float]], now_s: float) -> list[Observation]:
        out = []
        for m, t_left in left:
            if m.track_id in self.started:
                self.started.discard(m.track_id)
                lo, hi = dwell_bucket(t_left - m.since_s)
                out.append(Observation("loitering_end", self.rule_id, m.label, now_s,
                                       {"dwell_s_min": lo, "dwell_s_max": hi}))
        return out

    def update(self, tracks: Sequence[Track], now_s: float) -> list[Observation]:
        frame = self.view.update(tracks, now_s)
        out = self._ends(frame.left, now_s)
        for m in frame.inside:
            if m.track_id not in self.started and now_s - m.since_s >= self.after_s:
                self.started.add(m.track_id)
                out.append(Observation("loitering_start", self.rule_id, m.label, now_s,
                                       {"dwell_s_min": int(self.after_s)}, position=m.point))
        return out

    def close(self, now_s: float) -> list[Observation]:
        return self._ends(self.view.close(now_s).left, now_s)
