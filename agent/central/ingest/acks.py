"""The per-device rate limit of signed ingest acks (the ack itself is agent.protocol.acks)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AckScheduler:
    """Remembers which devices need an ack and lets at most one out per device per interval.

    A device marked after a batch is never forgotten: it is due as soon as its interval allows.
    Marks of 0 (the device's seq 1 is not stored yet) give no ack: there is nothing to let go.
    """

    interval_ms: int = 200
    pending: dict[str, tuple[str, int]] = field(default_factory=dict)
    last_sent_ms: dict[str, int] = field(default_factory=dict)

    def mark(self, device: str, site: str, contiguous: int, capped: bool = False) -> None:
        """capped: contiguous is a limit (a seq conflict), not only a floor: a larger pending
        value of an earlier batch must not go out either."""
        old = self.pending.get(device)
        if capped:
            if contiguous <= 0:
                self.pending.pop(device, None)
            else:
                self.pending[device] = (site, min(contiguous, old[1]) if old else contiguous)
            return
        if contiguous <= 0:
            return
        self.pending[device] = (site, max(contiguous, old[1] if old else 0))

    def due(self, now_ms: int) -> list[tuple[str, str, int]]:
        """(device, site, seq) to ack now; they leave the pending set."""
        out = []
        for device, (site, seq) in list(self.pending.items()):
            if now_ms - self.last_sent_ms.get(device, -10**12) >= self.interval_ms:
                out.append((device, site, seq))
                self.last_sent_ms[device] = now_ms
                del self.pending[device]
        return out
