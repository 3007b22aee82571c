"""Rules: turn tracks into observations. Each is a stage update(tracks, now_s) -> observations."""

from __future__ import annotations

from typing import Protocol, Sequence

from agent.config import Config, ZoneConfig
from agent.types import Observation, Track


class Rule(Protocol):
    """A stage over tracks: update() once per frame; close() once at the end of the stream."""

    rule_id: str  # the zone or line id its observations carry

    def update(self, tracks: Sequence[Track], now_s: float) -> list[Observation]: ...

    def close(self, now_s: float) -> list[Observation]:
        """End-of-stream observations (open visits end, a last partial count); often none."""
        ...


def scene_zone(classes: Sequence[str]) -> ZoneConfig:
    """The whole frame, used when no zone or line is configured (occupancy only)."""
    return ZoneConfig(id="scene", polygon=((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)),
                      classes=tuple(classes), anchor="centre", count_every_s=0.0, hysteresis=0.0)


def build_rules(cfg: Config) -> list[Rule]:
    """Every rule the config asks for, zone by zone and line by line."""
    from agent.rules.counting import Counting
    from agent.rules.gathering import Gathering
    from agent.rules.line import LineCrossing
    from agent.rules.loitering import Loitering
    from agent.rules.occupancy import Occupancy
    from agent.rules.unattended import Unattended
    from agent.rules.zone import ZoneView

    from agent.errors import ConfigError

    allowed = set(cfg.detector.classes)
    for z in cfg.zones:
        wanted = list(z.classes) + (list(z.unattended_classes) if z.unattended_after_s > 0 else [])
        for c in wanted:
            if c not in allowed:
                raise ConfigError(f"zone {z.id!r} watches {c!r} but detector.classes does not "
                                  "include it; add it there")
        if z.unattended_after_s > 0 and "person" not in allowed:
            # without persons every still bag would look unattended
            raise ConfigError(
                f"zone {z.id!r} reports unattended objects, which needs 'person' in "
                "detector.classes "
                f"to see whether anyone is near; add it there"
            )
    for ln in cfg.lines:
        for c in ln.classes:
            if c not in allowed:
                raise ConfigError(f"line {ln.id!r} counts {c!r} but detector.classes does not "
                                  "include it; add it there")
    rules: list[Rule] = []
    zones = list(cfg.zones)
    if not zones and not cfg.lines:
        zones = [scene_zone(cfg.detector.classes)]
    for z in zones:
        view = ZoneView(z)
        rules.append(Occupancy(view, z.report_every_s))
        if z.count_every_s > 0:
            rules.append(Counting(view, z.count_every_s))
        if z.loitering:
            rules.append(Loitering(view, z.loiter_after_s))
        if z.gathering_threshold or z.gathering_rise:
            rules.append(
                Gathering(view, z.gathering_threshold, z.gathering_rise, z.gathering_window_s)
            )
        if z.unattended_after_s > 0:
            rules.append(Unattended(z))
    for line in cfg.lines:
        rules.append(LineCrossing(line))
    return rules


def close_rules(rules: Sequence[Rule], now_s: float) -> list[Observation]:
    """End-of-stream observations (open visits end, last partial count interval)."""
    out: list[Observation] = []
    for r in rules:
        out.extend(r.close(now_s))
    return out
