"""Detection: turn an RGB frame into Detection objects with a quantized TFLite model."""

from __future__ import annotations

from typing import Any, Protocol

from agent.types import Detection, Frame


class Detector(Protocol):
    """Anything that turns a frame into detections (normalized boxes, allow-listed classes)."""

    model_id: str

    def detect(self, frame: Frame) -> list[Detection]: ...

    def health(self) -> dict[str, Any]:
        """{"accelerator": 0|1, "delegate": "cpu"|"edgetpu", "fallback": reason or "", "model": id}."""
        ...
