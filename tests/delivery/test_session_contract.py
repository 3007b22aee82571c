"""The Session contract over both backends: a real Mosquitto and the in-memory broker."""

from __future__ import annotations

import queue
import socket
from typing import Any

import pytest

from agent.config import MqttConfig
from agent.delivery.memory import MemoryBroker
from agent.delivery.mqtt import Session as MqttSession
from agent.delivery.session import Connected, Events, PubAck, Session, SessionEvent
from agent.errors import BrokerError

TOPIC = "edge/v1/lab/cam-1/event/count"


def _open(backend: str, request: pytest.FixtureRequest, events: Events) -> Session:
    if backend == "memory":
        return MemoryBroker().factory("cam-1", "lab", b"manifest")(events)
    broker: Any = request.getfixturevalue("mosquitto")
    return MqttSession(MqttConfig(host=broker.host, port=broker.port), "cam-1", "lab", events,
                       b"manifest")


def _next(events: Events, kind: type[SessionEvent]) -> SessionEvent:
    while True:
        item = events.get(timeout=10)
        if isinstance(item, kind):
            return item


@pytest.mark.parametrize("backend", ["memory", "mqtt"])
def test_every_session_connects_publishes_and_answers_with_pubacks(
    backend: str, request: pytest.FixtureRequest
) -> None:
    events: Events = queue.SimpleQueue()
    session = _open(backend, request, events)
    session.connect()
    try:
        assert isinstance(_next(events, Connected), Connected)
        assert session.window >= 1
        mids = [session.publish(TOPIC, b"envelope %d" % i) for i in range(3)]
        assert all(isinstance(m, int) for m in mids) and len(set(mids)) == 3
        acks = [_next(events, PubAck) for _ in mids]
        assert {a.mid for a in acks if isinstance(a, PubAck)} == set(mids)
        # success: 0x00, or 0x10 "no matching subscribers" (Mosquitto says so here)
        assert all(isinstance(a, PubAck) and a.code < 0x80 for a in acks)
    finally:
        session.close(graceful=True)


def test_an_unreachable_broker_is_one_broker_error() -> None:
    broker = MemoryBroker()
    broker.down()
    with pytest.raises(BrokerError, match="down"):
        broker.factory("cam-1", "lab")(queue.SimpleQueue()).connect()
    with socket.socket() as s:  # a loopback port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    session = MqttSession(MqttConfig(port=port, connect_timeout_s=2), "cam-1", "lab",
                          queue.SimpleQueue())
    with pytest.raises(BrokerError, match="cannot reach|CONNACK"):
        session.connect()
