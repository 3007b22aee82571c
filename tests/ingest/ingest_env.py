"""Set up an ingest as an operator would (key, registry, TOML) and run `edge-agent ingest` workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.helpers import stop_by_pid, wait_until

from agent.protocol.enrolment import Enrolment, keygen, save_registry

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class IngestEnv:
    folder: Path
    host: str
    port: int
    database: str
    group: str = "g1"

    def __post_init__(self) -> None:
        self.keydir = self.folder / "ingest-key"
        self.ingest_record = keygen(self.keydir, "ingest", "central")
        self.registry = self.folder / "registry.json"
        self.workers: list[Worker] = []

    def stop_all(self) -> None:
        """Stop every worker this env started that still runs (for a test's failure path)."""
        for w in self.workers:
            if w.proc.poll() is None:
                w.stop()

    @property
    def pub_file(self) -> Path:
        return self.keydir / "device.pub.json"

    def enrol(self, records: list[Enrolment]) -> None:
        save_registry(self.registry, records)

    def config(self, client_id: str, **extra: object) -> Path:
        lines = [
            "[ingest]",
            f'broker = "mqtt://{self.host}:{self.port}"',
            f'registry = "{self.registry}"',
            f'database = "{self.database}"',
            f'key = "{self.keydir / "device.key"}"',
            f'group = "{self.group}"',
            f'client_id = "{client_id}"',
            *(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in extra.items()),
        ]
        path = self.folder / f"{client_id}.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start_worker(self, client_id: str, **extra: object) -> Worker:
        log = self.folder / f"{client_id}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "ingest", "--config", str(self.config(client_id, **extra))],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(log, "wb"), start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        w = Worker(client_id, proc, log)
        self.workers.append(w)
        try:
            w.wait_ready()
        except BaseException:
            w.stop()  # never leave a half-started worker behind
            raise
        return w


@dataclass
class Worker:
    client_id: str
    proc: subprocess.Popen[bytes]
    log: Path

    def wait_ready(self, timeout_s: float = 20.0) -> None:
        def ready() -> bool:
            if "ingest worker ready" in self.log.read_text(errors="replace"):
                return True
            if self.proc.poll() is not None:
                raise RuntimeError(f"ingest worker exited: {self.log.read_text()[-800:]}")
            return False

        if not wait_until(ready, timeout_s):
            raise RuntimeError(f"ingest worker not ready: {self.log.read_text()[-800:]}")

    def kill(self) -> None:
        """SIGKILL by PID: no clean shutdown, no last batch, no last acks."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        stop_by_pid(self.proc, grace_s=15)
        return int(self.proc.returncode)


def publish_all(host: str, port: int, messages: list[tuple[str, bytes]]) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="e2e-publisher", protocol=mqtt.MQTTv5)
    c.connect(host, port)
    c.loop_start()
    infos = [c.publish(t, p, qos=1) for t, p in messages]
    for info in infos:
        info.wait_for_publish(20)
        assert info.is_published()
    c.disconnect()
    c.loop_stop()

