"""Outbox -> broker in its own thread: pipelined QoS 1 publishes, back-off, PUBACK codes, acks.

The frame loop only appends to the outbox; this thread is the only one that talks to the
network, so a broker outage never slows detection. Rows are sent in seq order (so the ingest's
highest contiguous seq can advance) and leave the outbox only on the ack the mode waits for:
  ack = "broker": a successful PUBACK (reason code < 0x80), deleted in batches;
  ack = "ingest": a signed ingest ack naming the highest contiguous seq stored; rows still
                  unacknowledged are re-sent after outbox.resend_s without progress, or on
                  reconnect.
A PUBACK failure (e.g. 0x87 not authorized) keeps the row and raises one alarm per topic and code.
An unexpected exception inside the thread (a parser bug hit by a crafted message, say) never ends
it: it is logged once with its traceback, counted (restarts, the heartbeat's sender_restarts), the
session is dropped and the loop starts again after a capped back-off; the rows stay in the outbox.

The sender is a small state machine (Link: DOWN, waiting for its next connect; UP, a session
carries rows) over four parts: Retry (when to connect again), Window (what is in flight on this
connection), Deletes (acknowledged rows not yet deleted) and Alarms (observations for the frame
loop). The session is a port (agent.delivery.session): MQTT in production, in-memory in tests.
"""

from __future__ import annotations

import collections
import enum
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from agent.config import Config, MqttConfig
from agent.delivery.ingest_keys import load_ingest_keys
from agent.delivery.mqtt import Session as MqttSession
from agent.delivery.mqtt import check_files
from agent.delivery.outbox import Outbox
from agent.delivery.session import (
    ANNOUNCE,
    WAKE,
    Connected,
    Disconnected,
    Events,
    PubAck,
    Received,
    Session,
    SessionEvent,
    SessionFactory,
)
from agent.errors import AgentError, BrokerError, SignatureError, StateError
from agent.protocol import topics
from agent.protocol.acks import ack_seq
from agent.types import Observation

log = logging.getLogger(__name__)

DELETE_BATCH = 500
DELETE_EVERY_S = 0.02

AckParser = Callable[[bytes, dict[str, bytes], str, str], int]


def backoff_s(
    failures: int, lo: float, hi: float, rnd: Callable[[], float] = random.random
) -> float:
    """Capped exponential back-off with 'equal jitter': half fixed, half random."""
    cap = min(hi, lo * float(2 ** max(0, failures - 1)))
    return cap / 2 + rnd() * cap / 2


class Link(enum.Enum):
    """Where the sender stands with the broker."""

    DOWN = "down"  # no session: the next connect is due at Retry.next_attempt
    UP = "up"  # a session carries rows


@dataclass
class Retry:
    """When to try the broker again: back-off after failed connects and after unexpected errors."""

    lo: float
    hi: float
    failures: int = 0  # failed connects in a row (0 once connected)
    crash_streak: int = 0  # unexpected errors with no successful PUBACK between: the back-off
    next_attempt: float = 0.0  # monotonic time of the next connect

    def wait_s(self, now: float) -> float:
        """Seconds until the next connect may start (0: now)."""
        return max(0.0, self.next_attempt - now)

    def connect_failed(self, now: float) -> float:
        self.failures += 1
        delay = backoff_s(self.failures, self.lo, self.hi)
        self.next_attempt = now + delay
        return delay

    def crashed(self, now: float) -> None:
        self.crash_streak += 1
        self.failures = max(self.failures, 1)
        self.next_attempt = now + backoff_s(self.crash_streak, self.lo, self.hi)

    def lost(self, now: float) -> None:
        self.failures = 1
        self.next_attempt = now + backoff_s(1, self.lo, self.hi)


@dataclass
class Window:
    """What is in flight on this connection, and where the next rows start."""

    inflight: dict[int, tuple[int, str]] = field(default_factory=dict)  # mid -> (seq, topic)
    cursor: int = 0  # highest seq handed to the session on this connection
    progress_at: float = field(default_factory=time.monotonic)  # last ingest ack that advanced

    def restart(self, now: float) -> None:
        """A new connection: everything still in the outbox is sent again."""
        self.inflight.clear()
        self.cursor = 0
        self.progress_at = now


