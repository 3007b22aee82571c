"""A minimal MQTT 5 sender on paho-mqtt 2.x: drain the outbox with QoS 1, delete on PUBACK.

Issue 6 replaces this with the full publisher (TLS, Last Will, back-off, ingest acks).
"""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

from agent.config import MqttConfig
from agent.errors import BrokerError
from agent.outbox import Outbox


class MqttSender:
    def __init__(self, cfg: MqttConfig, outbox: Outbox, client_id: str) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0

    def connect(self) -> None:
        try:
            self.client.connect(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s,
                                clean_start=True, properties=Properties(PacketTypes.CONNECT))
        except (OSError, ValueError) as exc:
            raise BrokerError(f"cannot reach the MQTT broker at {self.cfg.host}:{self.cfg.port} ({exc})") from None
        self.client.loop_start()

    def drain_once(self, batch: int = 200, timeout_s: float = 10.0) -> int:
        rows = self.outbox.peek(batch)
        infos = [(r.seq, self.client.publish(r.topic, r.envelope, qos=1)) for r in rows]
        done = []
        for seq, info in infos:
            info.wait_for_publish(timeout_s)
            if info.is_published() and info.rc == mqtt.MQTT_ERR_SUCCESS:
                done.append(seq)
        if done:
            self.outbox.ack(done)
        self.sent += len(done)
        return len(done)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.drain_once() == 0:
                    self._stop.wait(0.2)
            except (RuntimeError, ValueError):
                self._stop.wait(1.0)

    def start(self) -> None:
        self.connect()
        self._thread = threading.Thread(target=self._loop, name="mqtt-sender", daemon=True)
        self._thread.start()

    def stop(self, flush_s: float = 10.0) -> None:
        deadline = time.monotonic() + flush_s
        while self.outbox.stats().rows and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        self.client.disconnect()
        self.client.loop_stop()
