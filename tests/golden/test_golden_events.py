"""Golden files: every change to what leaves the device shows up as a diff under tests/golden/.

A fixed set of observations (every event type, a refused payload, a suppressed count, a class
outside the allow-list) goes through the real Anonymizer, egress guard, Emitter and SQLite outbox,
signed with the key in device.seed (a test-only key). Bodies are compared with their random id
and ts_ms normalized; envelopes are compared byte for byte with ids and clock made deterministic.
Regenerate after an intended change with:  EDGE_AGENT_UPDATE_GOLDEN=1 pytest tests/golden
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Callable

from agent.privacy import manifest as pm
from agent.config import parse
from agent.delivery.emitter import Emitter
from agent.detect.catalogue import model
from agent.delivery.outbox import Outbox
from agent.privacy.anonymizer import Anonymizer, Identity
from agent.protocol.canonical import canonical_json
from agent.protocol.dsse import MANIFEST_PAYLOAD_TYPE, SigningKey
from agent.types import Observation
from agent.central.verify import Verifier
from agent.protocol.enrolment import enrolment

HERE = Path(__file__).resolve().parent
UPDATE = os.environ.get("EDGE_AGENT_UPDATE_GOLDEN") == "1"
KEY = SigningKey.from_seed(bytes.fromhex((HERE / "device.seed").read_text().strip()))
CONFIG = parse({
    "device": {"id": "cam-golden", "site": "site-golden"},
    "detector": {"classes": ["person", "backpack"]},
    "zones": [{"id": "desk", "polygon": [[0.3, 0.05], [0.85, 0.05], [0.85, 1.0], [0.3, 1.0]],
               "classes": ["person", "backpack"], "loiter_after_s": 8.0, "unattended_after_s": 20.0,
               "gathering_threshold": 4}],
    "lines": [{"id": "door", "points": [[0.0, 0.6], [1.0, 0.6]]}],
    "privacy": {"grid": 4, "min_count_k": 2, "masks": [[[0.0, 0.0], [0.2, 0.0], [0.2, 0.2]]]},
    "outbox": {"ack": "ingest"},
    "mqtt": {"topic_prefix": "edge/v1"},
})
OBSERVATIONS = [
    Observation("occupancy", "desk", "person", 1.0, {"count": 5, "interval_s": 60}),
    Observation("occupancy", "desk", "person", 61.0, {"count": 1, "interval_s": 60}),  # below k
    Observation("count", "door", "person", 62.0, {"entries": 7, "exits": 1, "interval_s": 60, "observed_s": 48,
                                                  "blind_camera_lost_s": 0, "blind_covered_s": 12,
                                                  "blind_low_fps_s": 0, "blind_overload_s": 0,
                                                  "blind_not_running_s": 0}),
    Observation("line_crossing", "door", "person", 63.5, {"entries": 1}, direction="in"),
    Observation("line_crossing", "door", "person", 64.5, {"exits": 1}, direction="out"),
    Observation("loitering_start", "desk", "person", 70.0, {"dwell_s_min": 8}, position=(0.62, 0.71)),
    Observation("loitering_end", "desk", "person", 95.0, {"dwell_s_min": 20, "dwell_s_max": 30}),
    Observation("unattended_object", "desk", "backpack", 99.0, {"stationary_s": 20}, position=(0.4, 0.9)),
    Observation("gathering_start", "desk", "person", 100.0, {"count": 4, "rise": 3, "window_s": 10}),
    Observation("gathering_end", "desk", "person", 130.0, {"count": 1}),
    Observation("occupancy", "desk", "car", 131.0, {"count": 3}),  # class outside the allow-list
    Observation("occupancy", "iVBORw0KGgoAAAANSUhEUg", "person", 132.0, {"count": 3}),  # refused: image
    Observation("heartbeat", "device", "", 133.0, {"frames": 1330, "fps_milli": 10000, "egress_refused": 1,
                                                  "outbox_rows": 12, "accelerator": 0, "uptime_s": 133,
                                                  "inference_p50_us": 41000, "inference_p95_us": 52000,
                                                  "camera_state": 0, "cpu_temp_mc": 61234, "throttled_now": 0,
                                                  "throttled_since_boot": 5, "rss_kb": 98304,
                                                  "disk_free_mb": 3072, "clock_synced": 1, "agent_version": 100}),
    Observation("alarm", "camera", "", 134.0, {"camera_errors": 1}, reason="camera_lost"),
]
MODEL_SHA = model(CONFIG.detector.model).sha256


def manifest() -> tuple[dict, bytes]:  # type: ignore[type-arg]
    doc = pm.build(CONFIG, MODEL_SHA)
    return doc, pm.manifest_body(doc)


def run(tmp: Path, new_id: Callable[[], str] | None, clock_ms: Callable[[], int] | None) -> list[bytes]:
    _, body = manifest()
    ident = Identity(CONFIG.device.id, CONFIG.device.site, 1, CONFIG.detector.model, pm.manifest_hash(body))
    kw = {"new_id": new_id} if new_id else {}
    anon = Anonymizer(ident, CONFIG.detector.classes, CONFIG.privacy.min_count_k, CONFIG.privacy.grid, **kw)
    outbox = Outbox(tmp / "outbox.db")
    em = Emitter(anon, KEY, outbox, CONFIG.mqtt.topic_prefix, **({"clock_ms": clock_ms} if clock_ms else {}))
    em.emit(OBSERVATIONS)
    rows = outbox.peek(1000)
    outbox.close()
    return [f"{r.topic} ".encode() + r.envelope for r in rows]


def compare(name: str, text: str) -> None:
    path = HERE / name
    if UPDATE:
        path.write_text(text)
    assert path.read_text() == text, f"{name} changed: what leaves the device changed (see the module docstring)"


def test_golden_manifest() -> None:
    doc, body = manifest()
    compare("manifest.json", json.dumps(doc, indent=2, sort_keys=True) + "\n")
    compare("manifest.sha256", pm.manifest_hash(body) + "\n")
    compare("manifest.envelope", KEY.envelope(MANIFEST_PAYLOAD_TYPE, body).decode() + "\n")


def test_golden_event_bodies(tmp_path: Path) -> None:
    verifier = Verifier([enrolment(KEY, CONFIG.device.id, CONFIG.device.site)])
    lines = []
    for row in run(tmp_path, None, None):
        topic, envelope = row.split(b" ", 1)
        event = verifier.check(envelope)[0]
        assert len(event.pop("id")) == 32 and event.pop("ts_ms") > 1_600_000_000_000
        lines.append(f"{topic.decode()} {canonical_json(event).decode()}")
    compare("events.jsonl", "\n".join(lines) + "\n")


def test_golden_envelope_bytes(tmp_path: Path) -> None:
    counter = iter(range(1, 1000))
    ticks = iter(range(1_700_000_000_000, 1_700_000_000_000 + 10**9, 1000))
    rows = run(tmp_path, lambda: f"{next(counter):032x}", lambda: next(ticks))
    compare("envelopes.txt", "\n".join(r.decode() for r in rows) + "\n")
    # and they are what the bodies say
    bodies = [json.loads(base64.b64decode(json.loads(r.split(b" ", 1)[1])["payload"])) for r in rows]
    assert [b["seq"] for b in bodies] == list(range(1, len(bodies) + 1))
