"""Rules: turn tracks (or detections) into observations. Stages are update(inputs, now) -> outputs."""

from __future__ import annotations

from typing import Protocol, Sequence

from agent.types import Detection, Observation


class Rule(Protocol):
    def update(self, detections: Sequence[Detection], now_s: float) -> list[Observation]: ...


class SceneCount:
    """Persons in the whole frame, reported when the count changes and stays changed.

    A new count must hold for `settle_frames` consecutive frames before it is reported, so a
    detection that flickers for one frame does not produce two events.
    """

    def __init__(self, label: str = "person", settle_frames: int = 3, rule_id: str = "scene") -> None:
        self.label = label
        self.settle_frames = settle_frames
        self.rule_id = rule_id
        self.reported: int | None = None
        self.candidate = 0
        self.streak = 0

    def update(self, detections: Sequence[Detection], now_s: float) -> list[Observation]:
        n = sum(1 for d in detections if d.label == self.label)
        if n == self.candidate:
            self.streak += 1
        else:
            self.candidate, self.streak = n, 1
        if self.streak >= self.settle_frames and n != self.reported:
            if self.reported is None and n == 0:
                self.reported = 0
                return []
            self.reported = n
            return [Observation("occupancy", self.rule_id, self.label, now_s, {"count": n})]
        return []
