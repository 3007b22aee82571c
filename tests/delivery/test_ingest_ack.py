"""ack = ingest: rows stay after PUBACK, leave only on a valid signed ack, and are re-sent until then."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.config import MqttConfig
from agent.errors import ConfigError
from agent.protocol.enrolment import enrolment
from agent.delivery.sender import Sender, backoff_s
from agent.protocol.dsse import ACK_PAYLOAD_TYPE, SigningKey
from agent.delivery.ingest_keys import load_ingest_keys
from agent.protocol.acks import ack_body
from agent.types import Observation
from agent.central.verify import Verifier
from tests.delivery.dhelpers import Subscriber, ingest_key_file
from tests.helpers import cli, device_publishing, wait_until


def test_rows_leave_only_on_a_valid_signed_ingest_ack(tmp_path: Path, mosquitto) -> None:  # type: ignore[no-untyped-def]
    device_key, ingest_key, stranger = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    keys = load_ingest_keys(str(ingest_key_file(tmp_path, ingest_key)))
    pub = device_publishing(tmp_path, outbox_file="o.db", key=device_key)
    ob, emitter = pub.outbox, pub.emitter
    sub = Subscriber(mosquitto.host, mosquitto.port, "edge/v1/lab/cam-1/event/#", client_id="t-sub")
    sender = Sender(ob, MqttConfig(host=mosquitto.host, port=mosquitto.port), "cam-1", "lab",
                    ack="ingest", ingest_keys=keys, resend_s=1.0)
    sender.start()
    ack_topic = "edge/v1/lab/cam-1/ack"

    def ack(key: SigningKey, seq: int, device: str = "cam-1") -> None:
        sub.client.publish(ack_topic, key.envelope(ACK_PAYLOAD_TYPE, ack_body(device, "lab", seq, 0)), qos=1)

    try:
        seqs = emitter.emit([Observation("line_crossing", "door", "person", 0.0, {"count": i}, "in")
                             for i in range(6)])
        assert wait_until(lambda: len(sub.payloads()) >= 6 and sender.idle())
        assert ob.rows == 6, "a PUBACK alone does not remove a row in ingest mode"
        ack(stranger, seqs[-1])  # signed by a key the device does not trust
        ack(ingest_key, seqs[-1], device="cam-2")  # an ack for another device
        sub.client.publish(ack_topic, b'{"not": "an envelope"}', qos=1)
        assert wait_until(lambda: sender.bad_acks == 3)
        assert ob.rows == 6
        ack(ingest_key, seqs[2])
        assert wait_until(lambda: ob.rows == 3)
        assert [r.seq for r in ob.peek(10)] == seqs[3:]
        assert ob.stats().last_ack == seqs[2]
        # no further ack: the rest is sent again after resend_s
        assert wait_until(lambda: len(sub.payloads()) >= 9, 5)
        ack(ingest_key, seqs[-1])
        assert wait_until(lambda: ob.rows == 0)
    finally:
        sender.stop(1)
        sub.close()
    verifier = Verifier([enrolment(device_key, "cam-1", "lab")])
    fresh = [verifier.check(p)[1] for p in sub.payloads()]
    assert fresh.count(True) == 6 and fresh.count(False) >= 3, "re-sent rows dedupe at the verifier"


def test_ingest_keys_file_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs outbox.ingest_keys"):
        load_ingest_keys("")
    bad = tmp_path / "k.json"
    bad.write_text(json.dumps({"keyid": "00" * 32, "public_key": "AAAA"}))
    with pytest.raises(ConfigError, match="keyid does not match"):
        load_ingest_keys(str(bad))
    with pytest.raises(ConfigError, match="not found"):
        load_ingest_keys(str(tmp_path / "missing.json"))
    bad.write_text('{"keyid": ' + "9" * 5000 + "}")  # beyond Python's integer digit limit
    with pytest.raises(ConfigError, match="not usable JSON"):
        load_ingest_keys(str(bad))
    cfg = tmp_path / "a.toml"
    cfg.write_text('[outbox]\nack = "ingest"\n[mqtt]\nport = 1\n')
    r = cli("outbox", "stats", "--config", str(cfg), "--state", str(tmp_path / "none"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no outbox" in r.stderr


def test_backoff_is_capped_and_jittered() -> None:
    assert backoff_s(1, 0.5, 60, lambda: 0.0) == 0.25 and backoff_s(1, 0.5, 60, lambda: 1.0) == 0.5
    assert backoff_s(4, 0.5, 60, lambda: 1.0) == 4.0
    assert backoff_s(30, 0.5, 60, lambda: 1.0) == 60.0 and backoff_s(30, 0.5, 60, lambda: 0.0) == 30.0


@pytest.mark.slow
def test_replay_with_an_unreachable_broker_keeps_events_and_says_so(tmp_path: Path, model_dir: Path,
                                                                    clip: Path) -> None:
    from tests.fixtures.mosquitto import free_port

    cfg = tmp_path / "a.toml"
    cfg.write_text(f'[device]\nid = "cam-1"\nsite = "lab"\n[detector]\nmodel_dir = "{model_dir}"\n'
                   f'[mqtt]\nhost = "127.0.0.1"\nport = {free_port()}\nconnect_timeout_s = 1.0\n')
    r = cli("replay", str(clip), "--config", str(cfg), "--state", str(tmp_path / "s"), "--max-frames", "300",
            "--publish")
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "cannot reach the MQTT broker" in errors[0] and "outbox" in errors[0]
    assert "Traceback" not in r.stderr
    waiting = int(r.stdout.split("outbox: ")[1].split()[0])
    assert waiting >= 1, r.stdout
