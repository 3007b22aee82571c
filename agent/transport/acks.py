"""Ingest acks: load the trusted ingest keys, verify a signed ack before parsing, return its seq."""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

from agent.errors import ConfigError, SignatureError
from agent.jsonfile import read_json
from agent.sign import ACK_PAYLOAD_TYPE, key_id, strict_json, verify_envelope


def load_ingest_keys(path: str) -> dict[str, bytes]:
    """keyid -> raw public key from a JSON record {keyid, public_key} or a list of them."""
    if not path:
        raise ConfigError("outbox.ack = 'ingest' needs outbox.ingest_keys (the ingest's public key file)")
    data = read_json(Path(path).expanduser(), "outbox.ingest_keys file", ConfigError)
    if isinstance(data, dict) and "keys" in data:
        data = data["keys"]
    records = data if isinstance(data, list) else [data]
    keys: dict[str, bytes] = {}
    for i, rec in enumerate(records):
        try:
            pub = base64.b64decode(rec["public_key"], validate=True)
            kid = str(rec["keyid"])
        except (KeyError, TypeError, binascii.Error):
            raise ConfigError(f"outbox.ingest_keys record {i + 1} needs keyid and base64 public_key") from None
        if len(pub) != 32 or key_id(pub) != kid:
            raise ConfigError(f"outbox.ingest_keys record {i + 1}: keyid does not match its public key")
        keys[kid] = pub
    if not keys:
        raise ConfigError(f"outbox.ingest_keys file {path!r} holds no key")
    return keys


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


def ack_body(device: str, site: str, seq: int, ts_ms: int) -> bytes:
    """The canonical ack body: what the ingest signs and this module's ack_seq reads (one definition
    for both ends of the contract; tests and the bench use it as a stand-in ingest too)."""
    return json.dumps({"v": 1, "device": device, "site": site, "seq": int(seq), "ts_ms": int(ts_ms)},
                      sort_keys=True, separators=(",", ":")).encode()
