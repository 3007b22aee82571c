"""From one signed site bundle to two enrolled devices whose first events a real ingest stores,
through a real Mosquitto with mutual TLS, client certificates issued at approval and a per-device ACL."""

from __future__ import annotations

import argparse
import base64
import json
import logging
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.helpers import Subscriber, wait_until
from tests.ingest.ingest_env import IngestEnv
from tests.provision.provsite import ROOT, SITE, Device, Site, tls_broker

pytestmark = pytest.mark.slow


def emit(site: Site, dev: Device, count: int, name: str) -> str:
    """The device's real delivery path (outbox, signed envelopes, sender over mutual TLS, ingest acks)
    driven by agent.tools.emitter with the config first boot wrote and the key it made."""
    log = site.logs / f"{name}.log"
    proc = subprocess.run(
        [sys.executable, "-m", "agent.tools.emitter", "--config", str(dev.etc / "agent.toml"),
         "--key", str(dev.etc / "device.key"), "--state", str(dev.state), "--count", str(count),
         "--rate", "20", "--flush-s", "20"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    log.write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0 and "done" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


def stored(db: Path) -> list[tuple[str, int, str, str | None]]:
    con = sqlite3.connect(db)
    try:
        return [(d, int(s), t, r) for d, s, t, r in
                con.execute("SELECT device, seq, type, rule FROM events ORDER BY device, seq")]
    finally:
        con.close()


def quarantined(db: Path) -> list[tuple[str, str]]:
    con = sqlite3.connect(db)
    try:
        return [(str(d), str(r)) for d, r in con.execute("SELECT device, reason FROM quarantine")]
    finally:
        con.close()


def fingerprint_of(stdout: str) -> str:
    return stdout.split("fingerprint to read to the operator: ")[1].split()[0]


def test_bundle_to_two_enrolled_devices_stored_by_the_ingest(tmp_path: Path) -> None:
    site = Site(tmp_path)
    broker, ports = tls_broker(site)
    watcher = Subscriber("127.0.0.1", ports["plain"], "#", client_id="watcher")  # every topic, for the grep
    env = IngestEnv(site.central, "127.0.0.1", ports["plain"], f"sqlite:///{site.central / 'ingest.db'}")
    env.enrol([])
    secrets: list[Path] = []
    try:
        env.start_worker("ingest-1")
        ingest_toml = env.config("operator")  # the operator uses the ingest's broker account
        # -- operator: one bundle for the site, on A's boot partition (Trixie) and B's stick
        bundle = site.operator_setup(f"mqtts://127.0.0.1:{ports['events']}", f"mqtts://127.0.0.1:{ports['enrol']}",
                                     ingest_keys=env.pub_file)
        a, b = site.device("dev-a", "10000000aaaa0001"), site.device("dev-b", "10000000bbbb0002")
        assert bundle.stat().st_mode & 0o777 == 0o600  # the operator's copy: Wi-Fi key, enrolment password
        trust = site.op / "provisioning.pub.json"
        out = site.cli("provision", "write", bundle, "--trust", trust, "--to", a.boot, "--style", "trixie").stdout
        assert "network-config" in out and (a.boot / "network-config").is_file()
        site.cli("provision", "write", bundle, "--trust", trust, "--to", b.stick, "--style", "stick")
        # -- first boot of both devices from the same bundle
        boot_a = site.cli("firstboot", *a.args()).stdout
        boot_b = site.cli("firstboot", *b.args()).stdout
        for dev, text in ((a, boot_a), (b, boot_b)):
            assert f"device {dev.id} (serial {dev.serial}" in text
            assert f"enrolment request published on edge/v1/{SITE}/{dev.id}/enrol" in text
            assert (dev.etc / "device.key").stat().st_mode & 0o777 == 0o600
            assert (dev.etc / "mqtt.key").stat().st_mode & 0o777 == 0o600
            assert (dev.nm / "edge-agent-wifi.nmconnection").stat().st_mode & 0o777 == 0o600
            assert (dev.etc / "bundle.dsse").stat().st_mode & 0o777 == 0o600  # Wi-Fi key, enrolment password
            secrets += [dev.etc / "device.key", dev.etc / "mqtt.key"]
        assert (b.stick / "edge-agent" / "requests" / f"{b.id}.request.dsse").is_file()
        assert "from " + str(a.boot) in boot_a and "from " + str(b.stick) in boot_b
        fp_a, fp_b = fingerprint_of(boot_a), fingerprint_of(boot_b)
        # -- central: the requests, from the topic (both) and B's stick too; fingerprints to read aloud
        listing = site.cli("registry", "pending", "--config", ingest_toml, "--listen", "--from", b.stick).stdout
        assert f"{a.id}\tsite {SITE}\tfingerprint {fp_a}\tserial {a.serial}\tRaspberry Pi 4" in listing
        assert f"{b.id}\tsite {SITE}\tfingerprint {fp_b}" in listing and "2 pending" in listing
        ca = ["--ca-cert", site.pki["ca.crt"], "--ca-key", site.pki["ca.key"]]
        approve = ["--key", site.op / "provisioning.key", *ca, "--config", ingest_toml]
        wrong = site.refused("registry", "approve", a.id, *approve, "--fingerprint", fp_b)
        assert "does not match" in wrong
        site.cli("registry", "approve", a.id, *approve, "--fingerprint", fp_a, "--publish")
        site.cli("registry", "approve", b.id, *approve, "--fingerprint", fp_b, "--out", b.stick)
        # -- the approvals back on the devices: A's from its topic, B's from the stick
        got_a = site.cli("stick", *a.args(), "--from-broker").stdout
        got_b = site.cli("stick", *b.args()).stdout
        assert "certificate for " + a.id + " installed" in got_a and "certificate for " + b.id + " installed" in got_b
        # -- the two devices: different keys, different certificates (CN = device id, own TLS key)
        from cryptography import x509

        keys = {json.loads((d.etc / "device.pub.json").read_text())["keyid"] for d in (a, b)}
        certs = [x509.load_pem_x509_certificate((d.etc / "mqtt.crt").read_bytes()) for d in (a, b)]
        assert len(keys) == 2 and certs[0].public_key() != certs[1].public_key()
        assert [c.subject.rfc4514_string() for c in certs] == [f"CN={a.id}", f"CN={b.id}"]
        # -- each device's first event, over mutual TLS, stored by the real ingest
        emit(site, a, 1, "emitter-a")
        emit(site, b, 1, "emitter-b")
        db = site.central / "ingest.db"
        assert wait_until(lambda: {(d, s) for d, s, _, _ in stored(db)} >= {(a.id, 1), (b.id, 1)}, 20), stored(db)
        # -- B cannot publish as A: the broker denies it (0x87) and B raises its alarm, which is stored
        denied_as_other(site, a, b)
        assert wait_until(lambda: (b.id, "alarm") in {(d, t) for d, _, t, _ in stored(db)}, 20), stored(db)
        assert {(d, r) for d, _, t, r in stored(db) if t == "alarm"} == {(b.id, "publish_denied")}
        assert not any(d == a.id and t == "count" and s > 1 for d, s, t, _ in stored(db))
        # -- key rotation on A: a new key, signed by the old one; the seq counter goes on, no conflict
        old_key = site.root / "old-a-device.key"
        old_key.write_bytes((a.etc / "device.key").read_bytes())
        secrets.append(old_key)
        rotated = site.cli("rotate-key", *a.rotate_args()).stdout
        assert "from seq 2" in rotated
        site.cli("registry", "rotate", a.etc / "rotation.dsse", "--registry", site.registry)
        assert wait_until(lambda: "registry reloaded: 3 records" in env.workers[0].log.read_text(), 10)
        emit(site, a, 2, "emitter-a-rotated")
        assert wait_until(lambda: {s for d, s, _, _ in stored(db) if d == a.id} >= {1, 2, 3}, 20), stored(db)
        assert not [q for q in quarantined(db) if q[1] in ("seq-conflict", "revoked", "unknown-key")], quarantined(db)
        # a replayed rotation is refused
        line = site.refused("registry", "rotate", a.etc / "rotation.dsse", "--registry", site.registry)
        assert "refused key rotation" in line and "already rotated (replayed rotation)" in line
    finally:
        env.stop_all()
        watcher.close()
        broker.stop()
    (site.logs / "topics.txt").write_bytes(b"\n".join(t.encode() + b" " + p for t, p in watcher.messages))
    assert any(t.endswith("/enrol") for t, _ in watcher.messages)
    assert any(t.endswith("/enrolled") for t, _ in watcher.messages)
    no_private_key_anywhere(tmp_path, secrets + [site.op / "provisioning.key", env.keydir / "device.key",
                                                 site.pki["ca.key"], site.pki["server.key"]])


def denied_as_other(site: Site, a: Device, b: Device) -> None:
    """Device B's own agent (its config, key and certificate) with one row on A's topic."""
    from agent.commands import load_config
    from agent.delivery.mqtt import NOT_AUTHORIZED
    from agent.delivery.outbox import PRIORITY_EVENT
    from agent.protocol.body import encode
    from agent.protocol.dsse import EVENT_PAYLOAD_TYPE
    from agent.tools.emitter import Rig
    from agent.types import Observation

    handler = logging.FileHandler(site.logs / "device-b-denied.log")
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        cfg = load_config(argparse.Namespace(config=str(b.etc / "agent.toml"), state=str(b.state),
                                             key=str(b.etc / "device.key")))
        rig = Rig(cfg)
        sender = rig.sender
        assert sender is not None
        try:
            def foreign(seq: int) -> tuple[str, bytes]:
                obs = Observation("line_crossing", "door", "person", 0.0, {"count": 1}, "in")
                body = encode(rig.emitter.anonymizer.event(obs, seq, 0))  # type: ignore[arg-type]
                return f"edge/v1/{SITE}/{a.id}/event/line_crossing", rig.pub.key.envelope(EVENT_PAYLOAD_TYPE, body)

            bad = rig.outbox.append(foreign, PRIORITY_EVENT)
            assert wait_until(lambda: sender.denied >= 1, 20), sender.last_error
            assert sender.last_refused_code == NOT_AUTHORIZED
            alarms: list[object] = []
            assert wait_until(lambda: bool(alarms.extend(o for o in rig.health.tick(time.monotonic())
                                                         if o.type == "alarm") or alarms), 10)
            rig.emitter.emit(alarms)  # type: ignore[arg-type]
            assert bad in [r.seq for r in rig.outbox.peek(100)]  # kept, never lost silently
        finally:
            rig.close(10)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def needles(key_file: Path) -> list[bytes]:
    """Every form a private key could leak in: its file text, base64 body lines, raw and hex bytes."""
    text = key_file.read_bytes()
    body = b"".join(line for line in text.splitlines() if not line.startswith(b"-----"))
    raw = base64.b64decode(body)
    out = [body, raw, raw.hex().encode(), raw[-32:], raw[-32:].hex().encode(), base64.b64encode(raw[-32:])]
    out += [line for line in text.splitlines() if len(line) >= 24 and not line.startswith(b"-----")]
    return [n for n in out if len(n) >= 24]


def no_private_key_anywhere(root: Path, key_files: list[Path]) -> None:
    """grep of every file written (bundles, requests, approvals, configs, logs, topics, the ingest
    database, the broker's log) for every private key; only the key files themselves hold one."""
    keys = {k.resolve() for k in key_files}
    forms = [(k, n) for k in key_files for n in needles(k)]
    files = [p for p in root.rglob("*") if p.is_file() and p.resolve() not in keys]
    assert len(files) > 30
    leaks = []
    for f in files:
        data = f.read_bytes()
        if b"PRIVATE KEY" in data:
            leaks.append((f, "PRIVATE KEY"))
        leaks += [(f, k.name) for k, n in forms if n in data]
    assert not leaks, leaks
    # and the grep itself can fail: the key files do match
    assert all(any(n in k.read_bytes() for n in needles(k)) for k in key_files)
