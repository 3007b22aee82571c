"""Signed remote configuration end to end on a real Mosquitto and a running
`edge-agent replay --realtime`: a zone moves mid-run without a restart, every bad change is
refused with a signed result event and nothing applied, an older change stays refused after a
restart, and a change published while the device was offline is applied when it comes back."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.protocol import change as ch
from agent.protocol.dsse import MANIFEST_PAYLOAD_TYPE, SigningKey, verify_envelope
from agent.protocol.enrolment import Enrolment
from tests.helpers import ROOT, Subscriber, stop_by_pid, wait_until
from tests.remote.rkit import MOVED, ZONE, key_record_file, signed

OPERATOR = SigningKey.from_seed(b"O" * 32)
INTRUDER = SigningKey.from_seed(b"X" * 32)
BASE = "edge/v1/lab/cam-1"
ELSEWHERE = {"id": "door", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]}


class Device:
    """A realtime looping replay with [mqtt] and [remote], and a subscriber to all it publishes."""

    def __init__(self, tmp: Path, broker: Any, model_dir: Path, clip: Path) -> None:
        self.tmp, self.broker, self.clip = tmp, broker, clip
        self.state = tmp / "state"
        self.cfg = tmp / "device.toml"
        zone = json.dumps(ZONE["polygon"])
        self.cfg.write_text(
            f'[device]\nid = "cam-1"\nsite = "lab"\nstate_dir = "{self.state}"\n'
            f'[detector]\nmodel_dir = "{model_dir}"\n[source]\nloop = true\n'
            f'[[zones]]\nid = "door"\npolygon = {zone}\n[health]\nheartbeat_s = 1.0\n'
            f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
            f'[remote]\noperator_keys = "{key_record_file(OPERATOR, tmp / "operator.pub.json")}"\n'
            f'clock = "trusted"\n'
        )
        self.sub = Subscriber(broker.host, broker.port, f"{BASE}/#")
        self.proc: subprocess.Popen[bytes] | None = None
        self.keys: dict[str, bytes] = {}

    def start(self) -> None:
        before = len(self.sub.payloads("/status"))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent",
                "replay",
                str(self.clip),
                "--realtime",
                "--publish",  # a replay reaches the broker (and its cmd topic) only when asked
                "--config",
                str(self.cfg),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=open(self.tmp / "agent.log", "ab"),
        )
        assert wait_until(
            lambda: self.sub.payloads("/status")[before:].count(b"online") > 0, 120
        ), self.log()
        rec = Enrolment.from_json(json.loads((self.state / "device.pub.json").read_text()))
        self.keys = {rec.keyid: rec.public_key}

    def stop(self) -> None:
        if self.proc is not None:
            stop_by_pid(self.proc, grace_s=30)
            self.proc = None

    def log(self) -> str:
        return (self.tmp / "agent.log").read_text()[-1500:]

    def events(self) -> list[dict[str, Any]]:
        out = []
        for payload in self.sub.payloads():
            try:
                v = verify_envelope(payload, self.keys)  # events only, signed by this device
            except Exception:
                continue
            out.append(json.loads(v.body))
        return out

    def results(self) -> list[dict[str, Any]]:
        return [e for e in self.events() if e["type"] == "config"]

    def publish(self, payload: bytes, retain: bool = False) -> None:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        c.connect(self.broker.host, self.broker.port)
        c.loop_start()
        info = c.publish(f"{BASE}/cmd", payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        c.disconnect()
        c.loop_stop()

    def result_of(self, payload: bytes, retain: bool = False) -> dict[str, Any]:
        n = len(self.results())
        self.publish(payload, retain)
        assert wait_until(lambda: len(self.results()) > n, 60), self.log()
        return self.results()[n]

    def manifest(self) -> tuple[str, dict[str, Any]]:
        """The retained manifest as a new subscriber gets it: (sha256 of the body, document)."""
        sub = Subscriber(self.broker.host, self.broker.port, f"{BASE}/manifest")
        try:
            assert wait_until(lambda: sub.payloads(), 10)
            v = verify_envelope(sub.payloads()[-1], self.keys, MANIFEST_PAYLOAD_TYPE)
        finally:
            sub.close()
        return hashlib.sha256(v.body).hexdigest(), json.loads(v.body)


def e6(points: list[list[float]]) -> list[list[int]]:
    return [[round(x * 1e6), round(y * 1e6)] for x, y in points]


@pytest.mark.slow
def test_remote_configuration_on_a_running_device(
    tmp_path: Path, mosquitto: Any, model_dir: Path, clip: Path
) -> None:
    dev = Device(tmp_path, mosquitto, model_dir, clip)
    try:
        dev.start()
        assert wait_until(lambda: any(e["type"] == "heartbeat" for e in dev.events()), 60), (
            dev.log()
        )
        old_hash, doc = dev.manifest()
        assert doc["rules"][0]["polygon"] == e6(ZONE["polygon"])
        boot = dev.events()[0]["boot"]

        # 1. a valid change moves the zone mid-run, without a restart
        v1 = signed(OPERATOR, 1, {"zones": [MOVED]})
        res = dev.result_of(v1)
        assert (res["reason"], res["values"]) == ("applied", {"version": 1, "config_version": 1})
        new_hash, doc = dev.manifest()
        assert new_hash != old_hash and doc["rules"][0]["polygon"] == e6(MOVED["polygon"])
        assert res["manifest"] == new_hash and res["boot"] == boot
        assert wait_until(lambda: any(e["seq"] > res["seq"] for e in dev.events()), 30)
        later = [e for e in dev.events() if e["seq"] >= res["seq"]]
        assert later and all(e["manifest"] == new_hash and e["boot"] == boot for e in later)
        assert dev.proc is not None and dev.proc.poll() is None

        # 2. refused, each with a signed result naming why, and nothing applied
        cases: list[tuple[bytes, str, str]] = [
            (
                ch.change_body(ch.Change("lab", "cam-1", 2, 1, 0, 2**40, {"zones": [ELSEWHERE]})),
                "unsigned",
                "",
            ),
            (signed(INTRUDER, 2, {"zones": [ELSEWHERE]}), "unknown-key", ""),
            (_one_byte(signed(OPERATOR, 2, {"zones": [ELSEWHERE]})), "bad-signature", ""),
            (v1, "replayed", ""),
            (signed(OPERATOR, 1, {"zones": [ELSEWHERE]}, base=0), "stale-version", ""),
            (
                signed(OPERATOR, 2, {"zones": [ELSEWHERE]}, issued=1_000_000, expires_in=60),
                "expired",
                "",
            ),
            (signed(OPERATOR, 2, {"zones": [ELSEWHERE]}, device="cam-2"), "wrong-target", ""),
            (
                signed(
                    OPERATOR,
                    2,
                    {"zones": [{"id": "door", "polygon": [[0, 0], [1, 1]]}]},
                    check=False,
                ),
                "invalid-value",
                "zones",
            ),
        ]
        for key in ch.DENIED:
            cases.append(
                (
                    signed(OPERATOR, 2, {key: 0, "zones": [ELSEWHERE]}, check=False),
                    "denied-setting",
                    key,
                )
            )
        for payload, reason, setting in cases:
            res = dev.result_of(payload)
            assert (res["reason"], res.get("rule", "")) == (reason, setting), (reason, dev.log())
            assert res["values"]["config_version"] == 1 and res["manifest"] == new_hash
        assert dev.manifest()[0] == new_hash
        dev.stop()

        # 3. an older change stays refused after a restart (published retained while away)
        dev.publish(signed(OPERATOR, 1, {"zones": [ELSEWHERE]}, base=0), retain=True)
        dev.start()
        assert wait_until(
            lambda: any(
                r["values"]["version"] == 1 and r["reason"] == "stale-version" and r["boot"] > boot
                for r in dev.results()
            ),
            60,
        ), dev.log()
        assert dev.manifest()[0] == new_hash
        dev.stop()

        # 4. a change published while the device is offline is applied when it comes back
        dev.publish(signed(OPERATOR, 2, {"zones": [ELSEWHERE]}), retain=True)
        dev.start()
        assert wait_until(
            lambda: any(
                r["values"]["version"] == 2 and r["reason"] == "applied" for r in dev.results()
            ),
            60,
        ), dev.log()
        third_hash, doc = dev.manifest()
        assert doc["rules"][0]["polygon"] == e6(ELSEWHERE["polygon"]) and third_hash != new_hash
        applied = [r for r in dev.results() if r["reason"] == "applied"]
        assert [r["values"]["version"] for r in applied] == [1, 2]
        # the retained change is handed over again on every connection: it is not applied twice
        dev.stop()
        dev.start()
        assert wait_until(
            lambda: (
                sum(e["type"] == "heartbeat" and e["manifest"] == third_hash for e in dev.events())
                >= 2
            ),
            60,
        )
        assert [r["values"]["version"] for r in dev.results() if r["reason"] == "applied"] == [1, 2]
    finally:
        dev.stop()
        dev.sub.close()


def _one_byte(envelope: bytes) -> bytes:
    i = envelope.index(b'"payload":"') + 30
    return envelope[:i] + (b"A" if envelope[i : i + 1] != b"A" else b"B") + envelope[i + 1 :]
