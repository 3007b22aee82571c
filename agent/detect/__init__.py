"""Detection: turn an RGB frame into Detection objects with a quantized TFLite model."""

from __future__ import annotations

from typing import Protocol

from agent.types import Detection, Frame


class Detector(Protocol):
    """Anything that turns a frame into detections (normalized boxes, allow-listed classes)."""

    model_id: str

    def detect(self, frame: Frame) -> list[Detection]: ...
