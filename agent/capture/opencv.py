"""USB (v4l2) and IP (rtsp) cameras through OpenCV, behind the newest-frame-wins grabber."""

from __future__ import annotations

from typing import Any

import cv2

from agent.capture.live import LiveSource
from agent.capture.urls import redact_url
from agent.config import SourceConfig
from agent.errors import SourceError

# An IP camera that stops sending without closing the connection (frozen, unplugged upstream of
# a switch) must count as lost well before OpenCV's default of 30 s per read.
RTSP_OPEN_TIMEOUT_MS = 10_000
RTSP_READ_TIMEOUT_MS = 5_000


class _CvDevice:
    def __init__(self, cap: cv2.VideoCapture) -> None:
        self.cap = cap

    def read(self) -> Any:
        ok, bgr = self.cap.read()
        if not ok or bgr is None:
            return None
        return bgr  # as decoded: B, G, R (LiveSource.channels)

    def release(self) -> None:
        self.cap.release()


class OpenCVSource(LiveSource):
    """source.kind = "v4l2" (path: /dev/videoN or N) or "rtsp" (path: rtsp://...)."""

    def __init__(self, cfg: SourceConfig) -> None:
        if not cfg.path:
            what = "a device such as /dev/video0" if cfg.kind == "v4l2" else "an rtsp:// URL"
            raise SourceError(f"source.kind {cfg.kind!r} needs source.path: {what}")
        # the URL says which camera; its credentials and query string never reach a message
        self.name = cfg.path if cfg.kind == "v4l2" else redact_url(cfg.path)
        super().__init__(cfg)

    def open_device(self) -> _CvDevice:
        cfg = self.cfg
        if cfg.kind == "v4l2":
            target: Any = int(cfg.path) if cfg.path.isdigit() else cfg.path
            cap = cv2.VideoCapture(target, cv2.CAP_V4L2) if cfg.path.startswith("/dev/") else cv2.VideoCapture(target)
        else:
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, RTSP_OPEN_TIMEOUT_MS,
                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, RTSP_READ_TIMEOUT_MS]
            if cfg.decode_threads:  # else FFmpeg's choice: a live stream must be decoded as fast as it comes
                params += [cv2.CAP_PROP_N_THREADS, cfg.decode_threads]
            cap = cv2.VideoCapture(cfg.path, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open camera {self.name!r}")
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        if cfg.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
        if cfg.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
        return _CvDevice(cap)

    def open_first(self) -> _CvDevice:
        try:
            return self.open_device()
        except SourceError:
            hint = ("check the cable and `v4l2-ctl --list-devices`" if self.cfg.kind == "v4l2"
                    else "check the URL and the network")
            raise SourceError(f"camera {self.name!r} cannot be opened; {hint}") from None
