"""Outbox -> broker in its own thread: pipelined QoS 1 publishes, back-off, PUBACK codes, acks.

The frame loop only appends to the outbox; this thread is the only one that talks to the
network, so a broker outage never slows detection. Rows are sent in seq order (so the ingest's
highest contiguous seq can advance) and leave the outbox only on the ack the mode waits for:
  ack = "broker": a successful PUBACK (reason code < 0x80), deleted in batches;
  ack = "ingest": a signed ingest ack naming the highest contiguous seq stored; rows still
                  unacknowledged are re-sent after outbox.resend_s without progress, or on reconnect.
A PUBACK failure (e.g. 0x87 not authorized) keeps the row and raises one alarm per topic and code.
An unexpected exception inside the thread (a parser bug hit by a crafted message, say) never ends it:
it is logged once with its traceback, counted (restarts, the heartbeat's sender_restarts), the session
is dropped and the loop starts again after a capped back-off; the rows stay in the outbox.
"""

from __future__ import annotations

import collections
import logging
import queue
import random
import threading
import time
from typing import Callable

from agent.config import Config, MqttConfig
from agent.errors import AgentError, BrokerError, SignatureError, StateError
from agent.delivery.outbox import Outbox
from agent.delivery.acks import load_ingest_keys
from agent.protocol.acks import ack_seq
from agent.delivery.mqtt import check_files, Connected, Disconnected, Message, PubAck, Session
from agent.types import Observation

log = logging.getLogger(__name__)

DELETE_BATCH = 500
DELETE_EVERY_S = 0.02


class _Wake:
    pass


WAKE = _Wake()


