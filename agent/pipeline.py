"""The frame loop: source -> detector -> tracker -> rules (+ periodic stages) -> emitter (built by agent.assembly)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from agent.delivery.emitter import Emitter
from agent.errors import AgentError
from agent.frameloop import FrameLoop, Idle, Stages
from agent.types import Detection, Frame, Observation

if TYPE_CHECKING:
    from agent.capture import FrameSource
    from agent.detect import Detector
    from agent.rules import Rule
    from agent.track import Tracker

log = logging.getLogger(__name__)


@dataclass
class Summary:
    frames: int = 0
    seconds: float = 0.0
    events: Counter[str] = field(default_factory=Counter)
    dropped_frames: int = 0  # frames a live source or real-time replay skipped (newest frame wins)
    camera_errors: int = 0  # outages of a live camera (each retried with back-off)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        by_type = ", ".join(f"{k} {v}" for k, v in sorted(self.events.items())) or "none"
        out = [
            f"frames: {self.frames}",
            f"frames/s: {self.fps:.1f}",
            f"events: {sum(self.events.values())} ({by_type})",
        ]
        if self.dropped_frames:
            out.append(f"frames skipped (inference slower than the source): {self.dropped_frames}")
        if self.camera_errors:
            out.append(f"camera errors (reconnected with back-off): {self.camera_errors}")
        return out


class Periodic(Protocol):
    """A stage called once per frame whatever the detections (heartbeat, health)."""

    def tick(self, now_s: float) -> list[Observation]: ...


class FrameStage(Protocol):
    """A stage that sees every frame before detection, and every frameless tick (coverage)."""

    def frame(self, t_s: float, image: Any) -> None: ...

    def lost(self, now_s: float) -> None: ...


class Pipeline:
    """source -> detector -> tracker -> rules (+ periodic stages) -> emitter, one frame at a time."""

    def __init__(self, source: FrameSource, detector: Detector, rules: Sequence[Rule],
                 emitter: Emitter, tracker: Tracker) -> None:
        self.source = source
        self.detector = detector
        self.tracker = tracker
        self.rules = list(rules)
        self.periodic: list[Periodic] = []  # add_periodic(): heartbeat, live cameras
        self.frame_stages: list[FrameStage] = []  # coverage: sees each frame (or its absence) first
        self.boundary: list[Periodic] = []  # add_boundary(): run before a frame (remote configuration)
        self.emitter = emitter
        self.last_t_s: float | None = None
        self.frames = 0  # frames through step(), read by the heartbeat
        # Capture and inference in their own threads (agent/frameloop.py) when the detector can
        # be split in stages; False runs everything on the caller's thread, one frame at a time.
        self.threaded = True
        self.loop: FrameLoop | None = None  # the last threaded run's loop (its threads end with it)

    def add_periodic(self, stage: Periodic) -> None:
        """Plug in a stage whose tick(now_s) runs once per frame (e.g. the heartbeat)."""
        self.periodic.append(stage)

    def add_boundary(self, stage: Periodic) -> None:
        """Plug in a stage whose tick(now_s) runs between two frames, before the rules see the next
        one: it may swap the rules or the manifest (remote configuration)."""
        self.boundary.append(stage)

    def step(self, frame: Frame) -> list[Observation]:
        return self.after_detect(frame, self.detector.detect(frame))

    def after_detect(self, frame: Frame, detections: list[Detection]) -> list[Observation]:
        """Everything after detection for one frame: a pending remote change, coverage, tracker,
        rules, periodic stages, emit (on the caller's thread in both loops)."""
        self.frames += 1
        observations: list[Observation] = []
        for stage in self.boundary:
            observations.extend(stage.tick(frame.t_s))
        for fs in self.frame_stages:
            fs.frame(frame.t_s, frame.image)
        tracks = self.tracker.update(detections, frame.t_s)
        for rule in self.rules:
            observations.extend(rule.update(tracks, frame.t_s))
        for stage in self.periodic:
            observations.extend(stage.tick(frame.t_s))
        self.emitter.emit(observations)
        self.last_t_s = frame.t_s
        return observations

    def idle(self, now_s: float) -> list[Observation]:
        """A beat without a frame (camera lost): only the periodic stages run."""
        for fs in self.frame_stages:
            fs.lost(now_s)
        observations: list[Observation] = []
        for stage in (*self.boundary, *self.periodic):
            observations.extend(stage.tick(now_s))
        self.emitter.emit(observations)
        return observations

    def finish(self) -> list[Observation]:
        """End of the stream: open visits end and partial counts are reported."""
        from agent.rules import close_rules

        if self.last_t_s is None:
            return []
        observations = close_rules(self.rules, self.last_t_s)
        self.emitter.emit(observations)
        return observations

    def run(self, stop: Callable[[], bool] = lambda: False) -> Summary:
        summary = Summary()
        start, frames_before = time.perf_counter(), self.frames
        stages = self.detector.stages() if self.threaded else None
        try:
            if stages is not None:
                self._run_threaded(stages, stop)
            else:
                for frame in self.source.frames():
                    if frame is None:  # camera lost: no detections, but periodic stages still run
                        self.idle(self.source.now_s())
                    else:
                        self.step(frame)
                    if stop():
                        break
            self.finish()
        except AgentError:  # a mistake said in one line (a bad file in a replayed folder): the stream
            with contextlib.suppress(AgentError):  # still ends in order, open visits end
                self.finish()
            raise
        finally:
            self.source.close()
        summary.seconds = time.perf_counter() - start
        summary.frames = self.frames - frames_before
        summary.events = Counter(self.emitter.counts)
        summary.dropped_frames = self.source.dropped_frames
        summary.camera_errors = self.source.camera_errors
        return summary

    def _run_threaded(self, stages: Stages, stop: Callable[[], bool]) -> None:
        """The same loop with capture and inference in their own threads (agent/frameloop.py):
        frames in source order, so a replay gives exactly the events of the sequential loop."""
        loop = self.loop = FrameLoop(self.source, stages)
        loop.start()
        try:
            for item in loop.results():
                if isinstance(item, Idle):
                    self.idle(item.now_s)
                else:
                    self.after_detect(item.frame, item.detections)
                if stop():
                    break
        finally:
            loop.stop()