class Deletes:
    """Rows the broker acknowledged, deleted from the outbox in batches (a full disk: kept)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.pending: list[int] = []
        self.last_flush = 0.0
        self.failing = False  # the outbox refused a delete (full disk): logged once

    def due(self, now: float, nothing_in_flight: bool) -> bool:
        if not self.pending:
            return False
        return (len(self.pending) >= DELETE_BATCH or now - self.last_flush >= DELETE_EVERY_S
                or nothing_in_flight)

    def flush(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            try:
                self.outbox.ack(batch)
            except StateError as exc:  # kept for the next flush: delivered, only not yet deleted
                self.pending = batch + self.pending
                self.failed(exc)
            else:
                if self.failing:
                    self.failing = False
                    log.info("the outbox accepts deletes again")
        self.last_flush = time.monotonic()

    def failed(self, exc: StateError) -> None:
        if not self.failing:
            self.failing = True
            log.warning("%s; delivered envelopes stay in the outbox until it can delete them", exc)


class Alarms:
    """Alarms the sender raises for the frame loop (a refused publish: once per topic and code)."""

    def __init__(self) -> None:
        self._pending: collections.deque[Observation] = collections.deque()
        self._raised: set[tuple[str, int]] = set()

    def once(self, key: tuple[str, int], observation: Observation) -> bool:
        """Queue observation unless key was raised before; whether it was queued."""
        if key in self._raised:
            return False
        self._raised.add(key)
        self._pending.append(observation)
        return True

    def take(self) -> list[Observation]:
        out = []
        while self._pending:
            out.append(self._pending.popleft())
        return out


@dataclass
class SenderCounters:
    """The sender's numbers, for the heartbeat, the outbox stats and the bench."""

    pubacks: int = 0
    denied: int = 0
    reconnects: int = 0
    acked_seq: int = 0
    bad_acks: int = 0
    last_refused_code: int = 0
    last_error: str = ""
    restarts: int = 0  # unexpected errors the thread recovered from


