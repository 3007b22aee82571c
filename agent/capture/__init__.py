"""Frame sources behind one protocol, chosen by name; hardware is imported only by its backend."""

from __future__ import annotations

import importlib
from typing import Iterator, Protocol, runtime_checkable

from agent.config import SourceConfig
from agent.types import Frame, Observation

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")  # pictures OpenCV decodes here

# name -> "module:Class"; the module is imported only when that source is chosen.
REGISTRY = {
    "replay": "agent.capture.replay:ReplaySource",
    "synthetic": "agent.capture.synthetic:SyntheticSource",
    "v4l2": "agent.capture.opencv:OpenCVSource",
    "rtsp": "agent.capture.opencv:OpenCVSource",
    "picamera2": "agent.capture.picam:Picamera2Source",
}


@runtime_checkable
class FrameSource(Protocol):
    """Yields frames held in memory only, in the order the source decodes them (Frame.channels).
    close() releases the device or file.

    A live source yields None while its camera is lost, so the pipeline keeps ticking its
    periodic stages at now_s(); file sources never do. Every source is also a periodic stage
    (tick: a live camera raises one alarm per outage; a file has nothing to say) and counts
    what it skipped, for the run's summary and the heartbeat.
    """

    @property
    def dropped_frames(self) -> int:
        """Frames skipped because inference was slower than the source (newest frame wins)."""
        ...

    @property
    def camera_errors(self) -> int:
        """Outages of a live camera, each reopened with back-off (0 for files)."""
        ...

    @property
    def live(self) -> bool:
        """Newest frame wins (a camera, a real-time replay): the frame loop queues at most one
        prepared frame, so no frame is older than one inference when it reaches the model."""
        ...

    def frames(self) -> Iterator[Frame | None]: ...

    def interrupt(self) -> None:
        """From another thread: make a frames() that waits for a lost camera return (stopping)."""
        ...

    def now_s(self) -> float:
        """The source's clock, on which frames' t_s are, for stages that tick without a frame."""
        ...

    def tick(self, now_s: float) -> list[Observation]:
        """A periodic stage: the source's own alarms (a lost camera), each frame or idle beat."""
        ...

    def close(self) -> None: ...


class FileClock:
    """What a source that never loses its camera (a file, a generator) adds to frames():
    media time as its clock, no alarms, and no outages. dropped_frames counts what a
    real-time replay skipped."""

    dropped_frames = 0
    camera_errors = 0
    live = False  # every frame, in order (a real-time replay sets it)
    t_s = 0.0  # media time of the last frame yielded

    def now_s(self) -> float:
        return self.t_s

    def interrupt(self) -> None:
        """A file never waits for a camera: nothing to interrupt."""

    def tick(self, now_s: float) -> list[Observation]:
        return []


def open_source(cfg: SourceConfig) -> FrameSource:
    from agent.errors import SourceError

    target = REGISTRY.get(cfg.kind)
    if target is None:
        raise SourceError(f"source kind {cfg.kind!r} is not available in this build")
    module_name, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    source: FrameSource = cls(cfg)
    return source
