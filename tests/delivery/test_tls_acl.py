"""Mutual TLS and a per-device ACL on the username: own topics pass, another device's is denied (0x87)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from agent.config import MqttConfig
from agent.protocol.body import encode
from agent.delivery.heartbeat import Health
from agent.config import HealthConfig
from agent.protocol.enrolment import enrolment
from agent.delivery.outbox import PRIORITY_EVENT
from agent.delivery.mqtt import NOT_AUTHORIZED, Session
from agent.protocol.dsse import EVENT_PAYLOAD_TYPE
from agent.types import Observation
from agent.central.verify import Verifier
from tests.delivery.dhelpers import Subscriber, make_pki
from tests.helpers import device_publishing, wait_until
from tests.fixtures.mosquitto import free_port, start_mosquitto


def test_mutual_tls_acl_denies_another_devices_topic(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", ["cam-1"])
    acl = tmp_path / "acl"
    acl.write_text("user observer\ntopic read edge/#\n\npattern readwrite edge/v1/+/%u/#\n")
    tls_lines = [
        f"cafile {pki['ca.crt']}", f"certfile {pki['server.crt']}", f"keyfile {pki['server.key']}",
        "require_certificate true", "use_identity_as_username true", f"acl_file {acl}",
    ]
    if os.geteuid() == 0:  # as root mosquitto drops to its own user, which cannot read pytest's tmp folder
        tls_lines.append("user root")
    broker = start_mosquitto(tmp_path / "mq", tls_lines)
    # a plain loopback listener for the observing subscriber (the ACL gives it read only)
    plain = free_port()
    broker.config_lines += [f"listener {plain} 127.0.0.1", "allow_anonymous true"]
    broker.restart()
    try:
        _run(tmp_path, broker, pki, plain)
        _refuses_without_a_client_certificate(broker, pki)
    finally:
        broker.stop()


def _run(tmp_path: Path, broker, pki: dict[str, Path], plain: int) -> None:  # type: ignore[no-untyped-def]
    mqtt_cfg = MqttConfig(host="127.0.0.1", port=broker.port, tls=True, ca_file=str(pki["ca.crt"]),
                          cert_file=str(pki["cam-1.crt"]), key_file=str(pki["cam-1.key"]))
    pub = device_publishing(tmp_path, mqtt=mqtt_cfg)
    key, ob, emitter, sender = pub.key, pub.outbox, pub.emitter, pub.sender
    anon = emitter.anonymizer
    assert sender is not None
    sub = Subscriber("127.0.0.1", plain, "edge/v1/#", client_id="observer-sub", username="observer")
    health = Health(ob, HealthConfig(), sender)
    pub.start()
    try:
        own = emitter.emit([Observation("line_crossing", "door", "person", 0.0, {"count": 1}, "in")])
        # a row on another device's topic (what a misconfigured or compromised agent might try)
        event = anon.event(Observation("line_crossing", "door", "person", 0.0, {"count": 1}, "in"), 0, 0)
        assert event is not None

        def foreign(seq: int) -> tuple[str, bytes]:
            body = encode(anon.event(Observation("line_crossing", "door", "person", 0.0, {"count": 1}, "in"),
                                     seq, 0))  # type: ignore[arg-type]
            return "edge/v1/lab/cam-2/event/line_crossing", key.envelope(EVENT_PAYLOAD_TYPE, body)

        bad = ob.append(foreign, PRIORITY_EVENT)
        own += emitter.emit([Observation("line_crossing", "door", "person", 0.0, {"count": 2}, "out")])
        assert wait_until(lambda: sender.denied >= 1 and sender.idle()), sender.last_error
        alarms = []
        assert wait_until(lambda: bool(alarms.extend(o for o in health.tick(time.monotonic()) if o.type == "alarm")
                                  or alarms))
        # own events were published over mutual TLS and acknowledged; the denied one stays, once alarmed
        assert [r.seq for r in ob.peek(100)] == [bad]
        assert sender.pubacks >= 2 and sender.denied == 1
        assert sender.last_refused_code == NOT_AUTHORIZED == 0x87
        assert len(alarms) == 1 and alarms[0].rule == "publish_denied"
        emitter.emit(alarms)
        # re-sent after a reconnect, still denied, still kept, no second alarm
        broker.restart()
        assert wait_until(lambda: sender.denied >= 2 and sender.idle(), 20), sender.last_error
        assert bad in [r.seq for r in ob.peek(100)]
        assert not [o for o in health.tick(time.monotonic()) if o.type == "alarm"]
        assert wait_until(lambda: len(sub.payloads("/event/alarm")) >= 1)
    finally:
        sender.stop(2)
        sub.close()
    verifier = Verifier([enrolment(key, "cam-1", "lab")])
    got = {int(verifier.check(p)[0]["seq"]) for p in sub.payloads("/event/line_crossing")}
    assert set(own) <= got and bad not in got
    assert pub.manifest_envelope in sub.payloads("/manifest")
    assert b"online" in sub.payloads("/status")
    assert not any(t.startswith("edge/v1/lab/cam-2/") for t, _ in sub.messages)


def _refuses_without_a_client_certificate(broker, pki: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    import queue

    import pytest

    from agent.errors import BrokerError

    cfg = MqttConfig(host="127.0.0.1", port=broker.port, tls=True, ca_file=str(pki["ca.crt"]),
                     connect_timeout_s=3)
    session = Session(cfg, "cam-1", "lab", queue.SimpleQueue())
    with pytest.raises(BrokerError) as err:
        session.connect()
    assert "\n" not in str(err.value) and "127.0.0.1" in str(err.value)
