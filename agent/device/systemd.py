"""systemd supervision: READY after the first frame, WATCHDOG only while the frame loop and sender progress.

The notify protocol is one datagram per message on the AF_UNIX socket named by NOTIFY_SOCKET (a path,
or '@name' in the abstract namespace), written here rather than through a library, so a failure to
send is seen (logged once) instead of swallowed. Nothing here reaches into the frame loop: it reads
progress counters (callables returning integers that grow while a part works) from its own thread,
and pings the watchdog only while every one of them moved within the last half watchdog period. A
camera read that hangs or an interpreter that wedges stops the pings, and systemd restarts us.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from agent.types import Observation

log = logging.getLogger(__name__)

Counter = Callable[[], int]


class Notifier:
    """sd_notify(3) on NOTIFY_SOCKET; inert when the variable is unset (not under systemd)."""

    def __init__(self, address: str | None) -> None:
        self.address: str | None = None
        self.sock: socket.socket | None = None
        self._failed = False
        if not address:
            return
        if address.startswith("@"):  # abstract namespace: a leading NUL byte
            self.address = "\0" + address[1:]
        elif address.startswith("/"):
            self.address = address
        else:
            log.warning("NOTIFY_SOCKET %r is neither a path nor @abstract; not notifying systemd", address)
            return
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Notifier:
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.sock is not None

    def send(self, *lines: str) -> bool:
        """One datagram of KEY=VALUE lines; False (logged once) if systemd did not take it."""
        if self.sock is None or self.address is None:
            return False
        try:
            self.sock.sendto("\n".join(lines).encode(), self.address)
            return True
        except OSError as exc:
            if not self._failed:
                self._failed = True
                log.warning("cannot notify systemd on %s: %s", self.address.replace("\0", "@"), exc)
            return False

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def watchdog_interval_s(env: Mapping[str, str] = os.environ, pid: int | None = None) -> float | None:
    """WatchdogSec in seconds when systemd asks this process for pings (WATCHDOG_PID, if set, is ours)."""
    usec = env.get("WATCHDOG_USEC", "")
    owner = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if owner and owner != str(pid if pid is not None else os.getpid()):
        return None
    return int(usec) / 1_000_000


@dataclass
class Progress:
    """One part's progress counter and when it last moved."""

    name: str
    read: Counter
    last: int = -1
    moved_at: float = field(default=0.0)


class Watchdog:
    """Decides, from progress counters, whether the process may tell systemd it is alive."""

    def __init__(self, parts: dict[str, Counter], stall_s: float, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.stall_s = stall_s
        now = clock()
        self.parts = [Progress(name, read, read(), now) for name, read in parts.items()]

    def stalled(self) -> list[str]:
        """The parts whose counter has not moved for stall_s (reading them counts as a check)."""
        now = self.clock()
        out = []
        for part in self.parts:
            value = part.read()
            if value != part.last:
                part.last, part.moved_at = value, now
            elif now - part.moved_at >= self.stall_s:
                out.append(part.name)
        return out


class FrameProbe:
    """A periodic pipeline stage: counts loop turns (frames and camera-lost beats), says READY once."""

    def __init__(self, frames: Counter, on_first_frame: Callable[[], object]) -> None:
        self.frames = frames
        self.on_first_frame = on_first_frame
        self.turns = 0
        self.ready = threading.Event()

    def tick(self, now_s: float) -> list[Observation]:
        self.turns += 1
        if not self.ready.is_set() and self.frames() > 0:
            self.ready.set()
            self.on_first_frame()  # the first frame went through detect, track and the rules
        return []


class Supervisor:
    """READY=1 after the first frame, STATUS= and WATCHDOG=1 from its own thread, STOPPING=1 at the end."""

    def __init__(
        self,
        notifier: Notifier,
        frames: Counter,
        outbox_rows: Counter,
        sender_turns: Counter | None,
        interval_s: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.notifier = notifier
        self.frames = frames
        self.outbox_rows = outbox_rows
        self.clock = clock
        self.probe = FrameProbe(frames, lambda: self.notifier.send("READY=1", self.status()))
        parts: dict[str, Counter] = {"frame loop": lambda: self.probe.turns}
        if sender_turns is not None:
            parts["sender"] = sender_turns
        # Pings every quarter period; a part must have moved within the last half period.
        self.interval_s = interval_s
        self.period_s = interval_s / 4 if interval_s else 5.0
        self.watchdog = Watchdog(parts, interval_s / 2 if interval_s else float("inf"), clock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rate = (clock(), frames())
        self._said_stalled: tuple[str, ...] = ()

    @classmethod
    def from_env(
        cls, frames: Counter, outbox_rows: Counter, sender_turns: Counter | None,
        env: Mapping[str, str] = os.environ,
    ) -> Supervisor | None:
        notifier = Notifier.from_env(env)
        if not notifier.enabled:
            return None
        return cls(notifier, frames, outbox_rows, sender_turns, watchdog_interval_s(env))

    def status(self, stalled: list[str] | None = None) -> str:
        now, frames = self.clock(), self.frames()
        then, before = self._rate
        self._rate = (now, frames)
        fps = (frames - before) / (now - then) if now > then else 0.0
        text = f"STATUS={fps:.1f} frames/s, {frames} frames, outbox {self.outbox_rows()} envelopes"
        if stalled:
            text += f"; no progress: {', '.join(stalled)}"
        return text

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="edge-agent-watchdog", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            stalled = self.watchdog.stalled()
            lines = [self.status(stalled)]
            if self.interval_s and not stalled:
                lines.append("WATCHDOG=1")
            if tuple(stalled) != self._said_stalled:
                self._said_stalled = tuple(stalled)
                if stalled:
                    log.error("no progress in the %s for %.0f s: no more watchdog pings (systemd restarts us)",
                              " and ".join(stalled), self.watchdog.stall_s)
                else:
                    log.info("progress again in every part; watchdog pings resumed")
            self.notifier.send(*lines)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.notifier.send("STOPPING=1")
        self.notifier.close()
