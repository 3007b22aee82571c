"""Issue 13 item 12: the broker settings the ingest needs, shown on a real Mosquitto.

An ingest that falls behind a burst (here: its persistent session is offline while the burst
arrives, the extreme of falling behind) has its QoS 1 messages queued by the broker, but only up
to Mosquitto's `max_queued_messages` (default 1000): the rest are dropped at the broker, although
the device got a successful PUBACK for every one, so in `ack = "broker"` mode it deleted them.
With the setting the README recommends, nothing is lost."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from tests.fixtures.mosquitto import start_mosquitto
from tests.helpers import Subscriber, device_publishing, wait_until

from agent.config import MqttConfig
from agent.protocol.topics import all_events_filter
from agent.types import Observation

BURST = 2500
RECOMMENDED = ["max_queued_messages 100000", "max_inflight_messages 100"]  # as in the README


def burst_through_an_offline_ingest(tmp_path: Path, broker_lines: list[str]) -> tuple[int, int]:
    """(events the device let go of after PUBACKs, events the ingest's session received)."""
    broker = start_mosquitto(tmp_path / "broker", broker_lines)
    try:
        topic = all_events_filter("edge/v1", "lab", "cam-1")
        ingest = Subscriber(broker.host, broker.port, topic, client_id="ingest-1", persistent=True)
        ingest.close()  # the ingest falls behind: its session stays, messages queue at the broker
        pub = device_publishing(
            tmp_path / "dev", mqtt=MqttConfig(host=broker.host, port=broker.port)
        )
        pub.emitter.emit(
            Observation("heartbeat", "device", "", i / 10, {"frames": i}) for i in range(BURST)
        )
        pub.start()
        assert wait_until(lambda: pub.outbox.stats().rows == 0, timeout=60), (
            "the device never drained"
        )
        let_go = pub.outbox.stats().last_seq
        pub.close(flush_s=5)
        # the ingest comes back; a message sent after it is back marks the end of the queue
        done = threading.Event()
        back = Subscriber(
            broker.host,
            broker.port,
            topic,
            client_id="ingest-1",
            persistent=True,
            on_payload=lambda t, p: done.set() if p == b"end" else None,
        )
        try:
            from paho.mqtt import publish

            publish.single(
                topic.replace("+", "end"), b"end", qos=1, hostname=broker.host, port=broker.port
            )
            assert done.wait(60), "the end marker never arrived"
            return let_go, len([p for p in back.payloads() if p != b"end"])
        finally:
            back.close()
    finally:
        broker.stop()


@pytest.mark.slow
def test_default_max_queued_messages_loses_a_burst_and_the_recommended_setting_does_not(
    tmp_path: Path,
) -> None:
    let_go, received = burst_through_an_offline_ingest(tmp_path / "default", [])
    assert let_go == BURST
    assert received < BURST - 500, (
        f"Mosquitto's default queue kept {received} of {BURST}"
    )  # lost at the broker
    let_go, received = burst_through_an_offline_ingest(tmp_path / "recommended", RECOMMENDED)
    assert let_go == received == BURST
