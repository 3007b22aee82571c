"""MOTChallenge text files: read detections (pixels) into normalized Detections, write tracks."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Iterator, TextIO

from agent.errors import UsageError
from agent.types import Box, Detection, Track


def read_detections(path: Path, width: int, height: int) -> dict[int, list[Detection]]:
    """frame -> detections, from rows frame,id,x,y,w,h,conf,... in pixels."""
    frames: dict[int, list[Detection]] = defaultdict(list)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"MOT detections file {str(path)!r} not found") from None
    except (UnicodeDecodeError, IsADirectoryError):
        raise UsageError(f"{str(path)!r} is not a MOTChallenge text file (rows frame,id,x,y,w,h,conf,...)") from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            f = [float(v) for v in line.split(",")[:7]]
            frame, x, y, w, h, conf = int(f[0]), f[2], f[3], f[4], f[5], f[6]
        except (ValueError, IndexError):
            raise UsageError(f"{path}:{n}: not a MOTChallenge row (frame,id,x,y,w,h,conf,...)") from None
        box = Box(x / width, y / height, (x + w) / width, (y + h) / height)
        frames[frame].append(Detection("person", conf, box))
    return dict(frames)


def frames_in_order(frames: dict[int, list[Detection]]) -> Iterator[tuple[int, list[Detection]]]:
    """Every frame from 1 to the last, empty ones included, so time advances evenly."""
    last = max(frames) if frames else 0
    for k in range(1, last + 1):
        yield k, frames.get(k, [])


def write_tracks(out: TextIO, frame: int, tracks: list[Track], width: int, height: int) -> int:
    """Confirmed tracks matched in this frame, as MOTChallenge rows in pixels:
    frame,id,x,y,w,h,score,-1,-1,-1 (frame 1-based, score the track's own)."""
    n = 0
    for t in tracks:
        if not t.confirmed or t.misses:
            continue
        b = t.box
        out.write(
            f"{frame},{t.track_id},{b.x0 * width:.2f},{b.y0 * height:.2f},"
            f"{b.width * width:.2f},{b.height * height:.2f},{t.score:.3f},-1,-1,-1\n"
        )
        n += 1
    return n
