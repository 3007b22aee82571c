"""The frame loop and its wiring: the only module that connects capture, detect, rules and emit."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

from agent import identity
from agent.config import Config
from agent.emit import Emitter
from agent.errors import StateError, UsageError
from agent.frameloop import FrameLoop, Idle, Stages
from agent.outbox import Outbox
from agent.privacy import Anonymizer, Identity
from agent.privacy_manifest import manifest_body, manifest_hash
from agent.sign import MANIFEST_PAYLOAD_TYPE, SigningKey
from agent.types import Observation

log = logging.getLogger(__name__)


THROWAWAY_MARKER = "device.key.throwaway"  # beside a key that replay made up


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


def load_or_create_key(cfg: Config, say: Callable[[str], None], throwaway: bool = False) -> SigningKey:
    """The configured key, else the state folder's device.key.

    Only `replay` (throwaway=True) may create a throwaway identity there, and it says so; a device
    that runs for real must have been given its key (`edge-agent keygen`) so its events can be trusted.
    """
    if cfg.device.key:
        return SigningKey.load(Path(cfg.device.key).expanduser())
    path = cfg.state_dir / identity.KEY_FILE
    marker = cfg.state_dir / THROWAWAY_MARKER
    if not path.exists():
        if not throwaway:
            raise UsageError(
                f"no device key: run `edge-agent keygen --out {cfg.state_dir}` (then enrol device.pub.json), "
                f"or give --key FILE or device.key in the config"
            )
        rec = identity.keygen(cfg.state_dir, cfg.device.id, cfg.device.site)
        marker.write_text("created by `edge-agent replay`; never used by `edge-agent run`\n")
        say(f"created a throwaway device identity in {cfg.state_dir} (keyid {rec.keyid[:16]}...)")
    elif marker.exists() and not throwaway:
        raise UsageError(
            f"the key in {cfg.state_dir} is a throwaway identity that `replay` created; give this device "
            f"its own with `edge-agent keygen --out DIR` and --key DIR/device.key (or use another --state)"
        )
    return SigningKey.load(path)


def heartbeat_counters(pipeline: "Pipeline", clock: Callable[[], float] = time.monotonic) -> Callable[[], dict[str, int]]:
    """The pipeline's numbers for the heartbeat: frames, processing rate since the last beat,
    camera outages, payloads the egress guard refused, and whether the Edge TPU runs inference."""
    last = {"frames": 0, "t": clock()}

    def counters() -> dict[str, int]:
        now, frames = clock(), pipeline.frames
        fps = (frames - last["frames"]) / max(1e-6, now - last["t"])
        last["frames"], last["t"] = frames, now
        values = {
            "frames": frames,
            "fps_milli": int(fps * 1000),
            "camera_errors": int(getattr(pipeline.source, "camera_errors", 0)),
            "egress_refused": int(pipeline.emitter.egress_refused),
        }
        health = getattr(pipeline.detector, "health", None)
        if callable(health):
            values["accelerator"] = int(bool(health().get("accelerator", 0)))
        return values

    return counters


class Pipeline:
    """source -> detector -> tracker -> rules (+ periodic stages) -> emitter, one frame at a time."""

    def __init__(self, source, detector, rules: Sequence, emitter: Emitter, tracker) -> None:  # type: ignore[no-untyped-def]
        self.source = source
        self.detector = detector
        self.tracker = tracker
        self.rules = list(rules)
        self.periodic: list[Periodic] = []  # add_periodic(): heartbeat, live cameras
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

    def step(self, frame) -> list[Observation]:  # type: ignore[no-untyped-def]
        return self.after_detect(frame, self.detector.detect(frame))

    def after_detect(self, frame, detections) -> list[Observation]:  # type: ignore[no-untyped-def]
        """Everything after detection for one frame: tracker, rules, periodic stages, emit."""
        self.frames += 1
        tracks = self.tracker.update(detections, frame.t_s)
        observations: list[Observation] = []
        for rule in self.rules:
            observations.extend(rule.update(tracks, frame.t_s))
        for stage in self.periodic:
            observations.extend(stage.tick(frame.t_s))
        self.emitter.emit(observations)
        self.last_t_s = frame.t_s
        return observations

    def idle(self, now_s: float) -> list[Observation]:
        """A beat without a frame (camera lost): only the periodic stages run."""
        observations: list[Observation] = []
        for stage in self.periodic:
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
        stages = getattr(self.detector, "stages", None)
        try:
            if self.threaded and stages is not None:
                self._run_threaded(stages(), stop)
            else:
                for frame in self.source.frames():
                    if frame is None:  # camera lost: no detections, but periodic stages still run
                        self.idle(self.source.now_s())
                    else:
                        self.step(frame)
                    if stop():
                        break
            self.finish()
        finally:
            self.source.close()
        summary.seconds = time.perf_counter() - start
        summary.frames = self.frames - frames_before
        summary.events = Counter(self.emitter.counts)
        summary.dropped_frames = int(getattr(self.source, "dropped_frames", 0))
        summary.camera_errors = int(getattr(self.source, "camera_errors", 0))
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


@dataclass
class Assembly:
    pipeline: Pipeline
    outbox: Outbox
    key: SigningKey
    manifest_envelope: bytes
    events_out: object | None = None


def _check_state_dir(path: Path) -> None:
    """The state folder exists (or can be made) and is a folder: one line if not."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"state folder {str(path)!r} is a file; give --state a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(f"cannot create the state folder {str(path)!r}: {exc.strerror}") from None


