"""Real footage through `edge-agent replay`: what leaves is verified with `cryptography` alone.

The envelopes are checked without this project's signing code (hand-built PAE, the enrolment
record's base64 key), every body against the JSON Schema with the jsonschema package, and every
payload for image data; the outbox rows are the same bytes, and each event cites the manifest
that `edge-agent privacy-report` prints for the same config.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sqlite3
import stat
from pathlib import Path

import jsonschema
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.helpers import ROOT, cli

IMAGE_MAGIC = [b"\xff\xd8\xff", b"\x89PNG", b"GIF87a", b"GIF89a", b"/9j/", b"iVBORw0KGgo", b"R0lGOD", b"UklGR",
               b"data:image"]


def pae(ptype: bytes, body: bytes) -> bytes:
    return b"DSSEv1 " + str(len(ptype)).encode() + b" " + ptype + b" " + str(len(body)).encode() + b" " + body


def cryptography_verify(envelope: bytes, record: dict) -> bytes:  # type: ignore[type-arg]
    """DSSE verification with the `cryptography` package only; returns the verified body."""
    env = json.loads(envelope)
    assert set(env) == {"payloadType", "payload", "signatures"}
    body = base64.b64decode(env["payload"], validate=True)
    (sig,) = env["signatures"]
    assert sig["keyid"] == record["keyid"]
    public = base64.b64decode(record["public_key"])
    assert hashlib.sha256(public).hexdigest() == record["keyid"]
    Ed25519PublicKey.from_public_bytes(public).verify(
        base64.b64decode(sig["sig"]), pae(env["payloadType"].encode(), body))
    return body


@pytest.mark.slow
def test_replay_of_real_footage(tmp_path: Path, model_dir: Path, clip: Path) -> None:
    keys = tmp_path / "keys"
    k = cli("keygen", "--out", str(keys), "--device-id", "cam-1", "--site", "lab")
    assert k.returncode == 0, k.stderr
    key_file = keys / "device.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    secret = key_file.read_text().strip()
    assert secret not in k.stdout + k.stderr
    record = json.loads((keys / "device.pub.json").read_text())
    assert set(record) == {"device_id", "site", "keyid", "public_key"}
    assert json.loads(k.stdout) == record

    cfg = tmp_path / "agent.toml"
    cfg.write_text(f'[device]\nid = "cam-1"\nsite = "lab"\n\n[detector]\nmodel_dir = "{model_dir}"\n')
    out = tmp_path / "events.jsonl"
    state = tmp_path / "state"
    r = cli("replay", str(clip), "--config", str(cfg), "--key", str(key_file), "--state", str(state),
            "--events-out", str(out), "--max-frames", "400")
    assert r.returncode == 0, r.stderr
    assert "throwaway" not in r.stderr  # --key was used
    assert not (state / "device.key").exists()

    lines = out.read_bytes().splitlines()
    assert len(lines) >= 2, "the real model found too little in the real clip"
    schema = json.loads((ROOT / "agent" / "protocol" / "event.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    bodies = []
    for line in lines:
        body = cryptography_verify(line, record)
        with pytest.raises(InvalidSignature):  # and the check can fail
            Ed25519PublicKey.from_public_bytes(base64.b64decode(record["public_key"])).verify(
                base64.b64decode(json.loads(line)["signatures"][0]["sig"]), pae(b"x", body))
        assert len(line) <= 4096
        assert body.isascii()
        for magic in IMAGE_MAGIC:
            assert magic not in body and magic not in line
        event = json.loads(body)
        validator.validate(event)  # additionalProperties: false -> no field outside the schema
        assert not any(isinstance(v, float) for v in event["values"].values())
        bodies.append(event)
    assert [e["seq"] for e in bodies] == list(range(1, len(bodies) + 1))
    assert all(re.fullmatch(r"[0-9a-f]{32}", e["id"]) for e in bodies)
    assert len({e["id"] for e in bodies}) == len(bodies)
    assert {(e["device"], e["site"], e["boot"], e["model"]) for e in bodies} == {
        ("cam-1", "lab", 1, "yolox_nano_ti_lite_416_int8")}  # the default model
    assert max(e["values"].get("count", 0) for e in bodies) >= 1

    # the outbox holds exactly the bytes that were written out (nothing serialized twice)
    db = sqlite3.connect(str(state / "outbox.db"))
    stored = [bytes(row[0]) for row in db.execute("SELECT envelope FROM outbox ORDER BY seq")]
    db.close()
    assert stored == lines

    # each event cites the manifest privacy-report prints for the same config
    m = cli("privacy-report", "--config", str(cfg), "--key", str(key_file), "--json")
    assert m.returncode == 0, m.stderr
    manifest_body = m.stdout.rstrip("\n").encode()
    doc = json.loads(manifest_body)
    assert doc["raw_video_egress"] is False
    assert {e["manifest"] for e in bodies} == {hashlib.sha256(manifest_body).hexdigest()}

    signed = cli("privacy-report", "--config", str(cfg), "--key", str(key_file), "--signed")
    assert signed.returncode == 0, signed.stderr
    assert cryptography_verify(signed.stdout.strip().encode(), record) == manifest_body
    both = tmp_path / "with-manifest.jsonl"
    both.write_bytes(signed.stdout.encode() + out.read_bytes())
    v = cli("verify", str(both), "--registry", str(keys / "device.pub.json"))
    assert v.returncode == 0, v.stdout
    assert "line 1: MANIFEST cam-1" in v.stdout and f"verified: {len(lines) + 1} ok, 0 bad" in v.stdout
