"""Small helpers for tests: run the CLI in a subprocess, collect MQTT messages."""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, timeout: float = 300, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, input=stdin.decode() if stdin else None,
    )


@dataclass
class Collector:
    """Subscribes to a topic filter on a real broker and keeps every message."""

    host: str
    port: int
    topic: str
    messages: list[tuple[str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self._ready = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

        def on_connect(client, userdata, flags, rc, props):  # type: ignore[no-untyped-def]
            client.subscribe(self.topic, qos=1)

        def on_subscribe(client, userdata, mid, rcs, props):  # type: ignore[no-untyped-def]
            self._ready.set()

        def on_message(client, userdata, msg):  # type: ignore[no-untyped-def]
            with self._lock:
                self.messages.append((msg.topic, bytes(msg.payload)))

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect(self.host, self.port)
        self.client.loop_start()
        if not self._ready.wait(10):
            raise RuntimeError("subscriber did not get its SUBACK")

    def payloads(self) -> list[bytes]:
        with self._lock:
            return [p for _, p in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