class Sender:
    def __init__(
        self,
        outbox: Outbox,
        mqtt_cfg: MqttConfig,
        device: str,
        site: str,
        ack: str = "broker",
        ingest_keys: dict[str, bytes] | None = None,
        resend_s: float = 30.0,
        manifest: bytes | None = None,
        on_puback: Callable[[list[int]], None] | None = None,
        parse_ack: AckParser = ack_seq,
        *,
        open_session: SessionFactory | None = None,
        on_command: Callable[[bytes, bool], None] | None = None,
    ) -> None:
        """open_session: the session backend (default: MQTT to mqtt_cfg's broker).
        on_command: (payload, retained) of each message on the device's cmd topic (remote config)."""
        if ack == "ingest" and not ingest_keys:
            raise BrokerError("ack = 'ingest' needs the ingest's public keys (outbox.ingest_keys)")
        self.outbox = outbox
        self.cfg = mqtt_cfg
        self.device, self.site = device, site
        self.ack_mode = ack
        self.ingest_keys = ingest_keys or {}
        self.resend_s = resend_s
        self.on_puback = on_puback
        self.parse_ack = parse_ack  # verifies, then parses; SignatureError for a bad ack
        self.manifest = manifest  # what every connection publishes retained (a remote change swaps it)
        self.birth: bytes | None = None  # the retained birth (agent.protocol.birth), set by the assembly
        self.ha: Any = None  # agent.device.homeassistant.Discovery when discovery is on, set by the assembly
        self.on_command = on_command
        self.cmd_topic = topics.cmd_topic(mqtt_cfg.topic_prefix, site, device)
        self.open_session: SessionFactory = open_session or self._open_mqtt
        self.link = Link.DOWN
        self.session: Session | None = None
        self.events: Events = queue.SimpleQueue()
        self.retry = Retry(mqtt_cfg.backoff_min_s, mqtt_cfg.backoff_max_s)
        self.window = Window()
        self.deletes = Deletes(outbox)
        self.alarms = Alarms()
        self.counters = SenderCounters()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.turns = 0  # turns of the thread's loop (the systemd watchdog reads it)
        self._idle = threading.Event()  # connected, caught up and answered (see idle())
        self._wake_pending = False  # a WAKE is on the queue and not yet read
        self._appends = 0  # outbox appends seen, so a row appended during a check is never missed
        outbox.on_append = self._wake

    def _open_mqtt(self, events: Events) -> Session:
        """The MQTT session, with what this connection must publish and subscribe to now."""
        return MqttSession(self.cfg, self.device, self.site, events, self.manifest,
                           subscribe_acks=self.ack_mode == "ingest", birth=self.birth, ha=self.ha,
                           subscribe_cmd=self.on_command is not None)

    @classmethod
    def from_config(cls, cfg: Config, outbox: Outbox, manifest: bytes | None = None,
                    on_puback: Callable[[list[int]], None] | None = None,
                    on_command: Callable[[bytes, bool], None] | None = None) -> Sender:
        if cfg.mqtt is None:
            raise BrokerError("no [mqtt] section: nothing to publish to")
        check_files(cfg.mqtt)
        keys = load_ingest_keys(cfg.outbox.ingest_keys) if cfg.outbox.ack == "ingest" else None
        return cls(outbox, cfg.mqtt, cfg.device.id, cfg.device.site, cfg.outbox.ack, keys,
                   cfg.outbox.resend_s, manifest, on_puback, on_command=on_command)

    # -- the numbers (read by the heartbeat, the commands, the bench and the tests)

    @property
    def connected(self) -> bool:
        return self.link is Link.UP

    @property
    def pubacks(self) -> int:
        return self.counters.pubacks

    @property
    def denied(self) -> int:
        return self.counters.denied

    @property
    def reconnects(self) -> int:
        return self.counters.reconnects

    @property
    def acked_seq(self) -> int:
        return self.counters.acked_seq

    @property
    def bad_acks(self) -> int:
        return self.counters.bad_acks

    @property
    def last_refused_code(self) -> int:
        return self.counters.last_refused_code

    @property
    def last_error(self) -> str:
        return self.counters.last_error

    @property
    def restarts(self) -> int:
        return self.counters.restarts

    # -- API for the frame loop and the health stage

    def take_observations(self) -> list[Observation]:
        """Alarms raised by the sender since the last call (the frame loop emits them)."""
        return self.alarms.take()

    def announce(self, manifest: bytes | None = None) -> None:
        """Publish the birth and the manifest again (a new manifest when given), from the sender's thread."""
        if manifest is not None:
            self.manifest = manifest  # also what every later connection publishes
        self.events.put(ANNOUNCE)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="edge-agent-sender", daemon=True)
        self._thread.start()

    def running(self) -> bool:
        """The publishing thread is started and has not ended (it survives bad messages)."""
        return self._thread is not None and self._thread.is_alive()

    def idle(self) -> bool:
        """Connected, and everything in the outbox was handed to the broker and answered."""
        return self._idle.is_set()

    def stop(self, flush_s: float = 10.0) -> None:
        """Give the sender up to flush_s to flush (see _flushed), then stop, closing the session."""
        deadline = time.monotonic() + flush_s
        while time.monotonic() < deadline and not self._flushed() and self.running():
            if self.link is Link.DOWN and self.retry.failures:
                break  # the broker is away: the rows wait in the outbox for the next start
            time.sleep(0.02)
        self._stop.set()
        self.events.put(WAKE)
        if self._thread is not None:
            self._thread.join(timeout=15)

    # -- the thread

    def _flushed(self) -> bool:
        """Nothing left to wait for: idle and, with ack = "ingest", every row acknowledged."""
        return self.idle() and (self.ack_mode != "ingest" or self.outbox.rows == 0)

    def _wake(self) -> None:
        self._appends += 1  # read by _step so a row appended during its check is never missed
        self._idle.clear()
        if not self._wake_pending:
            self._wake_pending = True
            self.events.put(WAKE)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.turns += 1  # progress, read by the systemd watchdog (a wedged sender stops it)
                try:
                    if self.link is Link.DOWN:
                        self._connect()
                        continue
                    self._step()
                except Exception as exc:  # the sender must never die: count, log once, start again
                    self._recover(exc)
        finally:
            try:
                self.deletes.flush()
                if self.session is not None:
                    self.session.close(graceful=True)
            except Exception:
                log.exception("closing the sender failed; envelopes stay in the outbox")
            self.session = None
            self.link = Link.DOWN

    def _recover(self, exc: Exception) -> None:
        """After an unexpected error: drop the session and retry after a capped back-off."""
        self.counters.restarts += 1
        if self.counters.restarts == 1:
            log.exception("unexpected error in the sender thread; it starts again with back-off "
                          "(envelopes stay in the outbox; further errors are counted in "
                          "sender_restarts)")
        else:
            log.debug("unexpected error in the sender thread (%d so far): %r",
                      self.counters.restarts, exc)
        try:
            self._lose_session()
        except Exception:  # closing a broken session may fail too: forget it, start clean
            self._down()
        self.retry.crashed(time.monotonic())

    def _connect(self) -> None:
        wait = self.retry.wait_s(time.monotonic())
        if wait > 0:
            self._stop.wait(min(wait, 0.5))
            return
        self.events = queue.SimpleQueue()
        self._wake_pending = False
        session = self.open_session(self.events)
        try:
            session.connect()
        except AgentError as exc:
            delay = self.retry.connect_failed(time.monotonic())
            if str(exc) != self.counters.last_error:
                log.warning("%s; retrying with back-off (next in %.1f s)", exc, delay)
            self.counters.last_error = str(exc)
            return
        if self.retry.failures or self.counters.reconnects:
            log.info("connected to the MQTT broker at %s:%d", self.cfg.host, self.cfg.port)
        self.counters.reconnects += 1
        self.retry.failures = 0
        self.counters.last_error = ""
        self.session = session
        self.link = Link.UP
        self.window.restart(time.monotonic())

    def _step(self) -> None:
        session = self.session
        assert session is not None
        window = self.window
        appends = self._appends
        # 1. hand rows to the session while the window has room
        room = session.window - len(window.inflight)
        sent_any = False
        if room > 0:
            for row in self.outbox.peek(room, after_seq=window.cursor):
                mid = session.publish(row.topic, row.envelope)
                if mid is None:
                    break
                window.inflight[mid] = (row.seq, row.topic)
                window.cursor = row.seq
                sent_any = True
        # 2. answers from the network
        lost = False
        try:
            item = self.events.get_nowait() if sent_any else self.events.get(timeout=0.05)
            while True:
                if isinstance(item, Disconnected):
                    lost = True
                    log.warning("lost the MQTT broker (%s); envelopes stay in the outbox",
                                item.reason)
                else:
                    self._handle(item)
                item = self.events.get_nowait()
        except queue.Empty:
            pass
        # 3. Home Assistant state, batched deletes, ingest re-sends, idle mark
        if self.ha is not None:
            self.ha.flush(session.publish_retained)
        now = time.monotonic()
        if self.deletes.due(now, not window.inflight):
            self.deletes.flush()
        stalled = now - window.progress_at >= self.resend_s
        if self.ack_mode == "ingest" and window.cursor and stalled:
            if self.outbox.rows:
                log.info("no ingest ack for %.0f s: sending the %d unacknowledged envelopes again",
                         now - window.progress_at, self.outbox.rows)
                window.cursor = 0
            window.progress_at = now
        if lost:
            self._lose_session()
            return
        caught_up = (not window.inflight and not self.deletes.pending
                     and not self.outbox.peek(1, window.cursor))
        if caught_up and appends == self._appends:
            self._idle.set()
        else:
            self._idle.clear()

    def _handle(self, item: SessionEvent) -> None:
        if item is WAKE:
            self._wake_pending = False
        elif item is ANNOUNCE:
            if self.session is not None:
                self.session.announce(self.manifest, self.birth)
        elif isinstance(item, PubAck):
            entry = self.window.inflight.pop(item.mid, None)
            if entry is None:
                return
            seq, topic = entry
            if item.code >= 0x80:
                self._refused(seq, topic, item.code)
                return
            self.counters.pubacks += 1
            self.retry.crash_streak = 0
            if self.ack_mode == "broker":
                self.deletes.pending.append(seq)
            if self.on_puback is not None:
                self.on_puback([seq])
        elif isinstance(item, Received):
            if item.topic == self.cmd_topic:
                if self.on_command is not None:
                    self.on_command(item.payload, item.retained)
            else:
                self._ingest_ack(item)
        elif isinstance(item, Connected):
            pass

    def _refused(self, seq: int, topic: str, code: int) -> None:
        self.counters.denied += 1
        self.counters.last_refused_code = code
        alarm = Observation(type="alarm", rule="publish_denied", label="", t_s=time.monotonic(),
                            values={"count": self.counters.denied})
        if self.alarms.once((topic, code), alarm):
            what = "not authorized" if code == 0x87 else f"reason code 0x{code:02x}"
            log.warning("the broker refused seq %d on its topic (%s); it stays in the outbox",
                        seq, what)

    def _ingest_ack(self, msg: Received) -> None:
        try:
            seq = self.parse_ack(msg.payload, self.ingest_keys, self.device, self.site)
        except SignatureError as exc:
            self.counters.bad_acks += 1
            if self.counters.bad_acks == 1:
                log.warning("ignored an ingest ack that failed verification (%s)", exc.reason)
            return
        if seq > self.counters.acked_seq:
            try:
                self.outbox.ack_upto(seq)
            except StateError as exc:  # e.g. a full disk: the next ack (or a resend's) deletes them
                self.deletes.failed(exc)
                return
            self.counters.acked_seq = seq
            self.window.progress_at = time.monotonic()

    def _down(self) -> None:
        """Forget the session: nothing is in flight, nothing is idle."""
        self.session = None
        self.link = Link.DOWN
        self._idle.clear()
        self.window.inflight.clear()

    def _lose_session(self) -> None:
        self.deletes.flush()
        if self.session is not None:
            self.session.close()
        self._down()
        self.retry.lost(time.monotonic())
