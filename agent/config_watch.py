"""A running agent's pick-up of zones, lines and masks saved to its config file (by setup-view or by hand).

A frame stage: at a frame boundary, at most once a second, it looks at the config file's
modification time and size and at the setup view's mark in the state folder. While a setup view
is open the coverage stage charges the time to `setup_view`. When the file changed, it is read
and checked exactly as at start (board profile, parse, build_rules); if the geometry differs, the
old rules are closed (open visits end, partial counts are reported), the new rules take over
from this frame, and the detector gets the new privacy masks. Anything else in the file (and a
file that no longer checks) waits for the next start, and the log says so in one line. The switch
is the one a signed remote change makes (agent.remote.live.LiveDevice): open visits end under the
old manifest, a new privacy manifest naming the new geometry is signed and published, the detector
gets the new masks, and every later event cites it. The new config is the file's geometry laid over
the running one (`live.cfg`: the file at start, remote settings since, earlier saves), so a save
keeps the remote settings in force and a later remote change keeps the saved geometry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import Config
from agent.errors import AgentError

if TYPE_CHECKING:
    from agent.coverage import Coverage
    from agent.remote.live import LiveDevice

log = logging.getLogger(__name__)


def geometry(cfg: Config) -> tuple[Any, ...]:
    return (cfg.zones, cfg.lines, cfg.privacy.masks)


class ConfigWatch:
    """Re-read the config's geometry at frame boundaries; mark setup-view time as blind."""

    def __init__(self, path: Path, live: LiveDevice, coverage: Coverage,
                 every_s: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 wall_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.path = path
        self.live = live
        self.coverage = coverage
        self.every_s = every_s
        self.clock = clock
        self.wall_ms = wall_ms
        self._last_check: float | None = None
        self._stamp = self._stat()
        # the file's own geometry when last read: only a change to it is taken up, so editing
        # another key of the file does not undo zones or lines a signed remote change set
        self._file_geometry = self._read_geometry()
        self.applied = 0  # geometry changes taken up (tests, logs)

    def _read_geometry(self) -> tuple[Any, ...] | None:
        try:
            return geometry(self._read())
        except AgentError:
            return None

    def _read(self) -> Config:
        from agent import board, config

        laid, _ = board.apply(config.read_toml(self.path))
        return config.parse(laid)

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def frame(self, t_s: float, image: Any) -> None:
        self._check(t_s)

    def lost(self, now_s: float) -> None:
        self._check(now_s)

    def _check(self, now_s: float) -> None:
        from agent.setupview import marker

        now = self.clock()
        if self._last_check is not None and now - self._last_check < self.every_s:
            return
        self._last_check = now
        if self.coverage is not None:
            is_open = marker.is_open(self.live.cfg.state_dir, self.wall_ms())
            was, self.coverage.setup_view = self.coverage.setup_view, is_open
            if was != self.coverage.setup_view:
                log.info("setup view %s: coverage counts this time as %s", "open" if self.coverage.setup_view
                         else "closed", "blind (setup_view)" if self.coverage.setup_view else "observed again")
        stamp = self._stat()
        if stamp is None or stamp == self._stamp:
            return
        self._stamp = stamp
        self.reload(now_s)

    def reload(self, now_s: float) -> bool:
        """Take up the file's geometry now; False when it did not change or does not check."""
        from agent.protocol.change import ChangeRefused
        from agent.setupview.live import with_geometry

        running = self.live.cfg
        try:
            read = self._read()
            if geometry(read) == self._file_geometry:
                return False  # the file's geometry is as last taken up (another key changed)
            new = with_geometry(running, read)
            if geometry(new) == geometry(running):
                self._file_geometry = geometry(read)
                return False
            prepared = self.live.prepare(new)  # the rules build and the new manifest may leave
        except AgentError as exc:
            log.warning("config file changed but does not check, nothing applied: %s", exc)
            return False
        except ChangeRefused as exc:
            log.warning("config file changed but cannot apply, nothing applied: %s", exc)
            return False
        self.live.switch(prepared, now_s)  # the new running config, masks included
        self._file_geometry = geometry(read)
        self.applied += 1
        log.info("config geometry taken up: %d zone(s), %d line(s), %d mask(s); a new privacy manifest "
                 "cites them", len(new.zones), len(new.lines), len(new.privacy.masks))
        return True
