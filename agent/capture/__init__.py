"""Frame sources behind one protocol, chosen by name; hardware is imported only by its backend."""

from __future__ import annotations

import importlib
from typing import Iterator, Protocol

from agent.config import SourceConfig
from agent.types import Frame

# name -> "module:Class"; the module is imported only when that source is chosen.
REGISTRY = {
    "replay": "agent.capture.replay:ReplaySource",
    "synthetic": "agent.capture.synthetic:SyntheticSource",
    "v4l2": "agent.capture.opencv:OpenCVSource",
    "rtsp": "agent.capture.opencv:OpenCVSource",
    "picamera2": "agent.capture.picam:Picamera2Source",
}


class FrameSource(Protocol):
    """Yields RGB frames held in memory only. close() releases the device or file.

    A live source yields None while its camera is lost (and then offers now_s()), so the
    pipeline keeps ticking; file sources never do.
    """

    def frames(self) -> Iterator[Frame | None]: ...

    def close(self) -> None: ...


def open_source(cfg: SourceConfig) -> FrameSource:
    from agent.errors import SourceError

    target = REGISTRY.get(cfg.kind)
    if target is None:
        raise SourceError(f"source kind {cfg.kind!r} is not available in this build")
    module_name, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    source: FrameSource = cls(cfg)
    return source
