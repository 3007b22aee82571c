"""The ingest worker: a shared MQTT 5 subscription feeding batches to the batch step, acks back out.

Messages are PUBACKed to the broker only after their batch is committed (paho manual_ack), and
devices get their signed ack only after the commit too. The registry is reloaded when its file
changes (checked every second) or on SIGHUP; a registry that fails to load keeps the old one.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.central.config import IngestConfig
from agent.errors import AgentError, BrokerError, StateError, UsageError
from agent.protocol.enrolment import Enrolment, load_registry
from agent.central.ingest.acks import AckScheduler
from agent.central.ingest.classify import Classifier
from agent.central.ingest.batch import IngestPipeline, Message
from agent.central.store import open_store
from agent.central.store.base import Store
from agent.protocol.acks import ack_envelope
from agent.protocol.dsse import SigningKey
from agent.protocol.topics import ack_topic, shared_filter
from agent.central.verify import Verifier

log = logging.getLogger("agent.central.ingest")


def now_ms() -> int:
    return int(time.time() * 1000)


class RegistryWatch:
    """The registry file's records, reloaded when its (mtime, size, inode) changes or on request."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records = load_registry(path)
        self._sig = self._signature()
        self.reloads = 0

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def poll(self, force: bool = False) -> list[Enrolment] | None:
        """New records when the file changed (or force), else None."""
        sig = self._signature()
        if not force and sig == self._sig:
            return None
        self._sig = sig
        try:
            records = load_registry(self.path)
        except (AgentError, OSError) as exc:
            log.error("registry not reloaded, keeping the previous one: %s", exc)
            return None
        self.records = records
        self.reloads += 1
        log.info("registry reloaded: %d records (%d active)", len(records),
                 sum(r.status == "active" for r in records))
        return records


