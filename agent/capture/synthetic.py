"""A synthetic camera: moving rectangles on a grey background, for tests and benchmarks."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

from agent.capture import FileClock
from agent.config import SourceConfig
from agent.types import Frame


class SyntheticSource(FileClock):
    def __init__(self, cfg: SourceConfig) -> None:
        self.cfg = cfg
        self.width = cfg.width or 640
        self.height = cfg.height or 480
        self._closed = threading.Event()

    def frames(self) -> Iterator[Frame]:
        n = 0
        while not self.cfg.max_frames or n < self.cfg.max_frames:
            if self.cfg.stall_after and n >= self.cfg.stall_after:
                # a hung camera read: block until closed from another thread (only the watchdog notices)
                self._closed.wait()
                return
            img = np.full((self.height, self.width, 3), 114, dtype=np.uint8)
            x = int((n * 7) % max(1, self.width - 60))
            img[self.height // 3 : self.height // 3 + 120, x : x + 50] = (200, 60, 60)
            self.t_s = n / self.cfg.fps
            yield Frame(img, self.t_s, n)
            n += 1

    def close(self) -> None:
        self._closed.set()
