"""The threaded frame loop: capture and pre-processing, then inference, each in its own thread.

    capture thread:    source.frames() -> decode, resize into an input buffer  (prepare)
                          | bounded channel: 2 frames for files, 1 for live cameras
    inference thread:  copy into the input tensor, invoke(), copy the outputs   (infer)
                          | bounded channel: 4 results for files, 2 for live cameras
    caller's thread:   decode outputs -> tracker -> rules -> emit                (detections)

invoke() releases the GIL, so while the interpreter runs frame k the capture thread prepares
frame k+1 and the caller post-processes frame k-1: the loop runs at the interpreter's pace.
Channels are FIFO, so every frame of a file goes through every stage in order and a replay
gives exactly the events of the sequential loop. For a live camera the newest-frame-wins grabber
stays in front, and the capture thread waits for room *before* it takes a frame, so a frame is
never older than one inference when it reaches the interpreter.

An exception in a worker thread travels down the channels in order and is raised again on the
caller's thread, so errors read as they did in the sequential loop. stop() closes the channels,
which wakes every thread, asks a live source to stop waiting for its camera, and joins both.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from agent.types import Detection, Frame

if TYPE_CHECKING:
    from agent.capture import FrameSource

log = logging.getLogger(__name__)

T = TypeVar("T")
JOIN_TIMEOUT_S = 10.0  # a worker is between two frames within milliseconds; this is for a hung device


class Stages(Protocol):
    """A detector split in three (agent/detect/staged.py), each step run by one thread."""

    def prepare(self, frame: Frame) -> Any: ...

    def infer(self, prepared: Any) -> Any: ...

    def detections(self, inferred: Any) -> list[Detection]: ...


class Closed(Exception):
    """The channel was closed: the loop is stopping."""


class Channel(Generic[T]):
    """A bounded FIFO between two threads that close() wakes on both sides."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a channel holds at least one item")
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.high_water = 0  # the most items it ever held (the bound, checked by the tests)

    def wait_room(self) -> None:
        """Block until an item fits (a single producer then puts without waiting)."""
        with self._cond:
            while len(self._items) >= self.capacity and not self._closed:
                self._cond.wait()
            if self._closed:
                raise Closed

    def put(self, item: T, force: bool = False) -> None:
        """Append, waiting for room; `force` appends at once (an error must not wait)."""
        with self._cond:
            while not force and len(self._items) >= self.capacity and not self._closed:
                self._cond.wait()
            if self._closed:
                raise Closed
            self._items.append(item)
            self.high_water = max(self.high_water, len(self._items))
            self._cond.notify_all()

    def get(self) -> T:
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if self._closed:
                raise Closed
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._items.clear()
            self._cond.notify_all()


@dataclass(frozen=True)
class Idle:
    """The camera is lost: no frame, but the periodic stages tick at the source's time."""

    now_s: float


@dataclass(frozen=True)
class Failed:
    """A worker's exception, raised again on the caller's thread."""

    error: BaseException


class End:
    """The source has no more frames."""


END = End()


@dataclass(frozen=True)
class Work:
    """A frame and what a stage made of it so far (the stages' own types)."""

    frame: Frame
    payload: Any


@dataclass(frozen=True)
class Result:
    """A frame and what the detector found in it."""

    frame: Frame
    detections: list[Detection]


class FrameLoop:
    """Runs capture and inference in two threads; the caller iterates results() and stops()."""

    def __init__(self, source: FrameSource, stages: Stages, depth: int | None = None) -> None:
        live = source.live
        self.source = source
        self.stages = stages
        # A file waits for nobody: a little slack on both sides absorbs a slow decode (key
        # frames) or a burst of post-processing (signing, a commit) without stalling inference.
        self.prepared: Channel[Any] = Channel(depth or (1 if live else 2))
        self.inferred: Channel[Any] = Channel(2 if live else 4)
        self.threads = [
            threading.Thread(target=self._capture, name="frameloop-capture", daemon=True),
            threading.Thread(target=self._infer, name="frameloop-inference", daemon=True),
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _capture(self) -> None:
        frames = iter(self.source.frames())
        try:
            while True:
                self.prepared.wait_room()  # then take the frame: a live one is as fresh as can be
                try:
                    frame = next(frames)
                except StopIteration:
                    self.prepared.put(END)
                    return
                if frame is None:
                    self.prepared.put(Idle(self.source.now_s()))
                else:
                    self.prepared.put(Work(frame, self.stages.prepare(frame)))
        except Closed:
            return
        except BaseException as exc:  # noqa: BLE001 - any error: raised again on the caller's thread
            try:
                self.prepared.put(Failed(exc), force=True)
            except Closed:
                pass
        finally:
            if isinstance(frames, Generator):
                frames.close()  # the source's generator releases what it holds (its finally runs)

    def _infer(self) -> None:
        try:
            while True:
                item = self.prepared.get()
                if isinstance(item, Work):
                    try:
                        item = Work(item.frame, self.stages.infer(item.payload))
                    except BaseException as exc:  # noqa: BLE001 - raised again by results()
                        item = Failed(exc)
                self.inferred.put(item, force=isinstance(item, Failed))
                if isinstance(item, (End, Failed)):
                    return
        except Closed:
            return

    def results(self) -> Iterator[Result | Idle]:
        """Frames with their detections (decoded here, on the caller's thread), or Idle beats,
        in source order, until the source ends; a worker's exception is raised here."""
        while True:
            try:
                item = self.inferred.get()
            except Closed:
                return
            if isinstance(item, Failed):
                raise item.error
            if isinstance(item, End):
                return
            if isinstance(item, Idle):
                yield item
            else:
                yield Result(item.frame, self.stages.detections(item.payload))

    def stop(self) -> None:
        """End both threads: close the channels, stop a live source's wait, join."""
        self.prepared.close()
        self.inferred.close()
        self.source.interrupt()  # a live source's frames() returns instead of waiting for the camera
        for t in self.threads:
            if t.ident is not None:
                t.join(JOIN_TIMEOUT_S)
                if t.is_alive():
                    log.warning("thread %s did not end within %.0f s", t.name, JOIN_TIMEOUT_S)

    def alive(self) -> list[str]:
        """Names of the loop's threads still running (none after stop())."""
        return [t.name for t in self.threads if t.is_alive()]
