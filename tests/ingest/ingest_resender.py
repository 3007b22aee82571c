"""A small device-side re-sender for ingest tests, on the real Outbox + Emitter + paho.

It publishes outbox rows with QoS 1, deletes rows up to the seq of an ack it verified against the
ingest's public key, and publishes again any row still unacknowledged after a timeout.
(Issue 6 builds the device's full sender; this is only what the ingest tests need.)
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.delivery.emitter import Emitter
from agent.errors import SignatureError
from agent.protocol.enrolment import Enrolment, enrolment
from agent.delivery.outbox import Outbox
from agent.privacy.anonymizer import Anonymizer, Identity
from agent.delivery.ingest_keys import load_ingest_keys
from agent.protocol.acks import ack_seq
from agent.protocol.dsse import SigningKey
from agent.protocol.topics import DEFAULT_PREFIX, ack_topic
from agent.types import Observation


class ResendingDevice:
    def __init__(self, folder: Path, device: str, site: str, host: str, port: int,
                 ingest_keys: dict[str, bytes], prefix: str = DEFAULT_PREFIX, resend_after_s: float = 1.5) -> None:
        self.device, self.site, self.prefix = device, site, prefix
        self.key = SigningKey.generate()
        self.outbox = Outbox(folder / f"{device}.db")
        self.emitted: dict[int, bytes] = {}
        anonymizer = Anonymizer(Identity(device, site, 1, "ssd_mobilenet_v1_coco_quant", "cd" * 32), ("person",))
        self._last: list[bytes] = []
        self.emitter = Emitter(anonymizer, self.key, self.outbox, prefix, sink=self._last.append)
        self.ingest_keys = ingest_keys
        self.resend_after_s = resend_after_s
        self.lock = threading.Lock()
        self.sent_at: dict[int, float] = {}
        self.publishes = 0
        self.resends = 0
        self.acked = 0
        self.bad_acks = 0
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{device}", protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe(ack_topic(prefix, site, device), qos=1)
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_message = self._on_ack
        self.client.connect(host, port)
        self.client.loop_start()
        if not self._ready.wait(10):
            raise RuntimeError("device did not get its SUBACK")

    @property
    def enrolment(self) -> Enrolment:
        return enrolment(self.key, self.device, self.site)

    def _on_ack(self, client, userdata, msg) -> None:  # type: ignore[no-untyped-def]
        try:
            seq = ack_seq(bytes(msg.payload), self.ingest_keys, self.device, self.site)
        except SignatureError:
            self.bad_acks += 1
            return
        with self.lock:
            if seq > self.acked:
                self.outbox.ack_upto(seq)
                self.acked = seq

    def emit(self, n: int) -> None:
        with self.lock:
            for _ in range(n):
                seq = self.emitter.emit([Observation("count", "door", "person", 0.0, {"count": 1})])[0]
                self.emitted[seq] = self._last[-1]

    def pump(self) -> int:
        """Publish rows never sent, and rows sent longer than resend_after_s ago and still here."""
        now = time.monotonic()
        with self.lock:
            rows = self.outbox.peek(100_000)
        n = 0
        for r in rows:
            sent = self.sent_at.get(r.seq)
            if sent is None or now - sent >= self.resend_after_s:
                self.client.publish(r.topic, r.envelope, qos=1)
                self.resends += sent is not None
                self.sent_at[r.seq] = now
                n += 1
        self.publishes += n
        return n

    def waiting(self) -> int:
        with self.lock:
            return self.outbox.stats().rows

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.outbox.close()


def ingest_keys_of(pub_file: Path) -> dict[str, bytes]:
    """{keyid: public key} from the ingest's device.pub.json, read as `outbox.ingest_keys` is."""
    return load_ingest_keys(str(pub_file))
