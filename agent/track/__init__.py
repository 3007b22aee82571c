"""Multi-object tracking: detections in, tracks with stable ids out (ids never leave the device)."""

from __future__ import annotations

from typing import Protocol, Sequence

from agent.track.bytetrack import ByteTracker
from agent.types import Detection, Track

__all__ = ["ByteTracker", "Tracker"]


class Tracker(Protocol):
    """update(detections, now_s) -> the live tracks, boxes normalized."""

    def update(self, detections: Sequence[Detection], now_s: float) -> list[Track]: ...
