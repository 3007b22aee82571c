"""Observations -> anonymized event -> canonical bytes -> signed envelope -> outbox, in one step."""

from __future__ import annotations

import time
from collections import Counter
from typing import Callable, Iterable

from agent.events import encode
from agent.outbox import PRIORITY_ALARM, PRIORITY_EVENT, PRIORITY_PERIODIC, Outbox
from agent.privacy import Anonymizer
from agent.sign import EVENT_PAYLOAD_TYPE, SigningKey
from agent.types import Observation

PRIORITY_BY_TYPE = {"alarm": PRIORITY_ALARM, "heartbeat": PRIORITY_PERIODIC, "occupancy": PRIORITY_PERIODIC}


def event_topic(prefix: str, site: str, device: str, event_type: str) -> str:
    return f"{prefix}/{site}/{device}/event/{event_type}"


class Emitter:
    """The single path by which anything is queued to leave the device."""

    def __init__(
        self,
        anonymizer: Anonymizer,
        key: SigningKey,
        outbox: Outbox,
        topic_prefix: str = "edge/v1",
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        sink: Callable[[bytes], None] | None = None,
    ) -> None:
        self.anonymizer = anonymizer
        self.key = key
        self.outbox = outbox
        self.topic_prefix = topic_prefix
        self.clock_ms = clock_ms
        self.sink = sink
        self.counts: Counter[str] = Counter()

    def emit(self, observations: Iterable[Observation]) -> list[int]:
        seqs = []
        for obs in observations:
            ident = self.anonymizer.identity
            topic = event_topic(self.topic_prefix, ident.site, ident.device, obs.type)
            stored: list[bytes] = []

            def build(seq: int, obs: Observation = obs, topic: str = topic) -> tuple[str, bytes]:
                event = self.anonymizer.event(obs, seq, self.clock_ms())
                if event is None:
                    raise _Suppressed
                envelope = self.key.envelope(EVENT_PAYLOAD_TYPE, encode(event))
                stored.append(envelope)
                return topic, envelope

            try:
                seq = self.outbox.append(build, PRIORITY_BY_TYPE.get(obs.type, PRIORITY_EVENT))
            except _Suppressed:
                continue
            self.counts[obs.type] += 1
            seqs.append(seq)
            if self.sink is not None:
                self.sink(stored[-1])
        return seqs


class _Suppressed(Exception):
    """Raised inside the outbox transaction to roll back an event privacy would not let out."""
