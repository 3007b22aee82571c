"""Detection: turn a frame into Detection objects (a quantized TFLite model, or a script)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from agent.types import Detection, Frame

if TYPE_CHECKING:
    from agent.frameloop import Stages


@runtime_checkable
class Detector(Protocol):
    """Anything that turns a frame into detections (normalized boxes, allow-listed classes).

    model_id and model_sha256 name what actually runs (after an Edge TPU fall-back, the CPU
    twin); the privacy manifest cites both.
    """

    model_id: str
    model_sha256: str

    def detect(self, frame: Frame) -> list[Detection]: ...

    def stages(self) -> Stages | None:
        """The same detection split into prepare / infer / detections for the threaded frame loop
        (agent/frameloop.py), or None when it cannot be split (it then runs on the caller's thread)."""
        ...

    def set_masks(self, masks: Sequence[Sequence[tuple[float, float]]]) -> bool:
        """New privacy masks from the next frame on (a change at a frame boundary); False when this
        backend cannot take them live (they then apply at the next start)."""
        ...

    def health(self) -> dict[str, Any]:
        """{"accelerator": 0|1, "delegate": "cpu"|"edgetpu", "fallback": reason or "",
        "model": id}."""
        ...
