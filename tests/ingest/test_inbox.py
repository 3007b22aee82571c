"""The ingest inbox is bounded: QoS 0 beyond it is dropped and counted, QoS 1 waits, never dropped."""

from __future__ import annotations

import threading
from pathlib import Path

import paho.mqtt.client as mqtt

from agent.central.config import IngestConfig
from agent.protocol.enrolment import keygen, save_registry
from agent.central.ingest.worker import IngestWorker


def message(mid: int, qos: int) -> mqtt.MQTTMessage:
    m = mqtt.MQTTMessage(mid, b"edge/v1/s1/dev-0/event/count")
    m.payload, m.qos = b"{}", qos
    return m


def test_full_inbox_drops_qos0_and_holds_qos1(tmp_path: Path) -> None:
    keygen(tmp_path / "ingest", "ingest", "central")
    save_registry(tmp_path / "registry.json", [])
    cfg = IngestConfig(registry=str(tmp_path / "registry.json"), database=f"sqlite:///{tmp_path / 'i.db'}",
                       key=str(tmp_path / "ingest" / "device.key"), inbox_max=3)
    # not connected: the paho callback is called as the network thread would
    worker = IngestWorker.from_config(cfg)
    for mid in range(1, 5):
        worker._on_message(None, None, message(mid, 0))
    assert worker.inbox.qsize() == 3 and worker.dropped_qos0 == 1

    qos1 = threading.Thread(target=worker._on_message, args=(None, None, message(9, 1)))
    qos1.start()
    # the callback returning would mean the message got in or was dropped: neither may happen
    qos1.join(0.3)
    assert qos1.is_alive() and worker.inbox.qsize() == 3  # waiting, not dropped
    assert worker.inbox.get_nowait()[1] == 1  # the batch loop takes one: the QoS 1 message gets in
    qos1.join(2)
    assert not qos1.is_alive() and [item[1] for item in list(worker.inbox.queue)] == [2, 3, 9]
    assert worker.dropped_qos0 == 1

    # once the loop has stopped taking messages, a waiting QoS 1 message is left unPUBACKed
    late = threading.Thread(target=worker._on_message, args=(None, None, message(10, 1)))
    late.start()
    worker.closing.set()
    late.join(2)
    assert not late.is_alive() and worker.inbox.qsize() == 3
    worker.store.close()
