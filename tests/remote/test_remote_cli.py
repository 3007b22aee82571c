"""`edge-agent config sign|push|status`: a change signed by the tool is what the device accepts, a
change the device would refuse is refused by the tool in one line, push leaves it retained on the
device's cmd topic, and status reads what each device runs from the ingest's store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.central.config_status import lines, status
from agent.central.store import open_store
from agent.central.store.rows import EventRow, ManifestRow
from agent.protocol import change as ch
from agent.protocol.dsse import verify_envelope
from agent.protocol.enrolment import keygen
from tests.helpers import Subscriber, cli, wait_until


def test_sign_then_push_leaves_a_retained_verifiable_change(tmp_path: Path, mosquitto: Any) -> None:
    op = keygen(tmp_path / "op", "alice", "operators")
    settings = tmp_path / "change.toml"
    settings.write_text('[[zones]]\nid = "door"\npolygon = [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0]]\n'
                        "[health]\nheartbeat_s = 30\n")
    out = tmp_path / "change.dsse"
    key = str(tmp_path / "op" / "device.key")
    r = cli("config", "sign", "--key", key, "--site", "lab", "--device", "cam-1", "--version", "3",
            "--settings", str(settings), "--command", "heartbeat", "--out", str(out))
    assert r.returncode == 0, r.stderr
    v = verify_envelope(out.read_bytes().strip(), {op.keyid: op.public_key}, ch.CHANGE_PAYLOAD_TYPE)
    change = ch.parse(v.body)
    assert (change.version, change.base_version, change.device) == (3, 2, "cam-1")
    assert set(change.settings) == {"zones", "health.heartbeat_s"}
    assert change.commands == ("heartbeat",)
    assert 0 < change.expires - change.issued <= 3600

    cfg = tmp_path / "op.toml"
    cfg.write_text(f'[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\n')
    r = cli("config", "push", str(out), "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    sub = Subscriber(mosquitto.host, mosquitto.port, "edge/v1/lab/cam-1/cmd")
    try:
        assert wait_until(lambda: sub.payloads(), 10)
        assert sub.payloads()[0] == out.read_bytes().strip()  # retained, byte for byte
    finally:
        sub.close()

    # the central side's own file works too: its [ingest] says where the broker is
    ingest = tmp_path / "ingest.toml"
    ingest.write_text(f'[ingest]\nbroker = "mqtt://{mosquitto.host}:{mosquitto.port}"\n')
    r = cli("config", "push", str(out), "--config", str(ingest))
    assert r.returncode == 0 and "pushed version 3" in r.stdout, r.stderr
    # nothing listening: said as a connection problem, not as a change the broker did not take
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    cfg.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {free}\n')
    r = cli("config", "push", str(out), "--config", str(cfg))
    assert r.returncode == 2 and "cannot reach the MQTT broker" in r.stderr and "acknowledge" not in r.stderr
    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes the connection, never answers
        cfg.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {silent.getsockname()[1]}\nconnect_timeout_s = 1\n')
        r = cli("config", "push", str(out), "--config", str(cfg))
    assert r.returncode == 2 and "sent no CONNACK in 1 s" in r.stderr and "acknowledge" not in r.stderr


def test_sign_refuses_what_a_device_would_refuse_in_one_line(tmp_path: Path) -> None:
    keygen(tmp_path / "op", "alice", "operators")
    bad = tmp_path / "bad.toml"
    bad.write_text("[privacy]\ngrid = 0\n")
    r = cli("config", "sign", "--key", str(tmp_path / "op" / "device.key"), "--site", "lab",
            "--version", "1", "--settings", str(bad))
    assert r.returncode == 2 and "denied-setting" in r.stderr and "privacy" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    # a typo'd key or a wrong type is refused by every device whatever its config: said here, not
    # found out on the device
    for text, says in (('[[zones]]\nid = "door"\npolgon = [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0]]\n',
                        "unknown config key 'zones[0].polgon'; did you mean 'polygon'?"),
                       ("[health]\nheartbeat_s = \"often\"\n", "health.heartbeat_s")):
        bad.write_text(text)
        out = tmp_path / "change.dsse"
        r = cli("config", "sign", "--key", str(tmp_path / "op" / "device.key"), "--site", "lab",
                "--version", "1", "--settings", str(bad), "--out", str(out))
        assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not out.exists()


def test_status_reads_versions_and_manifests_from_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ingest.db'}"
    store = open_store(url)
    try:
        store.migrate()

        def row(seq: int, etype: str, body: dict[str, Any]) -> EventRow:
            full = {"device": "cam-1", "site": "lab", "seq": seq, "type": etype, **body}
            return EventRow("cam-1", seq, "lab", etype, 1, 0, f"{seq:032x}", None, None, "t", 0,
                            "w", json.dumps(full), b"env")

        store.store_batch([row(1, "heartbeat", {"manifest": "a" * 64}),
                           row(2, "config", {"manifest": "b" * 64, "reason": "applied",
                                             "values": {"version": 4, "config_version": 4}}),
                           row(3, "config", {"manifest": "b" * 64, "reason": "expired",
                                             "values": {"version": 5, "config_version": 4}})],
                          [], manifests=[ManifestRow("b" * 64, "cam-1", "lab", 5, b"m")])
        entries = status(store)
    finally:
        store.close()
    [d] = entries
    assert (d.version, d.last_result, d.last_result_version, d.manifest, d.manifest_stored) == (
        4, "expired", 5, "b" * 64, "b" * 64)
    assert "config version 4" in lines(entries)[0]
    r = cli("config", "status", "--database", url, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["version"] == 4
