"""The frame loop and its wiring: the only module that connects capture, detect, rules and emit."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from agent import identity
from agent.assets import sha256_file
from agent.config import Config
from agent.emit import Emitter
from agent.outbox import Outbox
from agent.privacy import Anonymizer, Identity, manifest_body, manifest_hash
from agent.sign import MANIFEST_PAYLOAD_TYPE, SigningKey
from agent.types import Observation

log = logging.getLogger(__name__)


@dataclass
class Summary:
    frames: int = 0
    seconds: float = 0.0
    events: Counter[str] = field(default_factory=Counter)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        by_type = ", ".join(f"{k} {v}" for k, v in sorted(self.events.items())) or "none"
        return [
            f"frames: {self.frames}",
            f"frames/s: {self.fps:.1f}",
            f"events: {sum(self.events.values())} ({by_type})",
        ]


def load_or_create_key(cfg: Config, say: Callable[[str], None]) -> SigningKey:
    """The configured key, else the state folder's throwaway identity (created and announced)."""
    if cfg.device.key:
        return SigningKey.load(Path(cfg.device.key).expanduser())
    path = cfg.state_dir / identity.KEY_FILE
    if not path.exists():
        rec = identity.keygen(cfg.state_dir, cfg.device.id, cfg.device.site)
        say(f"created a throwaway device identity in {cfg.state_dir} (keyid {rec.keyid[:16]}...)")
    return SigningKey.load(path)


class Pipeline:
    """source -> detector -> rules -> emitter, one frame at a time."""

    def __init__(self, source, detector, rules: Sequence, emitter: Emitter) -> None:  # type: ignore[no-untyped-def]
        self.source = source
        self.detector = detector
        self.rules = list(rules)
        self.emitter = emitter

    def step(self, frame) -> list[Observation]:  # type: ignore[no-untyped-def]
        detections = self.detector.detect(frame)
        observations: list[Observation] = []
        for rule in self.rules:
            observations.extend(rule.update(detections, frame.t_s))
        self.emitter.emit(observations)
        return observations

    def run(self, stop: Callable[[], bool] = lambda: False) -> Summary:
        summary = Summary()
        start = time.perf_counter()
        try:
            for frame in self.source.frames():
                self.step(frame)
                summary.frames += 1
                if stop():
                    break
        finally:
            self.source.close()
        summary.seconds = time.perf_counter() - start
        summary.events = Counter(self.emitter.counts)
        return summary


@dataclass
class Assembly:
    pipeline: Pipeline
    outbox: Outbox
    key: SigningKey
    manifest_envelope: bytes
    events_out: object | None = None


def assemble(cfg: Config, say: Callable[[str], None], events_out: Path | None = None) -> Assembly:
    """Build every stage from the config (errors surface here, before the first frame)."""
    from agent.capture import open_source
    from agent.detect.factory import build_detector, model_path
    from agent.rules import SceneCount

    source = open_source(cfg.source)
    model_sha = sha256_file(model_path(cfg, cfg.detector.model))
    detector = build_detector(cfg)
    key = load_or_create_key(cfg, say)
    outbox = Outbox(cfg.state_dir / "outbox.db")
    boot = outbox.start_boot()
    from agent import privacy_manifest

    body = manifest_body(privacy_manifest.build(cfg, model_sha))
    manifest_env = key.envelope(MANIFEST_PAYLOAD_TYPE, body)
    ident = Identity(cfg.device.id, cfg.device.site, boot, cfg.detector.model, manifest_hash(body))
    anonymizer = Anonymizer(ident, cfg.detector.classes, cfg.privacy.min_count_k, cfg.privacy.grid)
    sink = None
    fh = None
    if events_out is not None:
        events_out.parent.mkdir(parents=True, exist_ok=True)
        fh = open(events_out, "wb")

        def sink(envelope: bytes) -> None:
            fh.write(envelope + b"\n")

    prefix = cfg.mqtt.topic_prefix if cfg.mqtt else "edge/v1"
    emitter = Emitter(anonymizer, key, outbox, prefix, sink=sink)
    rules = [SceneCount(label) for label in cfg.detector.classes]
    return Assembly(Pipeline(source, detector, rules, emitter), outbox, key, manifest_env, fh)


def dump_json(obj: object) -> str:
    return json.dumps(obj, sort_keys=True)
