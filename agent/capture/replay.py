"""Replay a video file or a folder of images, as fast as possible or at recorded speed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator

import cv2

from agent.capture import IMAGE_SUFFIXES, FileClock
from agent.config import SourceConfig
from agent.errors import SourceError
from agent.types import Frame



class ReplaySource(FileClock):
    """A file or image folder as a camera; frames stay in memory."""

    def __init__(
        self,
        cfg: SourceConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """clock and sleep pace a realtime replay (a test passes a manual clock and its advance)."""
        self.cfg = cfg
        self.clock = clock
        self.sleep = sleep
        self.path = Path(cfg.path)
        if not cfg.path:
            raise SourceError("replay source needs a path: source.path or the VIDEO argument")
        if not self.path.exists():
            raise SourceError(f"video file {cfg.path!r} not found")
        self._cap: cv2.VideoCapture | None = None
        self._pos = 0
        self.dropped_frames = 0
        self.live = cfg.realtime  # at recorded speed late frames are skipped, as with a camera
        self.expected_frames = 0  # what the container says it holds (0: unknown)
        self.reached = 0  # media frames read or skipped, up to where the replay stopped
        self.hit_end = False  # the media ended (rather than max_frames or a stop)
        if self.path.is_dir():
            self._images = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._images:
                raise SourceError(f"folder {cfg.path!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            self.fps = cfg.fps
        elif self.path.suffix.lower() in IMAGE_SUFFIXES:
            raise SourceError(f"{cfg.path!r} is a picture, not a video: give a video or a folder of pictures "
                              f"(`edge-agent detect {cfg.path}` looks at one picture)")
        else:
            self._images = []
            # One decoding thread by default: FFmpeg's own pool (one per core) costs more CPU for the
            # same rate and runs on the core the interpreter is using (measured on the clip, 768x432
            # H.264: 0.91 ms CPU per frame with one thread, 1.27 ms with two, the same wall time).
            threads = cfg.decode_threads or 1
            cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads])
            if not cap.isOpened():  # a build without FFmpeg, or a format only another backend reads
                cap.release()
                cap = cv2.VideoCapture(str(self.path))
            ok, _ = cap.read() if cap.isOpened() else (False, None)
            if not ok:
                cap.release()
                raise SourceError(f"{cfg.path!r} is not a video this machine can decode")
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._cap = cap
            fps = cap.get(cv2.CAP_PROP_FPS)
            self.fps = fps if fps and fps > 0 else cfg.fps
            count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
            self.expected_frames = int(count) if count and count > 0 else 0

    def _next(self, decode: bool = True) -> "cv2.typing.MatLike | bool | None":
        """The next frame (decoded, or True when only skipped), None at the end of the media."""
        for attempt in range(2):
            if self._cap is not None:
                ok = self._cap.read()[1] if decode else self._cap.grab()
                if ok is not None and ok is not False:
                    return ok
            elif self._pos < len(self._images):
                p = self._images[self._pos]
                self._pos += 1
                if not decode:
                    return True
                bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
                if bgr is None:
                    raise SourceError(f"{p} is not an image")
                return bgr
            if not self.cfg.loop or attempt:
                return None
            self._rewind()
        return None

    def _rewind(self) -> None:
        self._pos = 0
        if self._cap is not None:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)

    def frames(self) -> Iterator[Frame]:
        """Every frame as fast as possible; or, with realtime, at recorded speed where a frame
        that is already late is skipped (newest frame wins, as with a live camera)."""
        self._rewind()
        start = self.clock()
        n = 0  # media frame number (t_s = n / fps), across loops
        emitted = 0
        while True:
            if self.cfg.realtime:
                due = int((self.clock() - start) * self.fps)
                while n < due:
                    if self._next(decode=False) is None:
                        self.reached, self.hit_end = n, True
                        return
                    n += 1
                    self.dropped_frames += 1
                delay = start + n / self.fps - self.clock()
                if delay > 0:
                    self.sleep(delay)
            bgr = self._next()
            if bgr is None:
                self.reached, self.hit_end = n, True
                return
            assert not isinstance(bgr, bool)  # decoded: an image, never the skip marker
            self.t_s = n / self.fps
            yield Frame(bgr, self.t_s, n, channels="bgr")  # as decoded: the detect step orders the channels
            n += 1
            self.reached = n
            emitted += 1
            if self.cfg.max_frames and emitted >= self.cfg.max_frames:
                return

    def shortfall(self) -> str | None:
        """When the video ended well before the frame count its container states: what to say."""
        if not self.hit_end or self.cfg.loop or not self.expected_frames:
            return None
        if self.reached + max(2, self.expected_frames // 100) >= self.expected_frames:
            return None  # container counts are estimates: a frame or two (or 1 %) short is normal
        return (f"{self.cfg.path!r} ended after {self.reached} of the {self.expected_frames} frames it "
                f"announces: the file is truncated or damaged (copy it again); the events of the frames "
                f"read were kept")

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
