"""One received message -> a verified EventRow, a quarantine reason, or an ignored non-event topic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from agent.errors import SignatureError
from agent.central.store.rows import EventRow, ManifestRow, QuarantineRow, reject_digest
from agent.central.verify import Verifier
from agent.protocol.canonical import canonical_json
from agent.protocol.topics import (
    CONTROL_KINDS,
    DEFAULT_PREFIX,
    EVENT,
    MANIFEST,
    MAX_EVENT_BYTES,
    MAX_MANIFEST_BYTES,
    Topic,
    parse_topic,
)

# Every reason the ingest files a quarantined message under. "replayed" and "seq-conflict" are
# decided by the database (Store.store_batch: the seq is stored with the same body, or another).
REASONS = ("tampered", "replayed", "seq-conflict", "unknown-key", "revoked", "topic-mismatch", "malformed",
           "oversized", "unknown-payload-type")

# agent.central.verify reasons -> quarantine reasons. A correctly signed body that breaks the schema is
# "malformed"; a key that signs for another device ("key-binding") is a device mismatch, which
# the issue files with the topic/device mismatch.
VERIFY_TO_REASON = {
    "malformed": "malformed",
    "schema": "malformed",
    "unknown-payload-type": "unknown-payload-type",
    "unknown-key": "unknown-key",
    "revoked": "revoked",
    "bad-signature": "tampered",
    "key-binding": "topic-mismatch",
    "topic-mismatch": "topic-mismatch",
}


@dataclass(frozen=True)
class Ignored:
    kind: str


Outcome = Union[EventRow, ManifestRow, QuarantineRow, Ignored]


class Classifier:
    def __init__(self, verifier: Verifier, prefix: str = DEFAULT_PREFIX, max_bytes: int = MAX_EVENT_BYTES,
                 raw_cap: int = 4096, worker: str = "", max_manifest_bytes: int = MAX_MANIFEST_BYTES) -> None:
        self.verifier = verifier
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.max_manifest_bytes = max_manifest_bytes
        self.raw_cap = raw_cap
        self.worker = worker  # stored with each event: which ingest worker took it

    def reject(self, topic: str, device: str | None, reason: str, detail: str, payload: bytes,
               received_ms: int) -> QuarantineRow:
        return QuarantineRow(received_ms, topic[:512], device, reason, detail[:300], len(payload),
                             bytes(payload[: self.raw_cap]), reject_digest(topic, payload))

    def classify(self, topic: str, payload: bytes, received_ms: int) -> Outcome:
        t = parse_topic(self.prefix, topic)
        device = t.device if t else None
        if t is not None and t.kind in CONTROL_KINDS:
            return Ignored(t.kind)
        # Size first: an oversized message is never parsed.
        limit = self.max_manifest_bytes if t is not None and t.kind == MANIFEST else self.max_bytes
        if len(payload) > limit:
            return self.reject(topic, device, "oversized", f"{len(payload)} bytes > {limit}",
                               payload, received_ms)
        if t is not None and t.kind == MANIFEST:
            return self.manifest(topic, t, payload, received_ms)
        if t is None or t.kind != EVENT:
            return self.reject(topic, device, "topic-mismatch", "not an event topic", payload, received_ms)
        try:
            event = self.verifier.verify(bytes(payload), t.device)
        except SignatureError as exc:
            return self.reject(topic, device, VERIFY_TO_REASON.get(exc.reason, "malformed"), str(exc),
                               payload, received_ms)
        if event["site"] != t.site or event["type"] != t.event_type:
            return self.reject(topic, device, "topic-mismatch",
                               f"topic says {t.site}/{t.event_type}, event says {event['site']}/{event['type']}",
                               payload, received_ms)
        values = event.get("values", {})
        first, last = values.get("dropped_seq_first", 0), values.get("dropped_seq_last", 0)
        dropped = (first, last) if event["type"] == "heartbeat" and 0 < first <= last < event["seq"] else None
        interval, observed = values.get("interval_s"), values.get("observed_s")
        coverage = (interval, observed) if event["type"] == "count" and interval and observed is not None else None
        # The verified body is re-encoded for the parsed column; the envelope keeps the exact bytes.
        return EventRow(
            device=event["device"], seq=int(event["seq"]), site=event["site"], type=event["type"],
            boot=int(event["boot"]), ts_ms=int(event["ts_ms"]), event_id=event["id"],
            rule=event.get("rule"), label=event.get("label"), topic=topic, received_ms=received_ms,
            worker=self.worker,
            body=canonical_json(event).decode("ascii"), envelope=bytes(payload),
            dropped=dropped, coverage=coverage,
            source="replay" if event.get("source") == "replay" else "live",
        )

    def manifest(self, topic: str, t: Topic, payload: bytes, received_ms: int) -> ManifestRow | QuarantineRow:
        """A signed privacy manifest on {prefix}/{site}/{device}/manifest, bound to that device."""
        try:
            doc, sha = self.verifier.verify_manifest(bytes(payload))
        except SignatureError as exc:
            return self.reject(topic, t.device, VERIFY_TO_REASON.get(exc.reason, "malformed"),
                               f"manifest: {exc}", payload, received_ms)
        if doc["device"] != t.device or doc["site"] != t.site:
            return self.reject(topic, t.device, "topic-mismatch",
                               f"manifest of {doc['device']!r}/{doc['site']!r} on the topic of {t.device!r}/{t.site!r}",
                               payload, received_ms)
        return ManifestRow(sha, t.device, t.site, received_ms, bytes(payload))
