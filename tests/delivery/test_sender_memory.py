"""The sender over the in-memory session: delivery, outage, refusal and ingest acks, no network."""

from __future__ import annotations

from pathlib import Path

from agent.config import MqttConfig
from agent.delivery.memory import MemoryBroker
from agent.delivery.outbox import Outbox
from agent.delivery.sender import Link, Sender
from agent.protocol.acks import ack_envelope
from agent.protocol.dsse import SigningKey
from tests.helpers import wait_until

TOPIC = "edge/v1/lab/cam-1/event/count"
FAST = MqttConfig(backoff_min_s=0.01, backoff_max_s=0.05)


def _outbox(tmp_path: Path, rows: int) -> Outbox:
    ob = Outbox(tmp_path / "outbox.db")
    for _ in range(rows):
        ob.append(lambda seq: (TOPIC, b"envelope %d" % seq))
    return ob


def _sender(ob: Outbox, broker: MemoryBroker, ack: str = "broker",
            ingest_keys: dict[str, bytes] | None = None) -> Sender:
    sessions = broker.factory("cam-1", "lab", b"manifest", subscribe_acks=ack == "ingest")
    return Sender(ob, FAST, "cam-1", "lab", ack, ingest_keys, open_session=sessions)


def test_rows_leave_in_seq_order_and_only_on_their_puback(tmp_path: Path) -> None:
    broker = MemoryBroker(receive_maximum=4)  # a window of 2: several rounds
    ob = _outbox(tmp_path, 7)
    sender = _sender(ob, broker)
    sender.start()
    try:
        assert wait_until(lambda: sender.idle() and ob.rows == 0)
        assert [p for _, p in broker.published] == [b"envelope %d" % s for s in range(1, 8)]
        assert broker.retained["edge/v1/lab/cam-1/manifest"] == b"manifest"
        assert sender.link is Link.UP and sender.pubacks == 7 and sender.reconnects == 1
    finally:
        sender.stop(1)
    assert not sender.connected and broker.retained["edge/v1/lab/cam-1/status"] == b"offline"


def test_an_outage_keeps_the_rows_and_the_sender_reconnects(tmp_path: Path) -> None:
    broker = MemoryBroker()
    broker.down()
    ob = _outbox(tmp_path, 3)
    sender = _sender(ob, broker)
    sender.start()
    try:
        assert wait_until(lambda: "down" in sender.last_error)
        assert sender.link is Link.DOWN and ob.rows == 3 and broker.published == []
        broker.restore()
        assert wait_until(lambda: sender.idle() and ob.rows == 0)
        assert sender.last_error == ""
        broker.down("pulled the cable")  # the session is dropped: a new one comes after back-off
        ob.append(lambda seq: (TOPIC, b"after"))
        broker.restore()
        assert wait_until(lambda: sender.idle() and ob.rows == 0)
        assert sender.reconnects == 2 and broker.published[-1] == (TOPIC, b"after")
    finally:
        sender.stop(1)


def test_a_refused_topic_keeps_its_rows_and_raises_one_alarm(tmp_path: Path) -> None:
    broker = MemoryBroker()
    broker.refuse[TOPIC] = 0x87
    ob = _outbox(tmp_path, 3)
    sender = _sender(ob, broker)
    sender.start()
    try:
        assert wait_until(lambda: sender.denied == 3 and sender.idle())
        (alarm,) = sender.take_observations()
        assert alarm.rule == "publish_denied" and alarm.values == {"count": 1}
        assert ob.rows == 3 and sender.last_refused_code == 0x87
        assert sender.take_observations() == []  # one alarm per topic and code
    finally:
        sender.stop(0)


def test_with_ingest_acks_rows_leave_on_a_signed_ack_only(tmp_path: Path) -> None:
    broker, ingest = MemoryBroker(), SigningKey.generate()
    ob = _outbox(tmp_path, 4)
    sender = _sender(ob, broker, ack="ingest", ingest_keys={ingest.keyid: ingest.public_key})
    sender.start()
    try:
        assert wait_until(lambda: sender.idle() and len(broker.published) == 4)
        assert ob.rows == 4  # PUBACKs alone delete nothing in this mode
        forged = ack_envelope(SigningKey.generate(), "cam-1", "lab", 4, 0)
        assert broker.deliver("edge/v1/lab/cam-1/ack", forged) == 1
        assert wait_until(lambda: sender.bad_acks == 1) and ob.rows == 4
        broker.deliver("edge/v1/lab/cam-1/ack", ack_envelope(ingest, "cam-1", "lab", 3, 0))
        assert wait_until(lambda: ob.rows == 1) and sender.acked_seq == 3
    finally:
        sender.stop(0)
