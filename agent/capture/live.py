"""Live cameras: a grabber thread keeps only the newest frame, and reopens a lost camera with back-off.

When inference is slower than the camera, older frames are dropped (counted), never queued, so
the pipeline always works on what the camera sees now. A camera that stops delivering is
reopened with capped exponential back-off; each outage counts as a camera error and produces
one health observation (an "alarm", reason camera_lost, with values.camera_errors) from the
source's tick(), which the pipeline runs as a periodic stage. Frames are held in memory only.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterator, Protocol

from agent.config import SourceConfig
from agent.types import Frame, Observation

log = logging.getLogger(__name__)


class Device(Protocol):
    """What a backend opens: read() -> B, G, R image or None when the camera failed; release()."""

    def read(self) -> Any: ...

    def release(self) -> None: ...


class LatestFrameGrabber:
    def __init__(
        self,
        open_device: Callable[[], Device],
        name: str,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.open_device = open_device
        self.name = name
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.clock = clock
        self._cond = threading.Condition()
        self._latest: tuple[Any, float, int] | None = None
        self._taken = -1
        self._seq = 0
        self._stop = threading.Event()
        self.dropped_frames = 0
        self.camera_errors = 0
        self.connected = False
        self._thread: threading.Thread | None = None

    def start(self, device: Device | None = None) -> None:
        self._thread = threading.Thread(target=self._loop, args=(device,), name=f"grab-{self.name}", daemon=True)
        self._thread.start()

    def _loop(self, device: Device | None) -> None:
        delay = self.backoff_s
        while not self._stop.is_set():
            if device is None:
                try:
                    device = self.open_device()
                    self.connected = True
                    delay = self.backoff_s
                    log.info("camera %s connected", self.name)
                except Exception as exc:  # a backend raises its own errors; all mean "not now"
                    log.debug("camera %s open failed: %s", self.name, exc.__class__.__name__)
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.backoff_max_s)
                    continue
            image = None
            try:
                image = device.read()
            except Exception as exc:
                log.debug("camera %s read failed: %s", self.name, exc.__class__.__name__)
            if image is None:
                with self._cond:
                    self.camera_errors += 1
                    self.connected = False
                    self._cond.notify_all()
                log.warning("camera %s stopped delivering frames; reopening with back-off", self.name)
                try:
                    device.release()
                except Exception:
                    pass
                device = None
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_max_s)
                continue
            with self._cond:
                if self._latest is not None and self._latest[2] != self._taken:
                    self.dropped_frames += 1  # never consumed: the newer frame wins
                self._latest = (image, self.clock(), self._seq)
                self._seq += 1
                self._cond.notify_all()
        if device is not None:
            try:
                device.release()
            except Exception:
                pass

    def next(self, timeout: float) -> tuple[Any, float, int] | None:
        """The newest frame not yet taken, waiting up to `timeout` seconds; None if none came."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._latest is None or self._latest[2] == self._taken:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return None
                self._cond.wait(left)
            self._taken = self._latest[2]
            return self._latest

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)


class LiveSource:
    """Base of the camera sources: frames() from the grabber, health reported on outages."""

    name = "camera"
    health_rule = "camera"
    live = True  # newest frame wins: the frame loop queues at most one prepared frame

    def __init__(self, cfg: SourceConfig) -> None:
        self.cfg = cfg
        self.grabber = LatestFrameGrabber(self.open_device, self.name)
        self._reported_outages = 0
        first = self.open_first()  # a camera missing at start is a user mistake: one clear line
        self.grabber.start(first)
        self._t0 = time.monotonic()

    def open_device(self) -> Device:  # pragma: no cover - each backend implements it
        raise NotImplementedError

    def open_first(self) -> Device:
        return self.open_device()

    @property
    def dropped_frames(self) -> int:
        return self.grabber.dropped_frames

    @property
    def camera_errors(self) -> int:
        return self.grabber.camera_errors

    def tick(self, now_s: float) -> list[Observation]:
        """A periodic stage: one alarm per camera outage, on the pipeline's thread and clock."""
        outages = self.grabber.camera_errors
        if outages <= self._reported_outages:
            return []
        self._reported_outages = outages
        return [Observation("alarm", self.health_rule, "", now_s, {"camera_errors": outages}, reason="camera_lost")]

    def now_s(self) -> float:
        """The source's clock (frames' t_s are on it): for stages that tick without a frame."""
        return time.monotonic() - self._t0

    def frames(self) -> Iterator[Frame | None]:
        """Frames as they come; None while the camera is lost, so the pipeline can still tick
        its periodic stages (heartbeat) and notice a stop request during an outage."""
        n = 0
        while not self.cfg.max_frames or n < self.cfg.max_frames:
            item = self.grabber.next(timeout=0.5)
            if item is None:
                if self.grabber.stopped:  # interrupt() or close(): the loop is stopping
                    return
                if not self.grabber.connected:
                    yield None
                continue
            image, t, _ = item
            yield Frame(image, t - self._t0, n, channels="bgr")
            n += 1

    def interrupt(self) -> None:
        """Make frames() end at once, from another thread (the frame loop's stop()); the grabber
        thread releases the camera itself."""
        self.grabber.stop()

    def close(self) -> None:
        self.grabber.stop()
