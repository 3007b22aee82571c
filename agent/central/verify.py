"""Central-side verification: signature before parsing, then schema, key binding, dupes and gaps."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from agent.errors import SignatureError
from agent.protocol.enrolment import Enrolment
from agent.protocol.canonical import canonical_json
from agent.protocol.schema import errors as schema_errors, schema
from agent.protocol.dsse import (
    EVENT_PAYLOAD_TYPE,
    MANIFEST_PAYLOAD_TYPE,
    Verified,
    open_envelope,
    show_keyid,
    strict_json,
    verify_envelope,
)


def ranges_text(ranges: Iterable[Sequence[int]]) -> str:
    """Inclusive seq ranges for people: "4-7, 9" ("" for none)."""
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in ranges)


@dataclass
class DeviceProgress:
    """Per device: the highest contiguous seq, seqs seen above it, duplicates counted."""

    contiguous: int = 0
    above: set[int] = field(default_factory=set)
    duplicates: int = 0

    def add(self, seq: int) -> bool:
        """Record seq; False when it was seen before."""
        if seq <= self.contiguous or seq in self.above:
            self.duplicates += 1
            return False
        self.above.add(seq)
        while self.contiguous + 1 in self.above:
            self.contiguous += 1
            self.above.remove(self.contiguous)
        return True

    def gaps(self) -> list[tuple[int, int]]:
        """Missing seq ranges (inclusive) between the contiguous mark and the highest seen."""
        out = []
        prev = self.contiguous
        for s in sorted(self.above):
            if s > prev + 1:
                out.append((prev + 1, s - 1))
            prev = s
        return out


class Excerpt:
    """Seqs of a file of envelopes, in any order: seq -> body hash per device, gaps over the set.

    An excerpt starts at its lowest seq, not its first line. The same seq again with the same body
    is a duplicate; with another body it is a conflict (two different signed events, one seq).
    """

    def __init__(self) -> None:
        self.seen: dict[str, dict[int, str]] = {}

    def add(self, event: dict[str, Any]) -> str:
        """'new', 'duplicate' or 'conflict'."""
        digest = hashlib.sha256(canonical_json(event)).hexdigest()
        seqs = self.seen.setdefault(event["device"], {})
        seq = int(event["seq"])
        if seq not in seqs:
            seqs[seq] = digest
            return "new"
        return "duplicate" if seqs[seq] == digest else "conflict"

    def gaps(self) -> dict[str, list[tuple[int, int]]]:
        out: dict[str, list[tuple[int, int]]] = {}
        for device, seqs in self.seen.items():
            ranges, prev = [], None
            for s in sorted(seqs):
                if prev is not None and s > prev + 1:
                    ranges.append((prev + 1, s - 1))
                prev = s
            if ranges:
                out[device] = ranges
        return out


class Verifier:
    def __init__(self, registry: list[Enrolment]) -> None:
        self.by_keyid = {r.keyid: r for r in registry}
        # a rotated key still signs its device's events below the rotation's seq (checked in verify)
        self.active_keys = {r.keyid: r.public_key for r in registry if r.status in ("active", "rotated")}
        self.progress: dict[str, DeviceProgress] = {}

    def _signed(self, data: bytes, payload_type: str) -> Verified:
        """The signature check, before anything of the body is parsed."""
        try:
            return verify_envelope(data, self.active_keys, payload_type)
        except SignatureError as exc:
            if exc.reason == "unknown-key":
                _, _, sigs = open_envelope(data)
                revoked = [k for k, _ in sigs if k in self.by_keyid]
                if revoked:
                    raise SignatureError(
                        "revoked", f"key {show_keyid(revoked[0])} is revoked"
                    ) from None
            raise

    def verify(self, data: bytes, topic_device: str | None = None) -> dict[str, Any]:
        """The event dict of a valid envelope, or SignatureError with the reason."""
        v = self._signed(data, EVENT_PAYLOAD_TYPE)
        event = strict_json(v.body)
        problems = schema_errors(event, schema())
        if problems:
            raise SignatureError("schema", problems[0])
        assert isinstance(event, dict)
        rec = self.by_keyid[v.keyid]
        if event["device"] != rec.device_id or event["site"] != rec.site:
            raise SignatureError(
                "key-binding", f"key of {rec.device_id!r} signed an event of {event['device']!r}"
            )
        if rec.status == "rotated" and int(event["seq"]) >= rec.until_seq:
            raise SignatureError("revoked", f"key {show_keyid(rec.keyid)} was rotated at seq {rec.until_seq}; "
                                 f"seq {event['seq']} needs the new key")
        if topic_device is not None and topic_device != event["device"]:
            raise SignatureError(
                "topic-mismatch", f"topic device {topic_device!r} != {event['device']!r}"
            )
        return event

    def check(self, data: bytes, topic_device: str | None = None) -> tuple[dict[str, Any], bool]:
        """verify() and record the seq: (event, is_new)."""
        event = self.verify(data, topic_device)
        prog = self.progress.get(event["device"])
        if prog is None:
            prog = self.progress[event["device"]] = DeviceProgress()
        return event, prog.add(int(event["seq"]))

    def verify_manifest(self, data: bytes) -> tuple[dict[str, Any], str]:
        """A signed privacy manifest: (document, SHA-256 of its body, as events cite it)."""
        v = self._signed(data, MANIFEST_PAYLOAD_TYPE)
        doc = strict_json(v.body)
        if not isinstance(doc, dict) or doc.get("raw_video_egress") is not False:
            raise SignatureError(
                "schema", "a privacy manifest must be an object with raw_video_egress false"
            )
        rec = self.by_keyid[v.keyid]
        if doc.get("device") != rec.device_id or doc.get("site") != rec.site:
            raise SignatureError(
                "key-binding",
                f"key of {rec.device_id!r} signed a manifest of {doc.get('device')!r}",
            )
        return doc, hashlib.sha256(v.body).hexdigest()


def payload_type_of(data: bytes) -> str | None:
    """The envelope's claimed payloadType (unverified: only to choose the check), or None."""
    try:
        return open_envelope(data)[0]
    except SignatureError:
        return None
