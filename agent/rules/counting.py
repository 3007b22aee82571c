"""Counting: entries into and exits from a zone per class, one count event per interval."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from agent.rules.zone import ZoneFrame, ZoneView
from agent.types import Observation, Track


class Counting:
    def __init__(self, view: ZoneView, every_s: float = 60.0) -> None:
        self.view = view
        self.rule_id = view.zone.id
        self.labels = tuple(view.zone.classes)
        self.every_s = every_s
        self.entries: Counter[str] = Counter()
        self.exits: Counter[str] = Counter()
        self.start_s: float | None = None

    def _tally(self, frame: ZoneFrame) -> None:
        for m in frame.entered:
            self.entries[m.label] += 1
        for m, _ in frame.left:
            self.exits[m.label] += 1

    def _report(self, now_s: float) -> list[Observation]:
        assert self.start_s is not None
        interval = max(0, round(now_s - self.start_s))
        out = [
            Observation(
                "count",
                self.rule_id,
                label,
                now_s,
                {
                    "entries": self.entries[label],
                    "exits": self.exits[label],
                    "interval_s": interval,
                },
            )
            for label in self.labels
        ]
        self.entries.clear()
        self.exits.clear()
        self.start_s = now_s
        return out

    def update(self, tracks: Sequence[Track], now_s: float) -> list[Observation]:
        frame = self.view.update(tracks, now_s)
        if self.start_s is None:
            self.start_s = now_s
        self._tally(frame)
        if now_s - self.start_s >= self.every_s:
            return self._report(now_s)
        return []

    def close(self, now_s: float) -> list[Observation]:
        """The last, partial interval (visitors still inside count as exits now)."""
        if self.start_s is None:
            return []
        self._tally(self.view.close(now_s))
        if (
            not (sum(self.entries.values()) or sum(self.exits.values()))
            and now_s - self.start_s < 1
        ):
            return []
        return self._report(now_s)