def mqtt_client(cfg: IngestConfig, client_id: str) -> mqtt.Client:
    """The worker's paho client: MQTT 5, PUBACKs sent by hand, credentials and TLS from [ingest]."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5, manual_ack=True)
    for name in ("ca_file", "cert_file", "key_file", "password_file"):
        value = getattr(cfg, name)
        if value and not Path(value).is_file():
            raise UsageError(f"ingest.{name} {value!r} not found")
    if cfg.username:
        password = Path(cfg.password_file).read_text().strip() if cfg.password_file else None
        client.username_pw_set(cfg.username, password)
    if cfg.tls:
        try:
            client.tls_set(ca_certs=cfg.ca_file or None, certfile=cfg.cert_file or None,
                           keyfile=cfg.key_file or None)
        except (OSError, ValueError) as exc:
            raise UsageError(f"ingest TLS files cannot be used: {exc}") from None
    return client


class IngestWorker:
    """Subscribe, batch, store, PUBACK and ack; built from its parts (from_config: [ingest])."""

    def __init__(self, cfg: IngestConfig, key: SigningKey, registry: RegistryWatch, store: Store,
                 client: mqtt.Client, client_id: str) -> None:
        self.cfg = cfg
        self.key = key  # signs the devices' acks
        self.registry = registry
        self.store = store
        self.classifier = Classifier(Verifier(self.registry.records), cfg.topic_prefix,
                                     cfg.max_message_bytes, cfg.quarantine_raw_bytes, client_id,
                                     cfg.max_manifest_bytes)
        self.pipeline = IngestPipeline(self.classifier, self.store)
        self.acks = AckScheduler(cfg.ack_interval_ms)
        # Bounded: QoS 1 deliveries are already bounded by our Receive Maximum (unPUBACKed until
        # committed), but QoS 0 are not. A full inbox drops QoS 0 (counted) and makes QoS 1 wait.
        self.inbox: queue.Queue[tuple[Message, int, int, int]] = queue.Queue(maxsize=cfg.inbox_max)
        self.dropped_qos0 = 0
        self.closing = threading.Event()  # set once the main loop no longer takes from the inbox
        self.stop_event = threading.Event()
        self.hup = threading.Event()
        self.acks_sent = 0
        self._subscribed = threading.Event()
        self.client = client
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        # PUBACKs go out only for messages received on the current connection: after a reconnect
        # a message id may name another message, and the old ones the broker has dropped anyway
        # (the devices re-send what the ingest did not acknowledge).
        self._connection = 0

    @classmethod
    def from_config(cls, cfg: IngestConfig, store: Store | None = None) -> IngestWorker:
        """The worker [ingest] describes: its key, registry, store (migrated) and MQTT client."""
        if not cfg.key:
            raise UsageError("ingest.key is not set: create one with `edge-agent keygen --out DIR "
                             "--device-id ingest --site central` and set "
                             "ingest.key = \"DIR/device.key\"")
        key = SigningKey.load(Path(cfg.key))
        registry = RegistryWatch(Path(cfg.registry))
        store = store or open_store(cfg.database)
        client_id = cfg.client_id or f"ingest-{socket.gethostname()}-{os.getpid()}"
        return cls(cfg, key, registry, store, mqtt_client(cfg, client_id), client_id)

    @property
    def topic_filter(self) -> str:
        return shared_filter(self.cfg.group, self.cfg.topic_prefix)

    # -- paho callbacks (network thread)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            log.error("broker refused the connection: %s", rc)
            return
        self._connection += 1
        log.info("connected to %s; subscribing %s", self.cfg.broker, self.topic_filter)
        client.subscribe(self.topic_filter, qos=1)

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, rcs: Any, props: Any) -> None:
        if any(rc.is_failure for rc in rcs):
            log.error("subscription refused: %s", [str(rc) for rc in rcs])
            return
        self._subscribed.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if not self.stop_event.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", rc)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        item = (
            Message(msg.topic, bytes(msg.payload), now_ms()),
            msg.mid,
            msg.qos,
            self._connection,
        )
        if msg.qos == 0:
            try:
                self.inbox.put_nowait(item)
            except queue.Full:
                self.dropped_qos0 += 1
                if self.dropped_qos0 in (1, 10, 100) or self.dropped_qos0 % 1000 == 0:
                    log.warning("inbox full (%d): %d QoS 0 message(s) dropped", self.cfg.inbox_max,
                                self.dropped_qos0)
            return
        # QoS 1 is never dropped: block this network thread (the broker holds the rest, and our
        # Receive Maximum stops it sending more) until the batch loop makes room. Once the loop has
        # stopped taking messages, leave it unPUBACKed: the broker or the device sends it again.
        while not self.closing.is_set():
            try:
                self.inbox.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    # -- main loop

    def connect(self, timeout_s: float = 10.0) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho: unannotated
        props.ReceiveMaximum = min(65535, max(20, 2 * self.cfg.batch_size))
        props.SessionExpiryInterval = 0
        self.client.reconnect_delay_set(1, 10)
        try:
            self.client.connect(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s,
                                clean_start=True, properties=props)
        except (OSError, ValueError) as exc:
            raise BrokerError(
                f"cannot reach the MQTT broker at {self.cfg.broker} ({exc})"
            ) from None
        self.client.loop_start()
        if not self._subscribed.wait(timeout_s):
            self.client.loop_stop()
            raise BrokerError(f"the broker at {self.cfg.broker} did not accept the subscription "
                              f"{self.topic_filter!r} (MQTT 5 shared subscriptions needed)")

    def _next_batch(self) -> list[tuple[Message, int, int, int]]:
        try:
            first = self.inbox.get(timeout=0.05)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.cfg.batch_ms / 1000.0
        while len(batch) < self.cfg.batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(
                    self.inbox.get(timeout=remaining) if remaining > 0 else self.inbox.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def step(self) -> int:
        """One batch: store, PUBACK, ack the devices that are due. Returns messages handled."""
        batch = self._next_batch()
        if batch:
            try:
                result = self.pipeline.process(m for m, _, _, _ in batch)
            except self.store.errors as exc:
                # Nothing of this batch is acknowledged: the broker and the devices still hold it.
                raise StateError(
                    f"the ingest database failed: {str(exc).strip().splitlines()[0]}"
                ) from None
            for _, mid, qos, conn in batch:
                if qos > 0 and conn == self._connection:
                    self.client.ack(mid, qos)
            for mark in result.marks.values():
                self.acks.mark(mark.device, mark.site, mark.ack_seq, capped=bool(mark.conflict_seq))
        self.send_due_acks()
        return len(batch)

    def send_due_acks(self) -> None:
        ts = now_ms()
        for device, site, seq in self.acks.due(ts):
            self.client.publish(ack_topic(self.cfg.topic_prefix, site, device),
                                ack_envelope(self.key, device, site, seq, ts), qos=1)
            self.acks_sent += 1

    def reload_registry(self, force: bool = False) -> None:
        records = self.registry.poll(force)
        if records is not None:
            self.classifier.verifier = Verifier(records)

    def run(self) -> None:
        self.connect()
        where = getattr(self.store, "path", None)  # an SQLite file: where it really is
        log.info("ingest worker ready: group %s, database %s", self.cfg.group,
                 where if where is not None else self.cfg.database.split("@")[-1])
        last_check = last_log = time.monotonic()
        try:
            while not self.stop_event.is_set():
                self.step()
                t = time.monotonic()
                if self.hup.is_set() or t - last_check >= 1.0:
                    self.reload_registry(force=self.hup.is_set())
                    self.hup.clear()
                    last_check = t
                if t - last_log >= 30.0:
                    self.log_totals()
                    last_log = t
            # Drain what already arrived, then the acks still pending.
            while self.step():
                pass
            deadline = time.monotonic() + self.cfg.ack_interval_ms / 1000.0 + 0.5
            while self.acks.pending and time.monotonic() < deadline:
                self.send_due_acks()
                time.sleep(0.02)
        finally:
            self.closing.set()
            self.log_totals()
            self.client.disconnect()
            self.client.loop_stop()
            self.store.close()
            log.info("ingest worker stopped")

    def log_totals(self) -> None:
        t = self.pipeline.totals
        log.info(
            "messages %d, stored %d, manifests %d, quarantined %s, ignored %s, acks %d, "
            "QoS 0 dropped (inbox full) %d",
            t.messages,
            t.stored,
            t.manifests,
            dict(t.quarantined),
            dict(t.ignored),
            self.acks_sent,
            self.dropped_qos0,
        )

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGHUP, lambda *_: self.hup.set())
