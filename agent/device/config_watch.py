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

While the agent runs it owns the outbox, so `setup-view` cannot queue its two audit events: it
leaves them in its mark (audit "agent"), and this stage signs them when it sees the mark appear
(setup_view_opened, the planned duration_s) and close, expire or go (setup_view_closed: duration_s,
config_changed); it then removes a closed mark, so a restart does not sign them again.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import Config
from agent.errors import AgentError

from agent.setupview import marker
from agent.setupview.marker import AGENT, RULE, Mark
from agent.types import Observation

if TYPE_CHECKING:
    from agent.device.coverage import Coverage
    from agent.remote.control import RemoteControl
    from agent.remote.live import LiveDevice

log = logging.getLogger(__name__)


def geometry(cfg: Config) -> tuple[Any, ...]:
    return (cfg.zones, cfg.lines, cfg.privacy.masks)


class ConfigWatch:
    """Re-read the config's geometry at frame boundaries; mark setup-view time as blind."""

    def __init__(self, path: Path, live: LiveDevice, coverage: Coverage,
                 every_s: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                 remote: RemoteControl | None = None, loaded: Config | None = None) -> None:
        self.path = path
        self.live = live
        self.remote = remote  # told of each save taken up: the latest of the file and remote wins
        self.coverage = coverage
        self.every_s = every_s
        self.clock = clock
        self.wall_ms = wall_ms
        self._last_check: float | None = None
        # the file's own geometry when last read: only a change to it is taken up, so editing
        # another key of the file does not undo zones or lines a signed remote change set. With
        # `loaded` (the config the agent started from) a save made while the agent was being
        # built is taken up at the first check: the file is read again then.
        if loaded is not None:
            self._stamp: tuple[int, int] | None = None
            self._file_geometry: tuple[Any, ...] | None = geometry(loaded)
        else:
            self._stamp = self._stat()
            self._file_geometry = self._read_geometry()
        self.applied = 0  # geometry changes taken up (tests, logs)
        self._session: Mark | None = None  # the setup view whose opened event this agent signed
        self._session_closed = False

    def _read_geometry(self) -> tuple[Any, ...] | None:
        try:
            return geometry(self._read())
        except AgentError:
            return None

    def _read(self) -> Config:
        from agent import config
        from agent.device import board

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
        now = self.clock()
        if self._last_check is not None and now - self._last_check < self.every_s:
            return
        self._last_check = now
        now_ms = self.wall_ms()
        mark = marker.read(self.live.cfg.state_dir)
        self._audit(mark, now_s, now_ms)
        if self.coverage is not None:
            was, self.coverage.setup_view = self.coverage.setup_view, mark is not None and mark.open_at(now_ms)
            if was != self.coverage.setup_view:
                log.info("setup view %s: coverage counts this time as %s", "open" if self.coverage.setup_view
                         else "closed", "blind (setup_view)" if self.coverage.setup_view else "observed again")
        stamp = self._stat()
        if stamp is None or stamp == self._stamp:
            return
        self._stamp = stamp
        self.reload(now_s)

    def _audit(self, mark: Mark | None, now_s: float, now_ms: int) -> None:
        """Sign the audit events of a setup view that runs beside this agent, from its mark."""
        ours = mark if mark is not None and mark.audit == AGENT and mark.session else None
        if self._session is not None and not self._session_closed and (
                ours is None or ours.session != self._session.session):  # the mark went without closing
            self._closed(self._session, min(now_ms, self._session.until_ms), now_s)
        if ours is None:
            return
        if self._session is None or ours.session != self._session.session:
            self._session, self._session_closed = ours, False
            self._emit("setup_view_opened", {"duration_s": ours.duration_s}, now_s)
        self._session = ours  # the latest copy: config_changed is noted at each save
        if self._session_closed:  # e.g. the view's own closed mark, written after this agent saw it expire
            if ours.closed_ms:
                marker.consume(self.live.cfg.state_dir, ours.session)
            return
        if ours.closed_ms or now_ms >= ours.until_ms:
            self._closed(ours, ours.closed_ms or ours.until_ms, now_s)
            marker.consume(self.live.cfg.state_dir, ours.session)

    def _closed(self, mark: Mark, end_ms: int, now_s: float) -> None:
        self._session_closed = True
        self._emit("setup_view_closed", {"duration_s": max(0, round((end_ms - mark.opened_ms) / 1000)),
                                         "config_changed": int(mark.config_changed)}, now_s)

    def _emit(self, kind: str, values: dict[str, int], now_s: float) -> None:
        self.live.publishing.emitter.emit([Observation(kind, RULE, "", now_s, values)])
        log.info("setup view beside the running agent: %s %s signed and queued", kind, values)

    def _saved(self, read: Config) -> None:
        """The file's zones and lines now run: stored remote ones are older and are set aside."""
        if self.remote is None:
            return
        try:
            dropped = self.remote.local_geometry_saved(read)
        except AgentError as exc:  # the next start compares the file's fingerprint and does it then
            log.warning("saved geometry runs, but the remote state could not record it: %s", exc)
            return
        if dropped:
            log.info("remote %s set aside: the zones and lines saved to the config file are newer",
                     " and ".join(dropped))

    def reload(self, now_s: float) -> bool:
        """Take up the file's geometry now; False when it did not change or does not check."""
        from agent.protocol.change import ChangeRefused
        from agent.setupview.live import with_geometry

        running = self.live.cfg
        try:
            read = self._read()
            file_geometry = geometry(read)
            if file_geometry == self._file_geometry:
                return False  # the file's geometry is as last taken up (another key changed)
            new = with_geometry(running, read)
            if self._file_geometry is not None:  # only the part the file changed: masks alone leave
                if file_geometry[:2] == self._file_geometry[:2]:  # zones a remote change set in force
                    new = dataclasses.replace(new, zones=running.zones, lines=running.lines)
                if file_geometry[2] == self._file_geometry[2]:
                    new = dataclasses.replace(new, privacy=running.privacy)
            if geometry(new) == geometry(running):
                self._file_geometry = file_geometry
                self._saved(read)
                return False
            prepared = self.live.prepare(new)  # the rules build and the new manifest may leave
        except AgentError as exc:
            log.warning("config file changed but does not check, nothing applied: %s", exc)
            return False
        except ChangeRefused as exc:
            log.warning("config file changed but cannot apply, nothing applied: %s", exc)
            return False
        self.live.switch(prepared, now_s)  # the new running config, masks included
        self._file_geometry = file_geometry
        self._saved(read)
        self.applied += 1
        log.info("config geometry taken up: %d zone(s), %d line(s), %d mask(s); a new privacy manifest "
                 "cites them", len(new.zones), len(new.lines), len(new.privacy.masks))
        return True
