"""Detection: turn an RGB frame into Detection objects (a quantized TFLite model, or a script)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from agent.types import Detection, Frame


@runtime_checkable
class Detector(Protocol):
    """Anything that turns a frame into detections (normalized boxes, allow-listed classes).

    model_id and model_sha256 name what actually runs (after an Edge TPU fall-back, the CPU
    twin); the privacy manifest cites both.
    """

    model_id: str
    model_sha256: str

    def detect(self, frame: Frame) -> list[Detection]: ...

    def health(self) -> dict[str, Any]:
        """{"accelerator": 0|1, "delegate": "cpu"|"edgetpu", "fallback": reason or "",
        "model": id}."""
        ...
