"""Delivery: backlog drain rate after an outage (QoS 1), enqueue-to-PUBACK latency, vs bare paho.

Starts its own Mosquitto on 127.0.0.1 (Debian's package), fills the outbox while the broker is down,
starts the broker and times the sender emptying the outbox (broker ack mode: PUBACK, batched
deletes). The baseline is a bare paho client publishing the same envelopes with the same window
and no outbox, in the same run. Then events are emitted at a steady rate and the time from
emit() to the PUBACK is measured per event (p50, p99).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from agent import config
from agent.assembly import Publishing, publishing
from agent.bench import emit
from agent.bench.pgtemp import free_port
from agent.config import Config, DeviceConfig, MqttConfig
from agent.errors import UsageError
from agent.protocol.dsse import SigningKey
from agent.types import Observation


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--events", type=int, default=10_000, help="backlog size built during the outage"
    )
    p.add_argument("--rate", type=float, default=500.0, help="events/s for the latency run")
    p.add_argument("--seconds", type=float, default=4.0, help="length of the latency run")
    p.add_argument("--inflight", type=int, default=1000, help="QoS 1 publishes awaiting PUBACK")


class Broker:
    def __init__(self, folder: Path, inflight: int) -> None:
        exe = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else ""
        )
        if not exe:
            raise UsageError("bench delivery needs Debian's mosquitto (apt-get install mosquitto)")
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"max_inflight_messages {inflight}\nmax_queued_messages 0\nlog_dest none\n"
        )
        self.exe = exe
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise UsageError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def _rig(
    folder: Path, name: str, mqtt: MqttConfig, on_puback: Callable[[list[int]], None] | None = None
) -> Publishing:
    """The device's publishing half as `run` builds it, in its own state folder (unbounded)."""
    cfg = Config(device=DeviceConfig("bench-1", "lab", state_dir=str(folder / name)), mqtt=mqtt)
    cfg = config.replace(cfg, outbox={"max_rows": 0, "max_bytes": 0})
    manifest = {"v": 1, "device": "bench-1", "site": "lab", "raw_video_egress": False}
    return publishing(
        cfg, SigningKey.generate(), manifest, "m", check_manifest=False, on_puback=on_puback
    )


def _obs(i: int) -> Observation:
    return Observation("line_crossing", "door", "person", 0.0, {"count": i % 9}, direction="in")


def bare_paho(port: int, rows: list[tuple[str, bytes]], inflight: int) -> float:
    """events/s of a bare paho QoS 1 client publishing the same envelopes, no outbox."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    done = threading.Event()
    acked = [0]

    def on_publish(client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        acked[0] += 1
        if acked[0] == len(rows):
            done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(inflight - 2)
    c.max_queued_messages_set(0)
    c.on_publish = on_publish
    c.connect("127.0.0.1", port)
    c.loop_start()
    t0 = time.perf_counter()
    for topic, payload in rows:
        c.publish(topic, payload, qos=1)
    done.wait(120)
    elapsed = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return len(rows) / elapsed


def main(args: argparse.Namespace) -> int:
    if args.events < 100 or args.rate <= 0 or args.seconds <= 0:
        raise UsageError("--events must be >= 100, --rate and --seconds > 0")
    with tempfile.TemporaryDirectory(prefix="edge-bench-delivery-") as tmp:
        folder = Path(tmp)
        broker = Broker(folder, args.inflight)
        cfg = MqttConfig(host="127.0.0.1", port=broker.port, max_inflight=args.inflight,
                         backoff_min_s=0.05, backoff_max_s=0.2, connect_timeout_s=5)
        # 1. an outage: the backlog builds while the broker is down
        pub = _rig(folder, "drain", cfg)
        ob, emitter = pub.outbox, pub.emitter
        t0 = time.perf_counter()
        for i in range(0, args.events, 100):
            emitter.emit([_obs(j) for j in range(i, min(args.events, i + 100))])
        enqueue_rate = args.events / (time.perf_counter() - t0)
        backlog = ob.peek(args.events)
        broker.start()
        try:
            t0 = time.perf_counter()
            pub.start()
            while ob.rows and time.perf_counter() - t0 < 300:
                time.sleep(0.005)
            drain_s = time.perf_counter() - t0
            drained = args.events - ob.rows
            pub.close(1)
            drain_rate = drained / drain_s
            bare_rate = bare_paho(
                broker.port, [(r.topic, r.envelope) for r in backlog], args.inflight
            )

            # 2. steady rate: enqueue-to-PUBACK latency
            sent_at: dict[int, float] = {}
            latencies: list[float] = []
            lock = threading.Lock()

            def on_puback(seqs: list[int]) -> None:
                now = time.perf_counter()
                with lock:
                    latencies.extend(now - sent_at[s] for s in seqs if s in sent_at)

            pub = _rig(folder, "latency", cfg, on_puback)
            ob, emitter, sender = pub.outbox, pub.emitter, pub.sender
            assert sender is not None
            pub.start()
            while not sender.connected:
                time.sleep(0.01)
            n = int(args.rate * args.seconds)
            start = time.perf_counter()
            for i in range(n):
                time.sleep(max(0.0, start + i / args.rate - time.perf_counter()))
                t = time.perf_counter()
                with lock:
                    (seq,) = emitter.emit([_obs(i)])
                    sent_at[seq] = t
            pub.close(10)
        finally:
            broker.stop()
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000 if latencies else -1.0
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else -1.0
    print(f"backlog: {args.events} events enqueued at {enqueue_rate:,.0f}/s "
          "while the broker was down")
    print(f"drain after the outage (QoS 1, delete on PUBACK): {drain_rate:,.0f} events/s "
          f"(bare paho, no outbox: {bare_rate:,.0f}/s; ratio {drain_rate / bare_rate:.2f}; "
          "target >= 2,000/s)")
    print(f"enqueue-to-PUBACK at {args.rate:g} events/s: p50 {p50:.2f} ms, p99 {p99:.2f} ms "
          f"({len(latencies)} of {n} events)")
    emit({
        "bench": "delivery",
        "events": args.events,
        "enqueue_per_s": round(enqueue_rate),
        "drain_per_s": round(drain_rate),
        "bare_paho_per_s": round(bare_rate),
        "drain_vs_bare": round(drain_rate / bare_rate, 3),
        "drain_target_met": drain_rate >= 2000,
        "latency_rate_per_s": args.rate,
        "latency_p50_ms": round(p50, 3),
        "latency_p99_ms": round(p99, 3),
        "latency_events": len(latencies),
        "inflight": args.inflight,
    })
    return 0
