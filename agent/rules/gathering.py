"""Sudden gathering: the count in a zone rises by `rise` within `window_s`, or reaches `threshold`.

One gathering_start per gathering. It ends (gathering_end) once the count has stayed at or
below halfway between the baseline and the peak (and, when the threshold started it, below the
threshold) for `hold_s` (hysteresis, so a count that hovers at the trigger level does not start
and end over and over). A gathering still open when the stream ends gets its gathering_end then.
"""

from __future__ import annotations

from collections import deque
from typing import Sequence

from agent.rules.zone import ZoneView
from agent.types import Observation, Track


class Gathering:
    def __init__(self, view: ZoneView, threshold: int = 0, rise: int = 0, window_s: float = 10.0,
                 hold_s: float = 2.0) -> None:
        self.view = view
        self.rule_id = view.zone.id
        # A gathering is of one class: persons when the zone watches them, else its first class.
        # (Counting several classes together would give an event with no class, which the
        # privacy allow-list rightly refuses to let out.)
        classes = tuple(view.zone.classes)
        self.label = "person" if "person" in classes else classes[0]
        self.threshold = threshold
        self.rise = rise
        self.window_s = window_s
        self.hold_s = hold_s
        self.history: deque[tuple[float, int]] = deque()
        self.active = False
        self.baseline = 0
        self.peak = 0
        self.low_since: float | None = None
        self.by_level = False

    def _values(self, n: int) -> dict[str, int]:
        return {"count": n, "rise": max(0, self.peak - self.baseline), "window_s": int(round(self.window_s))}

    def update(self, tracks: Sequence[Track], now_s: float) -> list[Observation]:
        n = self.view.update(tracks, now_s).count(self.label)
        self.history.append((now_s, n))
        while self.history and now_s - self.history[0][0] > self.window_s:
            self.history.popleft()
        low = min(c for _, c in self.history)
        if not self.active:
            by_rise = self.rise > 0 and n - low >= self.rise
            by_level = self.threshold > 0 and n >= self.threshold
            if by_rise or by_level:
                self.active, self.baseline, self.peak, self.low_since = True, low, n, None
                self.by_level = by_level
                return [Observation("gathering_start", self.rule_id, self.label, now_s, self._values(n))]
            return []
        self.peak = max(self.peak, n)
        end_level = self.baseline + (self.peak - self.baseline) // 2
        if self.by_level:
            # a crowd that was already there has baseline == peak: it subsides below the threshold
            end_level = min(end_level, self.threshold - 1)
        if n <= end_level:
            if self.low_since is None:
                self.low_since = now_s
            if now_s - self.low_since >= self.hold_s:
                self.active = False
                obs = Observation("gathering_end", self.rule_id, self.label, now_s, self._values(n))
                self.history.clear()
                self.history.append((now_s, n))
                return [obs]
        else:
            self.low_since = None
        return []

    def close(self, now_s: float) -> list[Observation]:
        """End of the stream (a replay's last frame, a stop): a gathering still open gets its end."""
        if not self.active:
            return []
        self.active = False
        n = self.history[-1][1] if self.history else 0
        return [Observation("gathering_end", self.rule_id, self.label, now_s, self._values(n))]
