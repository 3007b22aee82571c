"""The manifest topic: a device's real signed privacy manifest is verified and stored by SHA-256;
a tampered one, or one on another device's topic, is quarantined; status/health/ack/cmd stay ignored."""

from __future__ import annotations

import json

from agent.privacy import manifest as privacy_manifest
from agent.config import parse
from agent.protocol.enrolment import enrolment
from agent.central.ingest.classify import Classifier
from agent.central.ingest.batch import IngestPipeline, Message
from agent.central.store import open_store
from agent.protocol.dsse import MANIFEST_PAYLOAD_TYPE, SigningKey
from agent.central.verify import Verifier


def test_real_manifests_are_verified_and_stored_by_sha256(db_url: str) -> None:
    key, other = SigningKey.from_seed(b"m" * 32), SigningKey.from_seed(b"q" * 32)
    cfg = parse({"device": {"id": "cam-1", "site": "s1"}})
    body = privacy_manifest.manifest_body(privacy_manifest.build(cfg, "ef" * 32))
    signed = key.envelope(MANIFEST_PAYLOAD_TYPE, body)
    assert len(signed) > 4096  # larger than an event: its own size limit applies
    doc = json.loads(body)
    doc["raw_video_egress"] = True  # a "manifest" claiming video leaves, validly signed
    lying = key.envelope(MANIFEST_PAYLOAD_TYPE, json.dumps(doc).encode())
    store = open_store(db_url)
    registry = [enrolment(key, "cam-1", "s1"), enrolment(other, "cam-2", "s1")]
    pipe = IngestPipeline(Classifier(Verifier(registry)), store)
    base = "edge/v1/s1"
    r = pipe.process([
        Message(f"{base}/cam-1/manifest", signed, 1),
        Message(f"{base}/cam-1/manifest", signed, 2),  # the retained copy again
        Message(f"{base}/cam-2/manifest", signed, 3),  # cam-1's manifest on cam-2's topic
        Message(f"{base}/cam-1/manifest", lying, 4),
        Message(f"{base}/cam-1/manifest", signed[:-9] + b'AAAA="}]}', 5),  # signature changed
        Message(f"{base}/cam-1/manifest", b"x" * 70_000, 6),
        *(Message(f"{base}/cam-1/{kind}", b'{"state":"online"}', 7) for kind in ("status", "health", "ack", "cmd")),
    ])
    assert r.manifests == 2 and r.stored == 0
    assert r.quarantined == {"topic-mismatch": 1, "malformed": 1, "tampered": 1, "oversized": 1}
    assert r.ignored == {"status": 1, "health": 1, "ack": 1, "cmd": 1}
    [m] = store.manifests()
    assert (m.sha256, m.device, m.site, m.envelope) == (privacy_manifest.manifest_hash(body), "cam-1", "s1", signed)
    store.close()
