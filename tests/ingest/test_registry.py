"""The registry: `edge-agent registry add | revoke | list`, and a running ingest picking up changes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from agent.central import registry
from agent.central.config import IngestConfig
from agent.protocol.enrolment import keygen, load_registry
from agent.central.ingest.batch import Message
from agent.central.ingest.worker import IngestWorker
from agent.protocol.body import encode
from agent.protocol.dsse import EVENT_PAYLOAD_TYPE, SigningKey
from tests.helpers import cli
from tests.ingest.ingest_streams import event, topic


def one_line(r) -> str:  # type: ignore[no-untyped-def]
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def test_add_revoke_list_through_the_cli(tmp_path: Path) -> None:
    reg = tmp_path / "registry.json"
    keygen(tmp_path / "a", "cam-1", "lab")
    keygen(tmp_path / "b", "cam-1", "lab")
    keygen(tmp_path / "c", "cam-2", "lab")
    pub_a, pub_b, pub_c = (str(tmp_path / x / "device.pub.json") for x in "abc")

    r = cli("registry", "add", pub_a, "--registry", str(reg))
    assert r.returncode == 0 and "enrolled cam-1" in r.stdout, r.stderr
    assert cli("registry", "add", pub_c, "--registry", str(reg)).returncode == 0
    assert "already enrolled" in one_line(cli("registry", "add", pub_a, "--registry", str(reg)))
    assert "revoke cam-1" in one_line(cli("registry", "add", pub_b, "--registry", str(reg)))
    assert "not found" in one_line(cli("registry", "add", str(tmp_path / "nope.json"), "--registry", str(reg)))

    r = cli("registry", "revoke", "cam-1", "--registry", str(reg))
    assert r.returncode == 0 and "revoked cam-1" in r.stdout
    assert "no active key" in one_line(cli("registry", "revoke", "cam-1", "--registry", str(reg)))
    assert "not in the registry" in one_line(cli("registry", "revoke", "cam-9", "--registry", str(reg)))
    # key rotation: once the old key is revoked, the device's new key can be enrolled
    assert cli("registry", "add", pub_b, "--registry", str(reg)).returncode == 0

    r = cli("registry", "list", "--registry", str(reg), "--json")
    assert r.returncode == 0
    listed = [(d["device_id"], d["status"], bool(d["enrolled_at"])) for d in json.loads(r.stdout)]
    assert listed == [("cam-1", "revoked", True), ("cam-2", "active", True), ("cam-1", "active", True)]
    text = cli("registry", "list", "--registry", str(reg)).stdout
    assert "3 records, 2 active" in text
    # the file is the shared format: {"devices": [records]} readable by agent.protocol.enrolment
    assert [r.status for r in load_registry(reg)] == ["revoked", "active", "active"]
    assert set(json.loads(reg.read_text())) == {"devices"}


def test_running_ingest_reloads_the_registry_when_the_file_changes(tmp_path: Path) -> None:
    keygen(tmp_path / "ingest", "ingest", "central")
    keygen(tmp_path / "dev", "dev-0", "s1")
    reg = tmp_path / "registry.json"
    registry.add(reg, registry.read_record(tmp_path / "dev" / "device.pub.json"))
    cfg = IngestConfig(registry=str(reg), database=f"sqlite:///{tmp_path / 'i.db'}",
                       key=str(tmp_path / "ingest" / "device.key"))
    worker = IngestWorker.from_config(cfg)  # not connected: pipeline and registry watch only
    key = SigningKey.load(tmp_path / "dev" / "device.key")

    def send(seq: int):  # type: ignore[no-untyped-def]
        env = key.envelope(EVENT_PAYLOAD_TYPE, encode(event("dev-0", seq)))
        return worker.pipeline.process([Message(topic("dev-0"), env, seq)])

    assert send(1).stored == 1
    worker.reload_registry()  # unchanged file: nothing to do
    assert worker.registry.reloads == 0
    # the edit a second later: its mtime is set, not waited for
    edited = reg.stat().st_mtime_ns + 1_000_000_000
    registry.revoke(reg, "dev-0")
    os.utime(reg, ns=(edited, edited))
    worker.reload_registry()
    assert worker.registry.reloads == 1
    r = send(2)
    assert r.stored == 0 and r.quarantined == {"revoked": 1}
    # a broken registry file is refused and the last good one stays in force
    edited = reg.stat().st_mtime_ns + 1_000_000_000
    reg.write_text("{broken")
    os.utime(reg, ns=(edited, edited))
    worker.reload_registry()
    assert worker.registry.reloads == 1
    assert send(3).quarantined == {"revoked": 1}
    worker.store.close()
