"""Synthetic tracks for rule scenarios: boxes placed by their bottom-centre anchor, time passed in."""

from __future__ import annotations

from typing import Iterable, Sequence

from agent.types import Box, Observation, Track

FPS = 10.0


def person(tid: int, x: float, y: float, *, confirmed: bool = True, misses: int = 0,
           label: str = "person", w: float = 0.08, h: float = 0.3) -> Track:
    """A track whose box stands on (x, y): bottom centre at that point."""
    return Track(tid, label, Box(x - w / 2, y - h, x + w / 2, y), 0.9, confirmed, 10, misses)


def thing(tid: int, x: float, y: float, label: str = "backpack") -> Track:
    return person(tid, x, y, label=label, w=0.05, h=0.06)


def lerp(a: tuple[float, float], b: tuple[float, float], k: int, n: int) -> tuple[float, float]:
    f = k / max(1, n - 1)
    return (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)


def run(rules: Sequence, frames: Iterable[tuple[float, list[Track]]]) -> list[Observation]:
    out: list[Observation] = []
    for t, tracks in frames:
        for r in rules:
            out.extend(r.update(tracks, t))
    return out


def timeline(per_frame: Sequence[list[Track]], t0: float = 0.0, fps: float = FPS) -> list[tuple[float, list[Track]]]:
    return [(t0 + i / fps, tr) for i, tr in enumerate(per_frame)]


def types(obs: Iterable[Observation]) -> list[str]:
    return [o.type for o in obs]
