"""False-positive control around the tracker: per-class box limits and a track's score over its history.

Two generic checks, for any detector: a detection whose box is implausible for its class (too
small, too large, too wide or too tall a box) takes no part in tracking, and a track is confirmed
only while the median of its recent detection scores reaches a floor (as Frigate judges objects),
so a one-frame flicker or a blob that scores high once and low after never becomes a confirmed
track.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Sequence

from agent.config import ClassLimits
from agent.types import Detection


class ShapeGate:
    """Drops detections whose box breaks its class's limits (classes without limits pass)."""

    def __init__(self, limits: Sequence[ClassLimits]) -> None:
        self.limits = {lim.label: lim for lim in limits}

    def keep(self, det: Detection) -> bool:
        lim = self.limits.get(det.label)
        if lim is None:
            return True
        b = det.box
        area = b.area
        if area < lim.min_area or (lim.max_area and area > lim.max_area):
            return False
        aspect = b.width / b.height if b.height > 0 else float("inf")
        return aspect >= lim.min_aspect and not (lim.max_aspect and aspect > lim.max_aspect)

    def __call__(self, detections: Sequence[Detection]) -> list[Detection]:
        if not self.limits:
            return list(detections)
        return [d for d in detections if self.keep(d)]


class ScoreHistory:
    """The last `window` detection scores of one track and their median."""

    __slots__ = ("scores",)

    def __init__(self, window: int, first: float) -> None:
        self.scores: deque[float] = deque([first], maxlen=window)

    def add(self, score: float) -> None:
        self.scores.append(score)

    @property
    def median(self) -> float:
        return float(statistics.median(self.scores))