def backoff_s(failures: int, lo: float, hi: float, rnd: Callable[[], float] = random.random) -> float:
    """Capped exponential back-off with 'equal jitter': half fixed, half random."""
    cap = min(hi, lo * float(2 ** max(0, failures - 1)))
    return cap / 2 + rnd() * cap / 2


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
        parse_ack: Callable[[bytes, dict[str, bytes], str, str], int] = ack_seq,
    ) -> None:
        if ack == "ingest" and not ingest_keys:
            raise BrokerError("ack = 'ingest' needs the ingest's public keys (outbox.ingest_keys)")
        self.outbox = outbox
        self.cfg = mqtt_cfg
        self.device, self.site = device, site
        self.ack_mode = ack
        self.ingest_keys = ingest_keys or {}
        self.resend_s = resend_s
        self.manifest = manifest
        self.on_puback = on_puback
        self.parse_ack = parse_ack  # verifies, then parses; SignatureError for a bad ack
        self.events: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observations: collections.deque[Observation] = collections.deque()
        self._alarmed: set[tuple[str, int]] = set()
        self._session: Session | None = None
        self._inflight: dict[int, tuple[int, str]] = {}  # mid -> (seq, topic)
        self._cursor = 0  # highest seq handed to the session on this connection
        self._to_delete: list[int] = []
        self._last_delete = 0.0
        self._failures = 0
        self._next_attempt = 0.0
        self._progress_at = time.monotonic()
        self._idle = threading.Event()
        self._wake_pending = False
        self._appends = 0
        # numbers for the heartbeat, outbox stats and the bench
        self.connected = False
        self.pubacks = 0
        self.denied = 0
        self.reconnects = 0
        self.acked_seq = 0
        self.bad_acks = 0
        self.last_refused_code = 0
        self.last_error = ""
        self.restarts = 0  # unexpected errors the thread recovered from
        self._crash_streak = 0  # ... in a row without a PUBACK between: drives the back-off
        self._state_failing = False  # the outbox refused a delete (full disk): logged once
        outbox.on_append = self._wake

    @classmethod
    def from_config(cls, cfg: Config, outbox: Outbox, manifest: bytes | None = None,
                    on_puback: Callable[[list[int]], None] | None = None) -> Sender:
        if cfg.mqtt is None:
            raise BrokerError("no [mqtt] section: nothing to publish to")
        check_files(cfg.mqtt)
        keys = load_ingest_keys(cfg.outbox.ingest_keys) if cfg.outbox.ack == "ingest" else None
        return cls(outbox, cfg.mqtt, cfg.device.id, cfg.device.site, cfg.outbox.ack, keys,
                   cfg.outbox.resend_s, manifest, on_puback)

    # -- API for the frame loop and the health stage

    def take_observations(self) -> list[Observation]:
        """Alarms raised by the sender since the last call (the frame loop emits them)."""
        out = []
        while self._observations:
            out.append(self._observations.popleft())
        return out

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="edge-agent-sender", daemon=True)
        self._thread.start()

    def idle(self) -> bool:
        """Connected, and everything in the outbox was handed to the broker and answered."""
        return self._idle.is_set()

    def stop(self, flush_s: float = 10.0) -> None:
        """Give the sender up to flush_s to flush (see _flushed), then stop and close the session."""
        deadline = time.monotonic() + flush_s
        while time.monotonic() < deadline and not self._flushed() and self._thread and self._thread.is_alive():
            if not self.connected and self._failures:
                break  # the broker is away: the rows wait in the outbox for the next start
            time.sleep(0.02)
        self._stop.set()
        self.events.put(WAKE)
        if self._thread is not None:
            self._thread.join(timeout=15)

    # -- the thread

    def _flushed(self) -> bool:
        """Nothing left to wait for: idle and, with ack = "ingest", every row acknowledged by the ingest."""
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
                try:
                    if self._session is None:
                        self._connect()
                        continue
                    self._step()
                except Exception as exc:  # the sender must never die: count, log once, start again
                    self._recover(exc)
        finally:
            try:
                self._flush_deletes()
                if self._session is not None:
                    self._session.close(graceful=True)
            except Exception:
                log.exception("closing the sender failed; envelopes stay in the outbox")
            self._session = None
            self.connected = False

    def _recover(self, exc: Exception) -> None:
        """After an unexpected error: drop the session and retry after a capped back-off."""
        self.restarts += 1
        self._crash_streak += 1
        if self.restarts == 1:
            log.exception("unexpected error in the sender thread; it starts again with back-off "
                          "(envelopes stay in the outbox; further errors are counted in sender_restarts)")
        else:
            log.debug("unexpected error in the sender thread (%d so far): %r", self.restarts, exc)
        try:
            self._lose_session()
        except Exception:  # closing a broken session may fail too: forget it, the next connect starts clean
            self._session = None
            self.connected = False
            self._idle.clear()
            self._inflight.clear()
        delay = backoff_s(self._crash_streak, self.cfg.backoff_min_s, self.cfg.backoff_max_s)
        self._failures = max(self._failures, 1)
        self._next_attempt = time.monotonic() + delay

    def _connect(self) -> None:
        now = time.monotonic()
        if now < self._next_attempt:
            self._stop.wait(min(self._next_attempt - now, 0.5))
            return
        self.events = queue.SimpleQueue()
        self._wake_pending = False
        session = Session(self.cfg, self.device, self.site, self.events, self.manifest,
                          subscribe_acks=self.ack_mode == "ingest")
        try:
            session.connect()
        except AgentError as exc:
            self._failures += 1
            delay = backoff_s(self._failures, self.cfg.backoff_min_s, self.cfg.backoff_max_s)
            self._next_attempt = time.monotonic() + delay
            if str(exc) != self.last_error:
                log.warning("%s; retrying with back-off (next in %.1f s)", exc, delay)
            self.last_error = str(exc)
            return
        if self._failures or self.reconnects:
            log.info("connected to the MQTT broker at %s:%d", self.cfg.host, self.cfg.port)
        self.reconnects += 1
        self._failures = 0
        self.last_error = ""
        self._session = session
        self.connected = True
        self._inflight.clear()
        self._cursor = 0  # on every (re)connect, everything still in the outbox is sent again
        self._progress_at = time.monotonic()

    def _step(self) -> None:
        session = self._session
        assert session is not None
        appends = self._appends
        # 1. hand rows to the session while the window has room
        window = session.window
        sent_any = False
        if len(self._inflight) < window:
            rows = self.outbox.peek(window - len(self._inflight), after_seq=self._cursor)
            for row in rows:
                mid = session.publish(row.topic, row.envelope)
                if mid is None:
                    break
                self._inflight[mid] = (row.seq, row.topic)
                self._cursor = row.seq
                sent_any = True
        # 2. answers from the network
        timeout = 0.0 if sent_any else 0.05
        lost = False
        try:
            item = self.events.get(timeout=timeout) if timeout else self.events.get_nowait()
            while True:
                if isinstance(item, Disconnected):
                    lost = True
                    log.warning("lost the MQTT broker (%s); envelopes stay in the outbox", item.reason)
                else:
                    self._handle(item)
                item = self.events.get_nowait()
        except queue.Empty:
            pass
        # 3. batched deletes, ingest re-sends, idle mark
        now = time.monotonic()
        if self._to_delete and (len(self._to_delete) >= DELETE_BATCH or now - self._last_delete >= DELETE_EVERY_S
                                or not self._inflight):
            self._flush_deletes()
        if self.ack_mode == "ingest" and self._cursor and now - self._progress_at >= self.resend_s:
            if self.outbox.rows:
                log.info("no ingest ack for %.0f s: sending the %d unacknowledged envelopes again",
                         now - self._progress_at, self.outbox.rows)
                self._cursor = 0
            self._progress_at = now
        if lost:
            self._lose_session()
            return
        caught_up = not self._inflight and not self._to_delete and not self.outbox.peek(1, self._cursor)
        if caught_up and appends == self._appends:
            self._idle.set()
        else:
            self._idle.clear()

    def _handle(self, item: object) -> None:
        if item is WAKE:
            self._wake_pending = False
        elif isinstance(item, PubAck):
            entry = self._inflight.pop(item.mid, None)
            if entry is None:
                return
            seq, topic = entry
            if item.code >= 0x80:
                self._refused(seq, topic, item.code)
                return
            self.pubacks += 1
            self._crash_streak = 0
            if self.ack_mode == "broker":
                self._to_delete.append(seq)
            if self.on_puback is not None:
                self.on_puback([seq])
        elif isinstance(item, Message):
            self._ingest_ack(item)
        elif isinstance(item, Connected):
            pass

    def _refused(self, seq: int, topic: str, code: int) -> None:
        self.denied += 1
        self.last_refused_code = code
        key = (topic, code)
        if key in self._alarmed:
            return
        self._alarmed.add(key)
        what = "not authorized" if code == 0x87 else f"reason code 0x{code:02x}"
        log.warning("the broker refused seq %d on its topic (%s); it stays in the outbox", seq, what)
        self._observations.append(
            Observation(type="alarm", rule="publish_denied", label="", t_s=time.monotonic(),
                        values={"count": self.denied})
        )

    def _ingest_ack(self, msg: Message) -> None:
        try:
            seq = self.parse_ack(msg.payload, self.ingest_keys, self.device, self.site)
        except SignatureError as exc:
            self.bad_acks += 1
            if self.bad_acks == 1:
                log.warning("ignored an ingest ack that failed verification (%s)", exc.reason)
            return
        if seq > self.acked_seq:
            try:
                self.outbox.ack_upto(seq)
            except StateError as exc:  # e.g. a full disk: the next ack (or a resend's) deletes them
                self._outbox_failed(exc)
                return
            self.acked_seq = seq
            self._progress_at = time.monotonic()

    def _flush_deletes(self) -> None:
        if self._to_delete:
            batch, self._to_delete = self._to_delete, []
            try:
                self.outbox.ack(batch)
            except StateError as exc:  # kept for the next flush: the rows are delivered, only not yet deleted
                self._to_delete = batch + self._to_delete
                self._outbox_failed(exc)
            else:
                if self._state_failing:
                    self._state_failing = False
                    log.info("the outbox accepts deletes again")
        self._last_delete = time.monotonic()

    def _outbox_failed(self, exc: StateError) -> None:
        if not self._state_failing:
            self._state_failing = True
            log.warning("%s; delivered envelopes stay in the outbox until it can delete them", exc)

    def _lose_session(self) -> None:
        self._flush_deletes()
        if self._session is not None:
            self._session.close()
        self._session = None
        self.connected = False
        self._idle.clear()
        self._inflight.clear()
        self._failures = 1
        self._next_attempt = time.monotonic() + backoff_s(1, self.cfg.backoff_min_s, self.cfg.backoff_max_s)
