"""Occupancy: how many objects of each class are in a zone now, on change and periodically."""

from __future__ import annotations

from typing import Sequence

from agent.rules.zone import ZoneView
from agent.types import Observation, Track


class Occupancy:
    """A changed count is reported once it has held for `settle_s`; every count is repeated
    every `report_every_s` (0: only on change). An empty zone at start is not reported."""

    def __init__(self, view: ZoneView, report_every_s: float = 60.0, settle_s: float = 0.3) -> None:
        self.view = view
        self.rule_id = view.zone.id
        self.labels = tuple(view.zone.classes)
        self.report_every_s = report_every_s
        self.settle_s = settle_s
        self.reported: dict[str, int] = {}
        self.candidate: dict[str, tuple[int, float]] = {}
        self.last_report_s: float | None = None

    def close(self, now_s: float) -> list[Observation]:
        """End of the stream: this rule holds nothing open."""
        return []

    def update(self, tracks: Sequence[Track], now_s: float) -> list[Observation]:
        frame = self.view.update(tracks, now_s)
        if self.last_report_s is None:
            self.last_report_s = now_s
        out: list[Observation] = []
        periodic = self.report_every_s > 0 and now_s - self.last_report_s >= self.report_every_s
        for label in self.labels:
            n = frame.count(label)
            cand, since = self.candidate.get(label, (None, now_s))
            if cand != n:
                self.candidate[label] = (n, now_s)
                since = now_s
            settled = now_s - since >= self.settle_s
            before = self.reported.get(label)
            changed = settled and n != before and not (before is None and n == 0)
            if changed or (periodic and before is not None):
                value = n if changed or before is None else before
                self.reported[label] = value
                out.append(Observation("occupancy", self.rule_id, label, now_s, {"count": value}))
            elif settled and before is None and n == 0:
                self.reported[label] = 0
        if periodic:
            self.last_report_s = now_s
        return out
