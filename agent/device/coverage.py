"""Coverage accounting: how many seconds of each count interval the camera really looked, and why not.

A frame stage (Coverage.frame / Coverage.lost, called by the pipeline) splits the pipeline's
timeline into observed seconds and blind seconds by reason: camera lost, covered or too dark
(decided here, in memory, from the frame's brightness and contrast; only seconds leave), frame rate
below health.min_fps, frames skipped for overload, the agent not running between boots, and the
installer's setup view being open (the geometry is changing; see agent.setupview.marker). The
time between two frames is charged to the state the later frame shows. CoveredCounts wraps a rule
and adds observed_s and blind_<reason>_s to each of its count events, apportioned so they add up
exactly to the event's interval_s.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent.types import Observation, Track

OBSERVED = "observed"
REASONS = ("camera_lost", "covered", "low_fps", "overload", "not_running", "setup_view")
KEYS = {OBSERVED: "observed_s", **{r: f"blind_{r}_s" for r in REASONS}}
ALIVE_FILE = "alive_ms"  # wall-clock ms of the last count interval closed (gap to the next boot: not_running)


def blind_frame(image: Any, dark_level: float, flat_contrast: float) -> bool:
    """True when a frame shows nothing usable: too dark (mean level) or covered (no contrast).

    Read from a sparse grid of pixels (every 8th row and column), in memory; nothing is kept."""
    sample = image[::8, ::8]
    gray = sample.mean(axis=2) if sample.ndim == 3 else sample
    return bool(gray.mean() < dark_level or gray.std() < flat_contrast)


class Coverage:
    """The running split of the pipeline's time into observed and blind seconds by reason."""

    def __init__(self, min_fps: float = 1.0, dark_level: float = 16.0, flat_contrast: float = 4.0,
                 dropped: Callable[[], int] = lambda: 0) -> None:
        self.max_gap_s = 1.0 / min_fps if min_fps > 0 else float("inf")
        self.dark_level = dark_level
        self.flat_contrast = flat_contrast
        self.dropped = dropped  # the source's count of frames it skipped (newest frame wins)
        self.totals: dict[str, float] = {OBSERVED: 0.0, **{r: 0.0 for r in REASONS}}
        self.last_t: float | None = None
        self.state = OBSERVED  # what the newest frame (or outage) showed
        self._lost = False
        self._dropped_seen = 0
        self.setup_view = False  # set at frame boundaries while the setup view is open (ConfigWatch)

    def add_downtime(self, seconds: float) -> None:
        """Seconds the agent was not running before this boot: charged to the next interval."""
        self.totals["not_running"] += max(0.0, seconds)

    def frame(self, t_s: float, image: Any) -> None:
        """A frame at t_s: the time since the previous one is charged to what this one shows."""
        covered = blind_frame(image, self.dark_level, self.flat_contrast)
        dropped = self.dropped()
        skipped, self._dropped_seen = dropped > self._dropped_seen, dropped
        if self.last_t is not None:
            gap = max(0.0, t_s - self.last_t)
            if self._lost:
                reason = "camera_lost"
            elif self.setup_view:
                reason = "setup_view"
            elif gap > self.max_gap_s:
                reason = "overload" if skipped else "low_fps"
            elif covered:
                reason = "covered"
            else:
                reason = OBSERVED
            self.totals[reason] += gap
            self.state = reason
        else:
            self.state = "covered" if covered else OBSERVED
        self._lost = False
        self.last_t = t_s

    def lost(self, now_s: float) -> None:
        """No frame (the camera is lost) at now_s: the time since the last frame or outage tick."""
        if self.last_t is not None:
            self.totals["camera_lost"] += max(0.0, now_s - self.last_t)
        self.last_t = now_s
        self._lost = True
        self.state = "camera_lost"

    def snapshot(self) -> dict[str, float]:
        return dict(self.totals)


def apportion(parts: dict[str, float], total: int) -> dict[str, int]:
    """Whole seconds per part that add up to exactly `total` (largest remainder, after scaling)."""
    raw = sum(parts.values())
    if raw <= 0:
        out = {k: 0 for k in parts}
        out[OBSERVED] = total
        return out
    scaled = {k: v * total / raw for k, v in parts.items()}
    out = {k: int(v) for k, v in scaled.items()}
    rest = total - sum(out.values())
    for k in sorted(scaled, key=lambda k: scaled[k] - out[k], reverse=True)[:rest]:
        out[k] += 1
    return out


class CoveredCounts:
    """Wraps a rule: its count events carry observed_s and blind_<reason>_s for their interval."""

    def __init__(self, rule: Any, coverage: Coverage, alive: Path | None = None,
                 wall_ms: Callable[[], int] | None = None,
                 durable: Callable[[Callable[[], None]], None] | None = None) -> None:
        self.rule = rule
        self.coverage = coverage
        self.alive = alive
        self.wall_ms = wall_ms
        # the outbox's when_committed: the alive mark is written once the count events it follows
        # are stored, so a power cut inside the outbox's commit window leaves the mark before them
        # and the next boot counts the lost interval as not_running (None: written at once)
        self.durable = durable
        self._mark: dict[str, float] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rule, name)

    def start_now(self) -> CoveredCounts:
        """Count coverage from now on (a rule that takes over mid-run, not at boot)."""
        self._mark = self.coverage.snapshot()
        return self

    def update(self, tracks: Sequence[Track], now_s: float) -> list[Observation]:
        if self._mark is None:
            self._mark = {k: 0.0 for k in self.coverage.totals}  # downtime before this boot included
        return self._covered(self.rule.update(tracks, now_s))

    def close(self, now_s: float) -> list[Observation]:
        close = getattr(self.rule, "close", None)
        return self._covered(close(now_s)) if close is not None else []

    def _covered(self, observations: list[Observation]) -> list[Observation]:
        counts = [o for o in observations if o.type == "count" and "interval_s" in o.values]
        if not counts:
            return observations
        now = self.coverage.snapshot()
        mark = self._mark or {k: 0.0 for k in now}
        parts = {k: now[k] - mark.get(k, 0.0) for k in now}
        self._mark = now
        extra = parts["not_running"]
        out = []
        for o in observations:
            if o.type == "count" and "interval_s" in o.values:
                interval = int(o.values["interval_s"]) + round(extra)
                split = apportion(parts, interval)
                values = dict(o.values, interval_s=interval, **{KEYS[k]: v for k, v in split.items()})
                o = replace(o, values=values)
            out.append(o)
        self._touch_alive()
        return out

    def _touch_alive(self) -> None:
        if self.alive is None or self.wall_ms is None:
            return
        alive, closed_ms = self.alive, self.wall_ms()

        def write() -> None:
            tmp = alive.with_suffix(".tmp")
            try:
                tmp.write_text(f"{closed_ms}\n")
                os.replace(tmp, alive)
            except OSError:
                pass  # coverage of the next boot's gap is lost, nothing else; the disk check says why

        if self.durable is None:
            write()
        else:
            self.durable(write)


def downtime_s(alive: Path, now_ms: int) -> float:
    """Seconds since the previous boot last closed a count interval (0 on the first boot)."""
    try:
        last = int(alive.read_text().strip())
    except (OSError, ValueError):
        return 0.0
    return max(0.0, (now_ms - last) / 1000)
