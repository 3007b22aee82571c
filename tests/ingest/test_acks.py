"""Signed ingest acks: the BRIEF's contract bytes, and at most one per device per interval."""

from __future__ import annotations

import json

from agent.central.ingest.acks import AckScheduler
from agent.protocol.acks import ack_body, ack_envelope
from agent.protocol.topics import ack_topic
from agent.protocol.dsse import ACK_PAYLOAD_TYPE, EVENT_PAYLOAD_TYPE, SigningKey, verify_envelope


def test_ack_is_a_dsse_envelope_of_canonical_json_signed_by_the_ingest_key() -> None:
    key = SigningKey.from_seed(b"i" * 32)
    env = ack_envelope(key, "cam-1", "lab", 42, 1_700_000_000_123)
    v = verify_envelope(env, {key.keyid: key.public_key}, ACK_PAYLOAD_TYPE)
    assert v.body == b'{"device":"cam-1","seq":42,"site":"lab","ts_ms":1700000000123,"v":1}'
    assert v.body == ack_body("cam-1", "lab", 42, 1_700_000_000_123)
    assert json.loads(env)["payloadType"] == ACK_PAYLOAD_TYPE != EVENT_PAYLOAD_TYPE
    assert ack_topic("edge/v1", "lab", "cam-1") == "edge/v1/lab/cam-1/ack"


def test_scheduler_limits_each_device_and_never_forgets_the_last_mark() -> None:
    s = AckScheduler(interval_ms=200)
    s.mark("a", "lab", 5)
    s.mark("b", "lab", 0)  # nothing stored contiguously yet: no ack
    assert s.due(1000) == [("a", "lab", 5)]
    s.mark("a", "lab", 9)
    s.mark("a", "lab", 7)  # an older mark never lowers a pending one
    assert s.due(1100) == []  # too soon for "a"
    assert s.due(1199) == []
    assert s.due(1200) == [("a", "lab", 9)]  # the latest mark, once the interval allowed
    assert s.due(5000) == []  # nothing pending: nothing sent
