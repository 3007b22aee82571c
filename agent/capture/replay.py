"""Replay a video file or a folder of images, as fast as possible or at recorded speed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import cv2

from agent.config import SourceConfig
from agent.errors import SourceError
from agent.types import Frame

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


class ReplaySource:
    def __init__(self, cfg: SourceConfig) -> None:
        self.cfg = cfg
        self.path = Path(cfg.path)
        if not cfg.path:
            raise SourceError("replay source needs a path: source.path or the VIDEO argument")
        if not self.path.exists():
            raise SourceError(f"video file {cfg.path!r} not found")
        self._cap: cv2.VideoCapture | None = None
        if self.path.is_dir():
            self._images = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._images:
                raise SourceError(f"folder {cfg.path!r} holds no .jpg, .png or .bmp images")
            self.fps = cfg.fps
        else:
            self._images = []
            cap = cv2.VideoCapture(str(self.path))
            ok, _ = cap.read() if cap.isOpened() else (False, None)
            if not ok:
                cap.release()
                raise SourceError(f"{cfg.path!r} is not a video this machine can decode")
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._cap = cap
            fps = cap.get(cv2.CAP_PROP_FPS)
            self.fps = fps if fps and fps > 0 else cfg.fps

    def _raw(self) -> Iterator[tuple[int, "cv2.typing.MatLike"]]:
        while True:
            if self._cap is not None:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                i = 0
                while True:
                    ok, bgr = self._cap.read()
                    if not ok:
                        break
                    yield i, bgr
                    i += 1
            else:
                for i, p in enumerate(self._images):
                    bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
                    if bgr is None:
                        raise SourceError(f"{p} is not an image")
                    yield i, bgr
            if not self.cfg.loop:
                return

    def frames(self) -> Iterator[Frame]:
        start = time.monotonic()
        n = 0
        for i, bgr in self._raw():
            t_s = n / self.fps
            if self.cfg.realtime:
                delay = start + t_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), t_s, n)
            n += 1
            if self.cfg.max_frames and n >= self.cfg.max_frames:
                return

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
