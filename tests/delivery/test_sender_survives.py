"""An unexpected exception in the sender thread (a crafted ack the parser chokes on) never ends it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agent.config import HealthConfig, MqttConfig
from agent.delivery.heartbeat import Health
from agent.delivery.sender import Sender
from agent.protocol.dsse import ACK_PAYLOAD_TYPE, SigningKey
from agent.protocol.acks import ack_body, ack_seq
from agent.types import Observation
from tests.delivery.dhelpers import Subscriber
from tests.helpers import device_publishing, wait_until

BOOM = b"\x00crafted ack that makes the parser fail in a way nobody planned for"


def _parser(data: bytes, keys: dict[str, bytes], device: str, site: str) -> int:
    """The real ack parser, except that one payload makes it raise what no caller expects."""
    if data == BOOM:
        raise ZeroDivisionError("a bug deep in a parser")
    return ack_seq(data, keys, device, site)


def test_sender_keeps_publishing_after_the_ack_parser_raises(tmp_path: Path, mosquitto,  # type: ignore[no-untyped-def]
                                                             caplog: pytest.LogCaptureFixture) -> None:
    device_key, ingest_key = SigningKey.generate(), SigningKey.generate()
    pub = device_publishing(tmp_path, outbox_file="o.db", key=device_key)
    ob, emitter = pub.outbox, pub.emitter
    sub = Subscriber(mosquitto.host, mosquitto.port, "edge/v1/lab/cam-1/event/#", client_id="t-sub")
    sender = Sender(ob, MqttConfig(host=mosquitto.host, port=mosquitto.port, backoff_min_s=0.1, backoff_max_s=0.5),
                    "cam-1", "lab", ack="ingest", ingest_keys={ingest_key.keyid: ingest_key.public_key},
                    resend_s=60.0, parse_ack=_parser)
    health = Health(ob, HealthConfig(heartbeat_s=1.0), sender, beat_at_start=True)
    ack_topic = "edge/v1/lab/cam-1/ack"
    caplog.set_level(logging.DEBUG, logger="agent.delivery.sender")

    def line(i: int) -> list[int]:
        return emitter.emit([Observation("line_crossing", "door", "person", 0.0, {"count": i}, "in")])

    def delivered(seq: int) -> bool:
        return any(f'"seq":{seq},'.encode() in _body(p) for p in sub.payloads())

    sender.start()
    try:
        (first,) = line(1)
        assert wait_until(lambda: delivered(first) and sender.idle())
        # 1. a signed ack whose seq has more digits than Python's int() accepts: today strict_json lets a
        #    plain ValueError out; whatever the parser raises, the thread must go on
        huge = ack_body("cam-1", "lab", 7, 0).replace(b'"seq":7', b'"seq":' + b"9" * 5000)
        sub.client.publish(ack_topic, ingest_key.envelope(ACK_PAYLOAD_TYPE, huge), qos=1)
        assert wait_until(lambda: sender.restarts + sender.bad_acks >= 1)
        (second,) = line(2)
        assert wait_until(lambda: delivered(second)), "nothing published after the oversized ack"
        # 2. a message that makes the parser raise something unexpected: counted, and publishing goes on
        before = sender.restarts
        sub.client.publish(ack_topic, BOOM, qos=1)
        assert wait_until(lambda: sender.restarts == before + 1)
        (third,) = line(3)
        assert wait_until(lambda: delivered(third)), "nothing published after the parser raised"
        assert sender.running()
        # a valid ack still works after the restarts
        sub.client.publish(ack_topic, ingest_key.envelope(ACK_PAYLOAD_TYPE, ack_body("cam-1", "lab", third, 0)),
                           qos=1)
        assert wait_until(lambda: ob.rows == 0)
        (beat,) = health.tick(0.0)
        assert beat.values["sender_restarts"] == sender.restarts >= 1
    finally:
        sender.stop(1)
        sub.close()
    tracebacks = [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
    assert len(tracebacks) == 1, "the first unexpected error is logged with its traceback, later ones only counted"


def _body(envelope: bytes) -> bytes:
    import base64
    import json

    return base64.b64decode(json.loads(envelope)["payload"])
