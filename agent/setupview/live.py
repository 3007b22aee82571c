"""The setup view's live picture: source -> detector -> tracker -> draft rules, kept in memory only.

Each frame is downscaled and JPEG-encoded in memory (cv2.imencode); only the newest encoding is
kept, replaced by the next one, and handed to the one admitted viewer. Nothing here writes a file
or reaches the emitter: the draft rules' observations become live counts on the page and nothing else.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent.config import Config
from agent.types import Observation, Track

if TYPE_CHECKING:
    from agent.detect import Detector

log = logging.getLogger(__name__)

MAX_WIDTH = 640  # the preview's width in pixels at most
JPEG_QUALITY = 70


def encode_jpeg(image: Any, max_width: int = MAX_WIDTH, channels: str = "rgb") -> bytes:
    """The frame (channels in `channels` order) downscaled to max_width and JPEG-encoded in memory
    (never a file)."""
    import cv2

    h, w = image.shape[:2]
    if w > max_width:
        image = cv2.resize(image, (max_width, max(1, round(h * max_width / w))), interpolation=cv2.INTER_AREA)
    if channels != "bgr":  # OpenCV's encoder reads B, G, R
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return bytes(buf)


def set_masks(detector: Detector, masks: tuple[tuple[tuple[float, float], ...], ...]) -> bool:
    """Give a running detector new privacy masks (at a frame boundary); False if it cannot take them."""
    return detector.set_masks(masks)


class Counts:
    """Live numbers per zone (objects inside now) and per line (crossings in and out since the draft)."""

    def __init__(self) -> None:
        self.zones: dict[str, dict[str, int]] = {}
        self.lines: dict[str, dict[str, int]] = {}

    def observe(self, observations: list[Observation]) -> None:
        for o in observations:
            if o.type == "occupancy":
                self.zones.setdefault(o.rule, {})[o.label] = int(o.values.get("count", 0))
            elif o.type == "line_crossing" and o.direction in ("in", "out"):
                tally = self.lines.setdefault(o.rule, {"in": 0, "out": 0})
                tally[o.direction] += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "zones": {z: sum(by.values()) for z, by in self.zones.items()},
            "lines": {ln: dict(t) for ln, t in self.lines.items()},
        }


class Live:
    """The preview loop on its own thread; newest JPEG, boxes and counts read under a lock."""

    def __init__(self, cfg: Config, source: Any, detector: Any, tracker: Any,
                 build_rules: Callable[[Config], list[Any]]) -> None:
        self.cfg = cfg
        self.source = source
        self.detector = detector
        self.tracker = tracker
        self.build_rules = build_rules
        self.rules = build_rules(cfg)
        self.counts = Counts()
        self.frames = 0
        self.error: str | None = None
        self._jpeg: bytes | None = None
        self._boxes: list[dict[str, Any]] = []
        self._size = (0, 0)
        self._pending: Config | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="setup-view-live", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def use(self, cfg: Config) -> None:
        """Draft geometry for the next frame boundary (rules rebuilt, counts restarted, masks applied)."""
        with self._lock:
            self._pending = cfg

    def snapshot(self) -> tuple[bytes | None, dict[str, Any]]:
        with self._lock:
            state = {"boxes": list(self._boxes), "counts": self.counts.to_json(), "frames": self.frames,
                     "width": self._size[0], "height": self._size[1], "error": self.error}
            return self._jpeg, state

    def _swap(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        self.rules = self.build_rules(pending)
        if pending.privacy.masks != self.cfg.privacy.masks and not set_masks(self.detector, pending.privacy.masks):
            log.info("this detector takes new privacy masks only at the next start")
        self.cfg = pending
        with self._lock:
            self.counts = Counts()

    def _run(self) -> None:
        try:
            for frame in self.source.frames():
                if self._stop.is_set():
                    break
                if frame is None:
                    continue
                self._swap()
                tracks: list[Track] = self.tracker.update(self.detector.detect(frame), frame.t_s)
                observations: list[Observation] = []
                for rule in self.rules:
                    observations.extend(rule.update(tracks, frame.t_s))
                jpeg = encode_jpeg(frame.image, channels=frame.channels)
                boxes = [{"x0": t.box.x0, "y0": t.box.y0, "x1": t.box.x1, "y1": t.box.y1, "label": t.label}
                         for t in tracks if t.confirmed and t.misses == 0]
                with self._lock:
                    self.counts.observe(observations)
                    self._jpeg, self._boxes = jpeg, boxes
                    self._size = (int(frame.image.shape[1]), int(frame.image.shape[0]))
                    self.frames += 1
        except Exception as exc:  # noqa: BLE001 (any failure: the page says it, the view still closes)
            log.error("the live picture stopped: %s", exc)
            with self._lock:
                self.error = f"the live picture stopped: {exc.__class__.__name__}"
        finally:
            self.source.close()


def with_geometry(cfg: Config, new: Config) -> Config:
    """cfg with new's zones, lines and masks (everything else as running)."""
    return dataclasses.replace(cfg, zones=new.zones, lines=new.lines,
                               privacy=dataclasses.replace(cfg.privacy, masks=new.privacy.masks))
