"""The ingest database's rows: verified events, manifests, quarantined messages, device marks."""

from __future__ import annotations

import hashlib

from dataclasses import dataclass
from typing import Any

EVENT_COLUMNS = ("device", "seq", "site", "type", "boot", "ts_ms", "event_id", "rule", "label",
                 "topic", "received_ms", "worker", "body", "envelope", "source")


@dataclass(frozen=True)
class EventRow:
    """A verified event ready to store: the parsed columns plus the exact envelope bytes."""

    device: str
    seq: int
    site: str
    type: str
    boot: int
    ts_ms: int
    event_id: str
    rule: str | None
    label: str | None
    topic: str
    received_ms: int
    worker: str
    body: str
    envelope: bytes
    dropped: tuple[int, int] | None = None  # a heartbeat's report of seqs the device dropped
    coverage: tuple[int, int] | None = None  # a count event's (interval_s, observed_s)
    source: str = "live"  # "replay": the device made it from recorded footage (signed in the body)

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, c) for c in EVENT_COLUMNS)


@dataclass(frozen=True)
class ManifestRow:
    """A verified privacy manifest: the SHA-256 of its body and the exact envelope bytes."""

    sha256: str
    device: str
    site: str
    received_ms: int
    envelope: bytes


@dataclass(frozen=True)
class QuarantineRow:
    received_ms: int
    topic: str
    device: str | None
    reason: str
    detail: str
    size: int
    raw: bytes
    digest: str = ""  # SHA-256 of topic and whole message: the same reject again is one row, counted
    copies: int = 1  # how many times that message was received (a device re-sending what is never acked)


def reject_digest(topic: str, payload: bytes) -> str:
    """What makes two rejects the same message: its topic and every byte of it (not the kept prefix)."""
    return hashlib.sha256(topic.encode("utf-8", "replace") + b"\0" + bytes(payload)).hexdigest()


@dataclass(frozen=True)
class DeviceMark:
    device: str
    site: str
    contiguous: int
    max_seq: int
    replayed: int
    conflicts: int = 0
    conflict_seq: int = 0  # lowest seq stored with another body than the device last sent; 0: none

    @property
    def ack_seq(self) -> int:
        """What the device may be acked up to: never at or past a seq conflict."""
        return min(self.contiguous, self.conflict_seq - 1) if self.conflict_seq else self.contiguous
