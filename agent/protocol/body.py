"""Event values and their one encoding: canonical JSON bytes, integers only, schema v1."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from agent.protocol.canonical import canonical_json

SCHEMA_VERSION = 1
EVENT_TYPES = (
    "occupancy",
    "count",
    "line_crossing",
    "loitering_start",
    "loitering_end",
    "unattended_object",
    "gathering_start",
    "gathering_end",
    "heartbeat",
    "alarm",
    "config",
    "setup_view_opened",  # the installer's setup view (agent.setupview): audit, about the device
    "setup_view_closed",
)


@dataclass(frozen=True)
class Event:
    """One event as it will be signed. Only agent.privacy.anonymizer builds these from observations."""

    id: str
    device: str
    site: str
    seq: int
    boot: int
    ts_ms: int
    type: str
    model: str
    manifest: str
    rule: str | None = None
    label: str | None = None
    direction: str | None = None
    cell: int | None = None
    reason: str | None = None
    values: Mapping[str, int] = field(default_factory=dict)
    source: str | None = None  # "replay": made from recorded footage; None: live

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "v": SCHEMA_VERSION,
            "id": self.id,
            "device": self.device,
            "site": self.site,
            "seq": self.seq,
            "boot": self.boot,
            "ts_ms": self.ts_ms,
            "type": self.type,
            "model": self.model,
            "manifest": self.manifest,
        }
        for name in ("rule", "label", "direction", "cell", "reason", "source"):
            value = getattr(self, name)
            if value is not None:
                d[name] = value
        if self.values:
            d["values"] = dict(self.values)
        return d


def encode(event: Event) -> bytes:
    """Canonical bytes: sorted keys, no spaces, ASCII. Floats are refused, not rounded."""
    d = event.to_dict()
    for k, v in d.get("values", {}).items():
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"event value {k!r} must be an int, got {type(v).__name__}")
    return canonical_json(d)

