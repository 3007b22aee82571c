"""A batch of received messages -> classified -> stored in one transaction -> marks to ack."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, TypeVar

from agent.central.ingest.classify import Classifier, Ignored
from agent.central.store.base import Store
from agent.central.store.rows import DeviceMark, EventRow, ManifestRow, QuarantineRow

T = TypeVar("T")


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    received_ms: int


@dataclass
class BatchResult:
    stored: int = 0
    manifests: int = 0  # verified manifests (a retained copy seen again counts again)
    quarantined: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    marks: dict[str, DeviceMark] = field(default_factory=dict)


@dataclass
class Totals:
    """Running numbers of one worker, for its log line and the benchmark."""

    messages: int = 0
    stored: int = 0
    manifests: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    batches: int = 0

    def add(self, n: int, r: BatchResult) -> None:
        self.messages += n
        self.stored += r.stored
        self.manifests += r.manifests
        self.quarantined.update(r.quarantined)
        self.ignored.update(r.ignored)
        self.batches += 1


class IngestPipeline:
    """classify every message, store the batch, then advance the touched devices' marks."""

    def __init__(self, classifier: Classifier, store: Store, retries: int = 5) -> None:
        self.classifier = classifier
        self.store = store
        self.retries = retries
        self.totals = Totals()

    def process(self, messages: Iterable[Message]) -> BatchResult:
        msgs = list(messages)
        result = BatchResult()
        events: list[EventRow] = []
        rejects: list[QuarantineRow] = []
        manifests: list[ManifestRow] = []
        for m in msgs:
            out = self.classifier.classify(m.topic, m.payload, m.received_ms)
            if isinstance(out, EventRow):
                events.append(out)
            elif isinstance(out, ManifestRow):
                manifests.append(out)
            elif isinstance(out, QuarantineRow):
                rejects.append(out)
            else:
                assert isinstance(out, Ignored)
                result.ignored[out.kind] += 1
        # One order for every worker, so concurrent transactions lock rows in the same order.
        events.sort(key=lambda e: (e.device, e.seq))
        new, replayed = self._retry(
            lambda: self.store.store_batch(events, rejects, self.classifier.raw_cap, manifests))
        result.stored = len(new)
        result.manifests = len(manifests)
        result.quarantined.update(q.reason for q in rejects)
        if replayed:
            result.quarantined["replayed"] += len(replayed)
        if self.store.last_conflicts:
            result.quarantined["seq-conflict"] += len(self.store.last_conflicts)
        # Replays are touched too: acking what is already stored lets the device let it go. A
        # device with a seq conflict gets its mark capped below the conflict (DeviceMark.ack_seq).
        touched = {e.device for e in events}
        if touched:
            result.marks = self._retry(lambda: self.store.advance(touched))
        self.totals.add(len(msgs), result)
        return result

    def _retry(self, fn: Callable[[], T]) -> T:
        """fn() in its own transaction, again (up to self.retries times) after a retryable
        error such as a serialization failure between concurrent workers."""
        for attempt in range(self.retries):
            try:
                return fn()
            except Exception as exc:
                if not self.store.retryable(exc):
                    raise
                time.sleep(0.01 * (attempt + 1))
        return fn()
