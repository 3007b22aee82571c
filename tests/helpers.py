"""Small helpers for tests: run the CLI in a subprocess, collect MQTT messages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, timeout: float = 300, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, input=stdin.decode() if stdin else None,
    )


def replay(clip: Path, config: Path, state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`edge-agent replay CLIP --config CONFIG --state STATE [extra...]` in a subprocess."""
    return cli("replay", str(clip), "--config", str(config), "--state", str(state), *extra)


def stop_by_pid(proc: subprocess.Popen, grace_s: float = 5.0) -> None:  # type: ignore[type-arg]
    """SIGTERM by PID, then SIGKILL if the process lingers past grace_s; no-op if it already ended."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def wait_until(cond: Callable[[], object], timeout: float = 10.0, every: float = 0.05) -> bool:
    """Poll cond until it is true or timeout seconds pass; True if it became true.

    The suite's one wait helper: a test waits on the event itself (a log line, a file, a message,
    a counter, a process exit) through this, never with a bare sleep (tests/unit/test_no_sleep.py).
    cond may also do a step of work (pump a re-sender) before it checks.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(every)  # the poll interval of the wait itself: the one sleep the suite allows
    return bool(cond())


@dataclass
class Subscriber:
    """Subscribes to a topic filter on a real broker and keeps every message.

    persistent=True keeps the session on the broker (clean_start off, one hour expiry), so
    messages published while the subscriber was away (a broker restart) still arrive.
    """

    host: str
    port: int
    topic: str
    client_id: str = ""
    username: str | None = None
    persistent: bool = False
    on_payload: Callable[[str, bytes], None] | None = None
    messages: list[tuple[str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self._ready = threading.Event()
        self._lock = threading.Lock()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        c.reconnect_delay_set(0.1, 0.5)
        if self.username:
            c.username_pw_set(self.username)

        def on_connect(client, userdata, flags, rc, props):  # type: ignore[no-untyped-def]
            client.subscribe(self.topic, qos=1)

        def on_subscribe(client, userdata, mid, rcs, props):  # type: ignore[no-untyped-def]
            self._ready.set()

        def on_message(client, userdata, msg):  # type: ignore[no-untyped-def]
            with self._lock:
                self.messages.append((msg.topic, bytes(msg.payload)))
            if self.on_payload is not None:
                self.on_payload(msg.topic, bytes(msg.payload))

        c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
        props = Properties(PacketTypes.CONNECT)
        if self.persistent:
            props.SessionExpiryInterval = 3600
        c.connect(self.host, self.port, clean_start=not self.persistent, properties=props)
        c.loop_start()
        self.client = c
        if not self._ready.wait(10):
            raise RuntimeError("subscriber did not get its SUBACK")

    def payloads(self, suffix: str = "") -> list[bytes]:
        with self._lock:
            return [p for t, p in self.messages if not suffix or t.endswith(suffix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def device_publishing(folder: Path, device: str = "cam-1", site: str = "lab", *, outbox_file: str = "outbox.db",
                      key=None, mqtt=None, **outbox):  # type: ignore[no-untyped-def]
    """The publishing half (outbox, emitter, signed manifest; a sender when mqtt is given) as
    agent.assembly builds it for `run`, for device `device` with its outbox at folder/outbox_file.
    outbox: [outbox] settings (max_rows, max_bytes, ack, ingest_keys, resend_s)."""
    from agent.assembly import open_outbox, publishing
    from agent.config import Config, DeviceConfig, OutboxConfig
    from agent.protocol.dsse import SigningKey

    cfg = Config(device=DeviceConfig(device, site, state_dir=str(folder)), outbox=OutboxConfig(**outbox), mqtt=mqtt)
    manifest = {"v": 1, "device": device, "site": site, "raw_video_egress": False}
    return publishing(cfg, key or SigningKey.generate(), manifest, "m",
                      outbox=open_outbox(cfg, folder / outbox_file), check_manifest=False)
