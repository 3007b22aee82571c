"""Anonymization in one place: the only conversion from observations to events (allow-list).

Only the event types, labels and integer value keys that the schema lists can pass; no
pixels, crops, embeddings, identities, track ids or precise positions ever reach an Event:

- a field of an Observation reaches the Event only if it is named here (type, rule, label,
  direction, reason, integer values under allow-listed keys); anything else is dropped;
- a position becomes a coarse grid cell (row * grid + column) only when grid > 0;
- periodic aggregates (occupancy, count) with a count below k are suppressed: the count is
  reported as 0 and `suppressed` = 1 says so;
- the event id is fresh randomness for every event, so it links nothing across events;
- per-person events (crossings, loitering, unattended objects) get their ts_ms rounded down to
  privacy.time_precision_s when it is set.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Callable

from agent.protocol.body import EVENT_TYPES, Event
from agent.protocol.schema import schema
from agent.types import Observation

# Periodic aggregates: the event types that k-suppression applies to, and the keys it hides.
PERIODIC_TYPES = frozenset({"occupancy", "count"})
COUNT_KEYS = ("count", "entries", "exits")
# Types about one person or object at one moment: their ts_ms is coarsened by time_precision_ms.
PER_OBJECT_TYPES = ("line_crossing", "loitering_start", "loitering_end", "unattended_object")
# Types that are about the device itself rather than an object class.
DEVICE_TYPES = frozenset({"heartbeat", "alarm", "config", "setup_view_opened", "setup_view_closed"})
REASON_TYPES = frozenset({"alarm", "config"})  # types whose reason code may leave
MAX_GRID = 64  # cell is row * grid + column and the schema caps it at 4095


def _allowed_value_keys() -> frozenset[str]:
    return frozenset(schema()["properties"]["values"]["properties"])


@dataclass(frozen=True)
class Identity:
    device: str
    site: str
    boot: int
    model: str
    manifest: str  # SHA-256 of the privacy manifest body in force
    replay: bool = False  # recorded footage (`edge-agent replay`): every event says so, signed


def grid_cell(position: tuple[float, float], grid: int) -> int:
    """Row-major cell index of a normalized point on a grid x grid raster (clamped to the frame)."""
    x, y = position
    col = min(grid - 1, max(0, int(x * grid)))
    row = min(grid - 1, max(0, int(y * grid)))
    return row * grid + col


class Anonymizer:
    """Observation -> Event, or None when nothing of the observation may leave."""

    def __init__(
        self,
        identity: Identity,
        labels: tuple[str, ...],
        min_count_k: int = 0,
        grid: int = 0,
        new_id: Callable[[], str] = lambda: secrets.token_hex(16),
        time_precision_ms: int = 0,
    ) -> None:
        if not 0 <= grid <= MAX_GRID:
            raise ValueError(f"privacy.grid must be between 0 and {MAX_GRID}")
        self.identity = identity
        self.labels = frozenset(labels)
        self.min_count_k = min_count_k
        self.grid = grid
        self.new_id = new_id
        self.time_precision_ms = time_precision_ms
        self.value_keys = _allowed_value_keys()

    def event(self, obs: Observation, seq: int, ts_ms: int) -> Event | None:
        """The event for an observation, or None when nothing of it may leave."""
        if obs.type not in EVENT_TYPES:
            raise ValueError(f"observation type {obs.type!r} is not an event type")
        device_event = obs.type in DEVICE_TYPES
        if not device_event and obs.label not in self.labels:
            return None  # a class outside the allow-list never leaves, not even as a count
        values = {
            k: int(v)
            for k, v in obs.values.items()
            if k in self.value_keys and isinstance(v, int) and not isinstance(v, bool)
        }
        if self.min_count_k and obs.type in PERIODIC_TYPES:
            small = [k for k in COUNT_KEYS if 0 < values.get(k, 0) < self.min_count_k]
            for k in small:
                values[k] = 0
            if small:
                values["suppressed"] = 1
        cell = None
        if self.grid and obs.position is not None and not device_event:
            cell = grid_cell(obs.position, self.grid)
        ident = self.identity
        if self.time_precision_ms > 1 and obs.type in PER_OBJECT_TYPES:
            ts_ms -= ts_ms % self.time_precision_ms  # when exactly one person crossed is not needed
        return Event(
            id=self.new_id(),
            device=ident.device,
            site=ident.site,
            seq=seq,
            boot=ident.boot,
            ts_ms=ts_ms,
            type=obs.type,
            model=ident.model,
            manifest=ident.manifest,
            rule=obs.rule or None,
            label=(obs.label or None) if not device_event else None,
            direction=obs.direction if obs.direction in ("in", "out") else None,
            cell=cell,
            reason=(obs.reason or None) if obs.type in REASON_TYPES else None,
            values=values,
            source="replay" if ident.replay else None,
        )

