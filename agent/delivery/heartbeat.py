"""The heartbeat stage: tick(now_s) -> observations (a due heartbeat, plus the sender's alarms).

The heartbeat carries integers only: uptime, outbox depth/bytes/oldest age, events lost for lack of
disk space since boot (lost_disk_full), runs that ended without an orderly stop over the device's
life (unclean_stops: with a commit window, their last window's events may be lost), and one exact
contiguous run of dropped seqs (dropped_events == dropped_seq_last - dropped_seq_first + 1, or all 0),
so every gap in seq is explained. When several runs are pending, a due heartbeat is sent once per run (at most
MAX_RUNS_PER_BEAT; the rest go with the next). The outbox settles a run in the same transaction that
stores the heartbeat carrying it (and re-opens it if that heartbeat is later dropped), so no report
is ever lost, and none is wider than what was dropped.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping, Protocol

from agent.config import HealthConfig
from agent.delivery.outbox import NO_DROPS, DropReport, Outbox
from agent.types import Observation

# a bound on heartbeats per tick, so a backlog of runs never floods a full outbox
MAX_RUNS_PER_BEAT = 8


class SenderStats(Protocol):
    """What the heartbeat reads from the sender: the alarms it raised and its restart count."""

    @property
    def restarts(self) -> int:
        """Unexpected errors the sender thread recovered from (the heartbeat's sender_restarts)."""
        ...

    def take_observations(self) -> list[Observation]:
        """Alarms raised since the last call (e.g. a refused publish)."""
        ...


class Health:
    def __init__(
        self,
        outbox: Outbox,
        cfg: HealthConfig,
        sender: SenderStats | None = None,
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
            out.extend(self.sender.take_observations())
        if self._start_s is None:
            self._start_s = now_s
            if not self.beat_at_start:
                self._last_s = now_s  # the first heartbeat comes heartbeat_s after the start
        if self._last_s is None or now_s - self._last_s >= self.cfg.heartbeat_s:
            self._last_s = now_s
            out.extend(self.heartbeats(now_s))
        return out

    def heartbeats(self, now_s: float) -> list[Observation]:
        """One heartbeat per pending drop run (at least one), each reporting its run exactly."""
        runs = self.outbox.pending_drops(MAX_RUNS_PER_BEAT) or [NO_DROPS]
        return [self.heartbeat(now_s, run) for run in runs]

    def heartbeat(self, now_s: float, report: DropReport = NO_DROPS) -> Observation:
        oldest = self.outbox.oldest_ms()
        values: dict[str, int] = dict(self.counters() if self.counters else {})
        values.update(
            uptime_s=int(now_s - (self._start_s if self._start_s is not None else now_s)),
            outbox_rows=self.outbox.rows,
            outbox_bytes=self.outbox.size_bytes,
            outbox_oldest_s=max(0, (self.wall_ms() - oldest) // 1000) if oldest else 0,
            dropped_events=report.count,
            dropped_seq_first=report.first,
            dropped_seq_last=report.last,
            lost_disk_full=self.outbox.lost_disk_full,
            unclean_stops=self.outbox.unclean_stops,
        )
        if self.sender is not None:
            values["sender_restarts"] = self.sender.restarts
        return Observation(type="heartbeat", rule="", label="", t_s=now_s, values=values)
