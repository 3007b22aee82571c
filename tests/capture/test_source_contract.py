"""The FrameSource contract over every backend that opens here: frames, clock, tick, counters."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.capture import FrameSource, open_source
from agent.config import SourceConfig


def _configs(clip: Path) -> dict[str, SourceConfig]:
    return {
        "synthetic": SourceConfig(kind="synthetic", max_frames=3, width=64, height=48, fps=4.0),
        "replay": SourceConfig(kind="replay", path=str(clip), max_frames=3),
        # OpenCV opens a video file through the same VideoCapture as /dev/video*
        "v4l2": SourceConfig(kind="v4l2", path=str(clip), max_frames=3),
    }


@pytest.mark.parametrize("kind", ["synthetic", "replay", "v4l2"])
def test_every_source_keeps_the_declared_contract(kind: str, clip: Path) -> None:
    src = open_source(_configs(clip)[kind])
    try:
        assert isinstance(src, FrameSource)
        frames = [f for f in src.frames() if f is not None]
        assert [f.index for f in frames] == [0, 1, 2]
        assert src.now_s() >= frames[-1].t_s >= 0.0
        assert src.tick(src.now_s()) == []  # nothing went wrong: no alarm
        assert src.dropped_frames >= 0 and src.camera_errors == 0
    finally:
        src.close()


def test_a_file_source_clock_is_its_media_time(clip: Path) -> None:
    src = open_source(SourceConfig(kind="synthetic", max_frames=5, width=64, height=48, fps=4.0))
    last = list(src.frames())[-1]
    src.close()
    assert last is not None and src.now_s() == last.t_s == 1.0
