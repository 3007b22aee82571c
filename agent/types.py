"""Frozen value types that flow between stages: Frame -> Detection -> Track -> Observation.

Boxes are normalized to [0, 1] with the origin at the top-left, so zones and lines do not
depend on the camera's resolution. This module imports no numpy at run time, so the stages
that build or send bytes can use these types without pulling in array code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in normalized coordinates, origin top-left."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)

    @property
    def bottom_centre(self) -> tuple[float, float]:
        """The default anchor for rules: where a person stands."""
        return ((self.x0 + self.x1) / 2.0, self.y1)

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def as_list(self) -> list[float]:
        return [self.x0, self.y0, self.x1, self.y1]


@dataclass(frozen=True, slots=True)
class Frame:
    """One colour image in memory. Frames are never written to disk or sent anywhere.

    The pixels stay in the order the source decoded them ("bgr" from OpenCV and the Pi camera's
    lores stream): the detect step puts the channels in the model's order on the model-sized
    picture, so nothing converts a full frame only to have it converted back.
    """

    image: "np.ndarray"  # H x W x 3, uint8, in `channels` order
    t_s: float  # capture time in seconds (monotonic for cameras, media time for replay)
    index: int  # frame number from the source, 0-based
    channels: str = "rgb"  # "rgb" or "bgr"


@dataclass(frozen=True, slots=True)
class Detection:
    """One object found by the detector in one frame."""

    label: str
    score: float
    box: Box
    class_id: int = -1


@dataclass(frozen=True, slots=True)
class Track:
    """An object followed across frames. The id lives only inside the device."""

    track_id: int
    label: str
    box: Box
    score: float
    confirmed: bool
    age: int = 0  # frames since the track was created
    misses: int = 0  # consecutive frames without a matching detection


@dataclass(frozen=True, slots=True)
class Observation:
    """What a rule saw. The privacy stage is the only path from an Observation to an Event.

    `values` hold integers only (counts, dwell buckets); `direction` is an optional coarse
    attribute. `position` (normalized, origin top-left) never leaves as such: privacy turns it
    into a coarse grid cell when privacy.grid > 0 and drops it otherwise. `reason` is the
    code of an alarm.
    """

    type: str
    rule: str
    label: str
    t_s: float
    values: Mapping[str, int] = field(default_factory=dict)
    direction: str | None = None
    position: tuple[float, float] | None = None
    reason: str | None = None
