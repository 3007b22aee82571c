"""The heartbeat stage: tick(now_s) -> observations (a due heartbeat, plus the sender's alarms).

The heartbeat carries integers only: uptime, outbox depth/bytes/oldest age, and the drops since
the last heartbeat with their seq range (dropped_events, dropped_seq_first/last), so every gap in
seq is explained. The outbox settles a report in the same transaction that stores the heartbeat
carrying it (and re-opens it if that heartbeat is later dropped), so no report is ever lost.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping

from agent.config import HealthConfig
from agent.outbox import Outbox
from agent.types import Observation


class Health:
    def __init__(
        self,
        outbox: Outbox,
        cfg: HealthConfig,
        sender: object | None = None,
        counters: Callable[[], Mapping[str, int]] | None = None,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        beat_at_start: bool = False,
    ) -> None:
        self.outbox = outbox
        self.cfg = cfg
        self.sender = sender
        self.counters = counters
        self.wall_ms = wall_ms
        self._start_s: float | None = None
        self._last_s: float | None = None
        self.beat_at_start = beat_at_start

    def tick(self, now_s: float) -> list[Observation]:
        out: list[Observation] = []
        if self.sender is not None:
            out.extend(self.sender.take_observations())  # type: ignore[attr-defined]
        if self._start_s is None:
            self._start_s = now_s
            if not self.beat_at_start:
                self._last_s = now_s  # the first heartbeat comes heartbeat_s after the start
        if self._last_s is None or now_s - self._last_s >= self.cfg.heartbeat_s:
            self._last_s = now_s
            out.append(self.heartbeat(now_s))
        return out

    def heartbeat(self, now_s: float) -> Observation:
        report = self.outbox.peek_drops()
        oldest = self.outbox.oldest_ms()
        values: dict[str, int] = dict(self.counters() if self.counters else {})
        values.update(
            uptime_s=int(now_s - (self._start_s if self._start_s is not None else now_s)),
            outbox_rows=self.outbox.rows,
            outbox_bytes=self.outbox.bytes,
            outbox_oldest_s=max(0, (self.wall_ms() - oldest) // 1000) if oldest else 0,
            dropped_events=report.count,
            dropped_seq_first=report.first,
            dropped_seq_last=report.last,
        )
        return Observation(type="heartbeat", rule="", label="", t_s=now_s, values=values)

    def close(self) -> None:
        """Nothing to flush: reports are settled by the outbox when the heartbeat is stored."""
