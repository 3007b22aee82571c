"""Observations -> anonymized event -> canonical bytes -> signed envelope -> guard -> outbox.

The single path into the outbox. A payload the egress guard refuses is never queued: the
outbox transaction rolls back (its seq is not consumed), the refusal is counted, and an
"alarm" event with reason "egress_refused" (which passes the same guard) is queued instead,
at most one per refusal reason per `alarm_every_ms`, carrying the running refusal count.
An event the disk has no room for is skipped (the outbox counts it in lost_disk_full and logs the
episode once), so a full disk never stops the frame loop.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Callable, Iterable

from agent.privacy.egress import EgressGuard, Refused
from agent.protocol.body import encode
from agent.delivery.outbox import (
    PRIORITY_ALARM,
    PRIORITY_EVENT,
    PRIORITY_PERIODIC,
    DiskFull,
    DropReport,
    Outbox,
)
from agent.privacy.anonymizer import Anonymizer
from agent.protocol.dsse import EVENT_PAYLOAD_TYPE, SigningKey
from agent.protocol.topics import DEFAULT_PREFIX, event_topic
from agent.types import Observation

log = logging.getLogger(__name__)

PRIORITY_BY_TYPE = {
    "alarm": PRIORITY_ALARM,
    "config": PRIORITY_ALARM,
    "heartbeat": PRIORITY_PERIODIC,
    "occupancy": PRIORITY_PERIODIC,
}
# Events a person may act on at once: with a commit window (SD cards) they are committed, and so
# sent, as soon as they are made, with whatever the window holds; counts and crossings may wait.
URGENT_TYPES = frozenset({"alarm", "config", "loitering_start", "unattended_object", "gathering_start",
                          "setup_view_opened", "setup_view_closed"})


class Emitter:
    """The single path by which anything is queued to leave the device."""

    def __init__(
        self,
        anonymizer: Anonymizer,
        key: SigningKey,
        outbox: Outbox,
        topic_prefix: str = DEFAULT_PREFIX,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        sink: Callable[[bytes], None] | None = None,
        guard: EgressGuard | None = None,
        alarm_every_ms: int = 60_000,
    ) -> None:
        self.anonymizer = anonymizer
        self.key = key
        self.outbox = outbox
        self.topic_prefix = topic_prefix
        self.clock_ms = clock_ms
        self.sink = sink
        self.counts: Counter[str] = Counter()
        self.guard = guard if guard is not None else EgressGuard()
        self.alarm_every_ms = alarm_every_ms
        self._last_alarm_ms: dict[str, int] = {}

    @property
    def egress_refused(self) -> int:
        """Payloads the guard refused so far (for the heartbeat's egress_refused)."""
        return self.guard.total_refused

    def emit(self, observations: Iterable[Observation]) -> list[int]:
        """Queue what may leave of each observation; the seqs allocated, in order."""
        seqs = []
        for obs in observations:
            try:
                try:
                    seq = self._queue(obs)
                except Refused as exc:
                    seq = self._alarm(exc.reason)
            except DiskFull:
                # counted by the outbox, reported by the next heartbeat that can be stored
                seq = None
            if seq is not None:
                seqs.append(seq)
        self.outbox.end_batch()  # marks waiting for this batch (coverage's alive mark) follow its commit
        return seqs

    def _queue(self, obs: Observation) -> int | None:
        ident = self.anonymizer.identity
        topic = event_topic(self.topic_prefix, ident.site, ident.device, obs.type)
        stored: list[bytes] = []

        def build(seq: int) -> tuple[str, bytes]:
            event = self.anonymizer.event(obs, seq, self.clock_ms())
            if event is None:
                raise _Suppressed
            body = encode(event)
            envelope = self.key.envelope(EVENT_PAYLOAD_TYPE, body)
            self.guard.check(EVENT_PAYLOAD_TYPE, body, envelope)  # raises Refused: rolled back
            stored.append(envelope)
            return topic, envelope

        carries = None
        if obs.type == "heartbeat" and obs.values.get("dropped_events"):
            carries = DropReport(
                obs.values["dropped_events"],
                obs.values.get("dropped_seq_first", 0),
                obs.values.get("dropped_seq_last", 0),
            )
        try:
            seq = self.outbox.append(build, PRIORITY_BY_TYPE.get(obs.type, PRIORITY_EVENT), carries,
                                     urgent=obs.type in URGENT_TYPES)
        except _Suppressed:
            return None
        self.counts[obs.type] += 1
        if self.sink is not None:
            self.sink(stored[-1])
        return seq

    def _alarm(self, reason: str) -> int | None:
        """Queue the egress_refused alarm for a refusal, unless one for this reason is recent."""
        now = self.clock_ms()
        last = self._last_alarm_ms.get(reason)
        if last is not None and now - last < self.alarm_every_ms:
            return None
        self._last_alarm_ms[reason] = now
        alarm = Observation(
            "alarm", f"egress-{reason}", "", 0.0,
            {"egress_refused": self.guard.total_refused}, reason="egress_refused",
        )
        try:
            return self._queue(alarm)
        except Refused:  # a bug in the alarm itself: never loop, the count still says it
            log.error("the egress_refused alarm was itself refused; refusals are still counted")
            return None


class _Suppressed(Exception):
    """Raised inside the outbox transaction to roll back an event privacy would not let out."""
