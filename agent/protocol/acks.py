"""Ingest acks, one definition for both ends: the body, its signed envelope, the device's check."""

from __future__ import annotations

from agent.errors import SignatureError
from agent.protocol.canonical import canonical_json
from agent.protocol.dsse import ACK_PAYLOAD_TYPE, SigningKey, strict_json, verify_envelope


def ack_body(device: str, site: str, seq: int, ts_ms: int) -> bytes:
    """The canonical ack body: what the ingest signs and ack_seq reads (tests and the bench use it
    as a stand-in ingest too)."""
    return canonical_json(
        {"v": 1, "device": device, "site": site, "seq": int(seq), "ts_ms": int(ts_ms)}
    )


def ack_envelope(key: SigningKey, device: str, site: str, seq: int, ts_ms: int) -> bytes:
    """The ingest's signed ack: the device may let every row up to seq go."""
    return key.envelope(ACK_PAYLOAD_TYPE, ack_body(device, site, seq, ts_ms))


def ack_seq(data: bytes, keys: dict[str, bytes], device: str, site: str) -> int:
    """The highest contiguous seq a valid ack names for this device; SignatureError otherwise."""
    v = verify_envelope(data, keys, ACK_PAYLOAD_TYPE)
    body = strict_json(v.body)
    if not isinstance(body, dict) or body.get("v") != 1:
        raise SignatureError("schema", "ack body is not {v: 1, ...}")
    if body.get("device") != device or body.get("site") != site:
        raise SignatureError("key-binding", "ack names another device or site")
    seq = body.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise SignatureError("schema", "ack seq is not a non-negative integer")
    return seq
