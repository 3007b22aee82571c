"""The cmd topic's stage: verify a change before reading it, decide, apply between frames, answer.

Messages arrive on the sender's thread (offer) and wait in a queue; tick(now_s), called by the frame
loop at a frame boundary, handles them one by one. Each change ends in exactly one signed `config`
result event ("applied", or the refusal reason), except the retained copy of a change already
applied, which the broker hands over again on every connection: that one is dropped quietly.

Order of the checks: size, envelope, signature (operator keys), body, target, replay and version,
base version, clock and expiry, then the settings (deny-list first, allow-list, the config file's
own validation, rules, the new manifest). Only then is the new state committed (version, settings
and digest in one SQLite transaction) and switched to. When the state cannot be read or the commit
fails (a full SD card), the change is refused as "state-unavailable" and nothing is applied.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from agent.config import Config
from agent.errors import SignatureError, StateError
from agent.protocol.change import (
    APPLIED,
    CHANGE_PAYLOAD_TYPE,
    MAX_CHANGE_BYTES,
    Change,
    ChangeRefused,
    check_settings,
    parse,
)
from agent.protocol.dsse import open_envelope, verify_envelope
from agent.remote.settings import overlay
from agent.remote.geometry import KEYS, fingerprint
from agent.remote.state import RemoteState
from agent.types import Observation

log = logging.getLogger(__name__)

MAX_SKEW_S = 300  # a change issued further in the future than this is refused (not-yet-valid)
MAX_PENDING = (
    64  # messages waiting for a frame boundary; more are dropped (counted) until it drains
)
QUIET_FOR_RETAINED = ("replayed",)  # the broker hands the applied change over on every connection
# the state database cannot be read or written (full SD card, locked): the change is refused and
# nothing applied; its retained copy is tried again at the next start, never crashing the loop
STATE_UNAVAILABLE = "state-unavailable"


class Live(Protocol):
    """What applying needs from the running device (remote.live.LiveDevice; a fake in tests)."""

    cfg: Config  # the config running now (the setup view's saves included); changes lay over it

    def prepare(self, cfg: Config) -> object:
        """Build what the new config needs (rules, signed manifest); ChangeRefused if it cannot."""

    def switch(self, prepared: object, now_s: float) -> None:
        """Use what prepare() built from the next frame on; cfg becomes the running config."""

    def heartbeat(self, now_s: float) -> list[Observation]: ...

    def announce(self) -> None: ...

    def set_log_level(self, level: str) -> None: ...


@dataclass(frozen=True)
class Accepted:
    change: Change
    digest: str
    settings: Mapping[str, Any]  # every remote setting in force after this change
    cfg: Config


class RemoteControl:
    """Signed configuration changes and commands for one device (a pipeline boundary stage)."""

    def __init__(
        self,
        base: Config,
        keys: Mapping[str, bytes],
        state: RemoteState,
        clock_synced: Callable[[], bool],
        wall_s: Callable[[], float] = time.time,
        live: Live | None = None,
    ) -> None:
        # the config file as read at start: the target check, and, with no running device (live),
        # what every remote setting in force is laid over; with one, changes lay over live.cfg
        self.base = base
        self.keys = dict(keys)
        self.state = state
        self.clock_synced = clock_synced
        self.wall_s = wall_s
        self.live = live
        self.pending: queue.Queue[tuple[bytes, bool]] = queue.Queue(MAX_PENDING)
        self.dropped = 0
        self.restart_requested = False
        self.results: dict[str, int] = {}
        # the config file's zones and lines as last read (at start, then each save taken up):
        # recorded with every commit, so a start can tell whether the file changed since
        self.file_geometry = fingerprint(base)
        # stored remote settings a newer save of the file set aside at start (agent.remote.setup):
        # left out of what runs and of the next commit's merged settings
        self.set_aside: tuple[str, ...] = ()
        try:  # the state's version when last read (for result events)
            self._version_in_force = state.current().version
        except StateError:
            self._version_in_force = 0

    # -- any thread

    def offer(self, payload: bytes, retained: bool = False) -> None:
        """A message from the cmd topic (retained: the broker's stored copy, given on subscribe)."""
        try:
            self.pending.put_nowait((payload, retained))
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1:
                log.warning("cmd topic messages arrive faster than frames: dropping (counted)")

    # -- the frame loop

    def tick(self, now_s: float) -> list[Observation]:
        out: list[Observation] = []
        while True:
            try:
                payload, retained = self.pending.get_nowait()
            except queue.Empty:
                return out
            out.extend(self.handle(payload, retained, now_s))

    def handle(self, payload: bytes, retained: bool, now_s: float) -> list[Observation]:
        """Decide on one message and act on it; the result event (and what the commands produce)."""
        version = 0
        try:
            accepted = self.decide(payload)
            version = accepted.change.version
            extra = self.apply(accepted, payload, now_s)
        except ChangeRefused as exc:
            version = exc.version
            if retained and exc.reason in QUIET_FOR_RETAINED:
                log.debug("retained change on the cmd topic already handled (%s)", exc.reason)
                return []
            log.warning("refused a configuration change (version %d): %s", version, exc)
            return [self._result(exc.reason, version, now_s, exc.setting)]
        log.info(
            "applied configuration change version %d (%s)",
            version,
            ", ".join([*accepted.change.settings, *accepted.change.commands]),
        )
        return [self._result(APPLIED, version, now_s), *extra]

    def decide(self, payload: bytes) -> Accepted:
        """Accepted, or ChangeRefused with the reason; changes nothing."""
        if len(payload) > MAX_CHANGE_BYTES:
            raise ChangeRefused("too-large", f"{len(payload)} bytes, the cap is {MAX_CHANGE_BYTES}")
        try:
            open_envelope(payload)
        except SignatureError as exc:
            raise ChangeRefused("unsigned", f"not a signed envelope ({exc})") from None
        try:
            verified = verify_envelope(payload, self.keys, CHANGE_PAYLOAD_TYPE)
        except SignatureError as exc:
            raise ChangeRefused(exc.reason, str(exc)) from None
        change = parse(verified.body)
        try:
            try:
                return self._check(change, hashlib.sha256(verified.body).hexdigest())
            except StateError as exc:
                raise ChangeRefused(STATE_UNAVAILABLE, str(exc)) from None
        except ChangeRefused as exc:
            exc.version = change.version  # reported in the result event
            raise

    def _check(self, change: Change, digest: str) -> Accepted:
        device = self.base.device
        if not change.targets(device.site, device.id):
            raise ChangeRefused(
                "wrong-target",
                f"for {change.site}/{change.device or '*'}, this is {device.site}/{device.id}",
            )
        current = self.state.current()
        if self.state.was_applied(digest):
            raise ChangeRefused("replayed", f"version {change.version} was applied already")
        if change.version <= current.version:
            raise ChangeRefused(
                "stale-version", f"version {change.version} is not above {current.version}"
            )
        if change.base_version != current.version:
            raise ChangeRefused(
                "base-mismatch",
                f"written against version {change.base_version}, "
                f"this device runs {current.version}",
            )
        if not self.clock_synced():
            raise ChangeRefused(
                "time-unverified", "the clock is not synchronised, so expiry cannot be judged"
            )
        now = self.wall_s()
        if now >= change.expires:
            raise ChangeRefused("expired", f"expired {int(now - change.expires)} s ago")
        if change.issued > now + MAX_SKEW_S:
            raise ChangeRefused(
                "not-yet-valid", f"issued {int(change.issued - now)} s in the future"
            )
        check_settings(change.settings)  # names the key of this change, not of an earlier one
        stored = {k: v for k, v in current.settings.items() if k not in self.set_aside}
        settings = {**stored, **change.settings}  # in force after it (next start)
        if self.live is None:
            return Accepted(change, digest, settings, overlay(self.base, settings))
        # only this change's settings, over what runs: the earlier ones are in it already, and
        # geometry the setup view saved since stays (the deny-list keeps masks out of reach)
        return Accepted(change, digest, settings, overlay(self.live.cfg, change.settings))

    def apply(self, accepted: Accepted, envelope: bytes, now_s: float) -> list[Observation]:
        """Prepare, commit (version and settings in one transaction), switch, run the commands."""
        change = accepted.change
        prepared = (
            self.live.prepare(accepted.cfg) if self.live is not None and change.settings else None
        )
        try:
            self.state.commit(
                change.version,
                accepted.digest,
                accepted.settings,
                envelope,
                int(self.wall_s() * 1000),
                self.file_geometry,
            )
        except StateError as exc:  # not recorded, so not applied: nothing switched or run
            refused = ChangeRefused(STATE_UNAVAILABLE, f"nothing applied: {exc}")
            refused.version = change.version
            raise refused from None
        self.set_aside = ()  # the stored settings no longer hold them
        out: list[Observation] = []
        if self.live is not None:
            if prepared is not None:
                self.live.switch(prepared, now_s)
            if "log.level" in change.settings:
                self.live.set_log_level(str(change.settings["log.level"]))
            if "heartbeat" in change.commands:
                out.extend(self.live.heartbeat(now_s))
            if "announce" in change.commands:
                self.live.announce()
        if "restart" in change.commands:
            self.restart_requested = (
                True  # the run loop stops, flushes and exits for systemd to start it
            )
        return out

    def local_geometry_saved(self, file_cfg: Config) -> list[str]:
        """The running agent took up zones and lines saved to its config file (setup view, hand
        edit): the newer of the two, they set the stored remote zones and lines aside, so neither the
        next change (merged over the stored settings) nor the next start brings the older ones back.
        Returns the settings set aside; StateError when the state cannot be written (the next start
        then sees the file's fingerprint changed and sets them aside itself)."""
        new = fingerprint(file_cfg)
        if new == self.file_geometry:  # the save changed masks only: the file's zones and lines are as they were
            return []
        dropped = self.state.local_geometry(new, KEYS)
        self.file_geometry = new
        self.set_aside = ()
        return dropped

    def _result(self, reason: str, version: int, now_s: float, setting: str = "") -> Observation:
        self.results[reason] = self.results.get(reason, 0) + 1
        try:
            self._version_in_force = self.state.current().version
        except StateError:
            pass  # unreadable now: the version last read (a failed commit changed nothing)
        current = self._version_in_force
        return Observation(
            "config",
            setting,
            "",
            now_s,
            {"version": version, "config_version": current},
            reason=reason,
        )
