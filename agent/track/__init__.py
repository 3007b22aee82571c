"""Multi-object tracking: detections in, tracks with stable ids out (ids never leave the device)."""

from __future__ import annotations

from agent.track.bytetrack import ByteTracker

__all__ = ["ByteTracker"]