def assemble(
    cfg: Config, say: Callable[[str], None], events_out: Path | None = None, throwaway_key: bool = False
) -> Assembly:
    """Build every stage from the config (errors surface here, before the first frame)."""
    from agent.capture import open_source
    from agent.detect.factory import build_detector
    from agent.rules import build_rules
    from agent.track import ByteTracker

    rules = build_rules(cfg)
    _check_state_dir(cfg.state_dir)
    sink: Callable[[bytes], None] | None = None
    fh = None
    if events_out is not None:
        try:
            events_out.parent.mkdir(parents=True, exist_ok=True)
            fh = open(events_out, "ab")  # truncated below, once every other check has passed
        except OSError as exc:
            raise UsageError(f"cannot write --events-out {str(events_out)!r}: {exc.strerror}") from None

        def write_line(envelope: bytes) -> None:
            fh.write(envelope + b"\n")

        sink = write_line

    source = open_source(cfg.source)
    if not throwaway_key:
        key = load_or_create_key(cfg, say)  # refuse a run without its key before loading the model
    detector = build_detector(cfg)  # checks the model file's SHA-256 and picks CPU or Edge TPU
    if throwaway_key:
        key = load_or_create_key(cfg, say, throwaway=True)
    # what actually runs: after an Edge TPU fall-back that is the CPU twin, not the configured id
    model_id, model_sha = detector.model_id, detector.model_sha256
    outbox = Outbox(cfg.state_dir / "outbox.db", cfg.outbox.max_rows, cfg.outbox.max_bytes)
    boot = outbox.start_boot()
    from agent import privacy_manifest

    body = manifest_body(privacy_manifest.build(cfg, model_sha, model_id))
    manifest_env = key.envelope(MANIFEST_PAYLOAD_TYPE, body)
    ident = Identity(cfg.device.id, cfg.device.site, boot, model_id, manifest_hash(body))
    anonymizer = Anonymizer(ident, cfg.detector.classes, cfg.privacy.min_count_k, cfg.privacy.grid)
    prefix = cfg.mqtt.topic_prefix if cfg.mqtt else "edge/v1"
    if fh is not None:
        fh.truncate(0)
    emitter = Emitter(anonymizer, key, outbox, prefix, sink=sink)
    emitter.guard.check(MANIFEST_PAYLOAD_TYPE, body, manifest_env)  # the manifest leaves too (retained)
    pipeline = Pipeline(source, detector, rules, emitter, ByteTracker(cfg.tracker))
    if hasattr(source, "tick"):  # live cameras: a lost camera is an alarm, not a crash
        pipeline.add_periodic(source)
    return Assembly(pipeline, outbox, key, manifest_env, fh)

