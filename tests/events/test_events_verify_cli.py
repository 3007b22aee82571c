"""`edge-agent verify`: one line per envelope with its reason, duplicates, gaps, manifests, exit code."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from agent.privacy import manifest as privacy_manifest
from agent.config import parse
from agent.errors import SignatureError
from agent.protocol.enrolment import save_registry
from agent.protocol.dsse import MANIFEST_PAYLOAD_TYPE
from agent.types import Observation
from agent.central.verify import Verifier
from tests.events.eventkit import Device, make_device
from tests.helpers import cli


def _tamper(env: bytes) -> bytes:
    d = json.loads(env)
    body = bytearray(base64.b64decode(d["payload"]))
    body[body.index(b'"count":') + 8] = ord("9")
    d["payload"] = base64.b64encode(bytes(body)).decode()
    return json.dumps(d, separators=(",", ":")).encode()


def test_verify_reports_each_problem_on_its_line(device: Device, tmp_path: Path) -> None:
    other = make_device("cam-2", "lab")
    registry = tmp_path / "registry.json"
    save_registry(registry, [device.record, other.record])
    envs = [device.envelope(seq) for seq in range(1, 6)]
    lines = [
        envs[0],            # 1 ok
        envs[1],            # 2 ok
        envs[1],            # 3 duplicate of seq 2
        _tamper(envs[2]),   # 4 bad-signature (seq 3 then counts as missing)
        envs[4],            # 5 ok, seq 5: seq 3 and 4 are a gap
        make_device().envelope(6),  # 6 unknown key
        other.envelope(1),  # 7 ok, another device
        b"not json",        # 8 malformed
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    r = cli("verify", str(path), "--registry", str(registry))
    assert r.returncode == 1
    out = r.stdout.splitlines()
    assert out[0].startswith("line 1: OK ") and out[1].startswith("line 2: OK ")
    assert out[2] == "line 3: DUPLICATE cam-1 seq 2"
    assert out[3].startswith("line 4: BAD bad-signature")
    assert out[5].startswith("line 6: BAD unknown-key")
    assert out[6].startswith("line 7: OK ") and '"device": "cam-2"' in out[6]
    assert out[7].startswith("line 8: BAD malformed")
    assert "cam-1: seq gaps 3-4" in out
    assert out[-1] == "verified: 4 ok, 3 bad, 1 duplicates, 1 gaps"

    good = tmp_path / "good.jsonl"
    good.write_bytes(b"\n".join(envs) + b"\n")
    r = cli("verify", "-", "--registry", str(registry), "--quiet", stdin=good.read_bytes())
    assert r.returncode == 0 and r.stdout.strip() == "verified: 5 ok, 0 bad, 0 duplicates, 0 gaps"

    r = cli("verify", str(tmp_path / "missing.jsonl"), "--registry", str(registry))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not found" in r.stderr


def test_manifest_citations_are_checked(device: Device, tmp_path: Path) -> None:
    cfg = parse({"device": {"id": "cam-1", "site": "lab"}})
    body = privacy_manifest.manifest_body(privacy_manifest.build(cfg, "ef" * 32))
    signed = device.key.envelope(MANIFEST_PAYLOAD_TYPE, body)
    doc, sha = Verifier([device.record]).verify_manifest(signed)
    assert sha == privacy_manifest.manifest_hash(body) and doc["device"] == "cam-1"
    # another device's key cannot vouch for cam-1's manifest
    other = make_device("cam-2", "lab")
    with pytest.raises(SignatureError) as exc:
        Verifier([other.record]).verify_manifest(other.key.envelope(MANIFEST_PAYLOAD_TYPE, body))
    assert exc.value.reason == "key-binding"
    # the fixture's events cite another manifest hash: with a manifest in the input, that is reported
    registry = tmp_path / "registry.json"
    save_registry(registry, [device.record])
    event = device.envelope(1, Observation("occupancy", "z", "person", 0.0, {"count": 1}))
    r = cli("verify", "-", "--registry", str(registry), stdin=signed + b"\n" + event + b"\n")
    assert r.returncode == 1
    assert f"line 1: MANIFEST cam-1 sha256 {sha}" in r.stdout
    assert "BAD cited by 1 event(s) but not among the verified manifests" in r.stdout
    # each envelope counted once: the event's signature is good, its manifest is what is missing
    last = r.stdout.strip().splitlines()[-1]
    assert last == "verified: 2 ok, 0 bad, 0 duplicates, 0 gaps, 1 citing a manifest not verified here"


def test_excerpt_out_of_order_and_seq_conflicts(device: Device, tmp_path: Path) -> None:
    registry = tmp_path / "registry.json"
    save_registry(registry, [device.record])
    envs = {seq: device.envelope(seq) for seq in range(3, 9)}
    # an excerpt in any order starts at its lowest seq: 5, 3, 4 are three fresh events, no gap
    r = cli("verify", "-", "--registry", str(registry), "--quiet", stdin=b"\n".join([envs[5], envs[3], envs[4]]))
    assert r.returncode == 0 and r.stdout.strip() == "verified: 3 ok, 0 bad, 0 duplicates, 0 gaps", r.stdout
    # the same seq signed with another body is a conflict, not a duplicate; a gap below 8 is found late
    other = device.envelope(4, Observation("occupancy", "zone-b", "person", 2.0, {"count": 1}))
    r = cli("verify", "-", "--registry", str(registry), "--quiet",
            stdin=b"\n".join([envs[8], envs[4], other, envs[4], envs[3]]))
    assert r.returncode == 1
    out = r.stdout.splitlines()
    assert out[0] == "line 3: BAD seq-conflict: cam-1 seq 4 seen before with another body"
    assert out[1] == "line 4: DUPLICATE cam-1 seq 4"
    assert "cam-1: seq gaps 5-7" in out
    assert out[-1] == "verified: 3 ok, 1 bad, 1 duplicates, 1 gaps"
