"""The Raspberry Pi camera through picamera2 (Debian's python3-picamera2), inference on the lores stream.

picamera2 is imported here only, when this source is chosen. The ISP produces a small
"lores" stream next to the main one; detection reads that, so no full-resolution frame is
ever copied into Python.
"""

from __future__ import annotations

from typing import Any

from agent.capture.live import LiveSource
from agent.errors import SourceError

LORES_DEFAULT = (640, 480)


class _PiDevice:
    def __init__(self, cam: Any, cv2: Any) -> None:
        self.cam = cam
        self.cv2 = cv2

    def read(self) -> Any:
        yuv = self.cam.capture_array("lores")  # libcamera's YUV420: I420, Y then U then V, (h * 3/2) x w
        if yuv is None:
            return None
        # OpenCV's "YUV420p" names YV12 (V before U): on I420 it swaps the chroma planes, which
        # reverses the colour order and distorts saturation; I420 is said by name.
        return self.cv2.cvtColor(yuv, self.cv2.COLOR_YUV2BGR_I420)  # B, G, R, as the other sources

    def release(self) -> None:
        try:
            self.cam.stop()
        finally:
            self.cam.close()


class Picamera2Source(LiveSource):
    name = "picamera2"

    def open_device(self) -> _PiDevice:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise SourceError(
                "source.kind 'picamera2' needs Debian's python3-picamera2 "
                "(create the virtualenv with --system-site-packages)"
            ) from None
        import cv2

        w, h = (self.cfg.width, self.cfg.height) if self.cfg.width and self.cfg.height else LORES_DEFAULT
        w, h = w - w % 2, h - h % 2  # YUV420 needs even sizes
        try:
            cam = Picamera2()
            conf = cam.create_video_configuration(
                main={"size": (self.cfg.main_width or max(w, 1280), self.cfg.main_height or max(h, 720))},
                lores={"size": (w, h), "format": "YUV420"},
                buffer_count=2,
            )
            cam.configure(conf)
            cam.start()
        except Exception as exc:  # libcamera reports a missing camera in several ways
            raise SourceError(f"the Pi camera cannot be opened ({exc.__class__.__name__}); "
                              "check the ribbon cable and `rpicam-hello --list-cameras`") from None
        return _PiDevice(cam, cv2)
