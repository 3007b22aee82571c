"""Anonymization in one place: the only conversion from observations to events (allow-list).

Only the event types, labels and integer value keys that the schema lists can pass; no
pixels, crops, embeddings, identities or precise positions ever reach an Event.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from agent.events import EVENT_TYPES, Event, schema
from agent.types import Observation


def _allowed_value_keys() -> frozenset[str]:
    return frozenset(schema()["properties"]["values"]["properties"])


@dataclass(frozen=True)
class Identity:
    device: str
    site: str
    boot: int
    model: str
    manifest: str  # SHA-256 of the privacy manifest body in force


class Anonymizer:
    def __init__(self, identity: Identity, labels: tuple[str, ...], min_count_k: int = 0) -> None:
        self.identity = identity
        self.labels = frozenset(labels)
        self.min_count_k = min_count_k
        self.value_keys = _allowed_value_keys()

    def event(self, obs: Observation, seq: int, ts_ms: int) -> Event | None:
        """The event for an observation, or None when nothing of it may leave."""
        if obs.type not in EVENT_TYPES:
            raise ValueError(f"observation type {obs.type!r} is not an event type")
        if obs.label and obs.label not in self.labels and obs.type not in ("heartbeat", "alarm"):
            return None
        values = {k: int(v) for k, v in obs.values.items() if k in self.value_keys}
        if self.min_count_k and obs.type == "occupancy" and 0 < values.get("count", 0) < self.min_count_k:
            values["count"] = 0
        ident = self.identity
        return Event(
            id=secrets.token_hex(16),
            device=ident.device,
            site=ident.site,
            seq=seq,
            boot=ident.boot,
            ts_ms=ts_ms,
            type=obs.type,
            model=ident.model,
            manifest=ident.manifest,
            rule=obs.rule or None,
            label=obs.label or None,
            direction=obs.direction if obs.direction in ("in", "out") else None,
            values=values,
        )


def manifest_body(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def manifest_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
