"""The state folder's mark that a setup view is open, read by a running agent (coverage: blind).

The mark also carries what the two audit events need when a running agent signs them (it owns
the outbox, so `setup-view` cannot): the session, when it opened and closes at the latest, the
planned duration, and once closed, when and whether the config was changed. `audit` says who
signs the events: "agent" (the running agent, from the mark) or "self" (setup-view itself, the
agent being stopped; the agent ignores such a mark's audit).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

MARKER_FILE = "setup_view.open"
RULE = "setup-view"  # the rule id the two audit events carry
AGENT = "agent"  # a running agent signs the audit events from the mark
SELF = "self"  # setup-view signs them itself


@dataclass(frozen=True)
class Mark:
    until_ms: int  # wall clock: a crash leaves a mark that expires
    session: str = ""  # empty: a mark without audit data
    opened_ms: int = 0
    duration_s: int = 0  # the planned duration (the opened event's value)
    audit: str = SELF
    closed_ms: int = 0  # 0 while open
    config_changed: bool = False

    def open_at(self, now_ms: int) -> bool:
        return not self.closed_ms and now_ms < self.until_ms


def write(state_dir: Path, until_ms: int, *, session: str = "", opened_ms: int = 0, duration_s: int = 0,
          audit: str = SELF, closed_ms: int = 0, config_changed: bool = False) -> Path:
    """Mark the setup view open until until_ms (wall clock), or closed (closed_ms); atomic.

    The file gets the state folder's owner and group (setup-view runs under sudo, the agent as its
    service user, which must read it) and mode 0600."""
    doc = {"pid": os.getpid(), "until_ms": until_ms, "session": session, "opened_ms": opened_ms,
           "duration_s": duration_s, "audit": audit, "closed_ms": closed_ms,
           "config_changed": int(config_changed)}
    path = state_dir / MARKER_FILE
    fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=f".{MARKER_FILE}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(doc) + "\n")
            fh.flush()
            folder = state_dir.stat()
            if os.geteuid() == 0 and (folder.st_uid, folder.st_gid) != (os.getuid(), os.getgid()):
                os.fchown(fh.fileno(), folder.st_uid, folder.st_gid)
            os.fchmod(fh.fileno(), 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def read(state_dir: Path) -> Mark | None:
    """The mark, or None when there is none (or it does not read)."""
    try:
        doc = json.loads((state_dir / MARKER_FILE).read_text())
        return Mark(int(doc["until_ms"]), str(doc.get("session", "")), int(doc.get("opened_ms", 0)),
                    int(doc.get("duration_s", 0)), str(doc.get("audit", SELF)), int(doc.get("closed_ms", 0)),
                    bool(doc.get("config_changed", 0)))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def clear(state_dir: Path) -> None:
    try:
        (state_dir / MARKER_FILE).unlink()
    except FileNotFoundError:
        pass


def consume(state_dir: Path, session: str) -> None:
    """Remove the mark of this session (its audit events are queued); a newer session's mark stays."""
    mark = read(state_dir)
    if mark is not None and mark.session == session:
        with contextlib.suppress(OSError):
            (state_dir / MARKER_FILE).unlink()


def is_open(state_dir: Path, now_ms: int) -> bool:
    """True while a setup view's mark exists, is not closed and its deadline has not passed."""
    mark = read(state_dir)
    return mark is not None and mark.open_at(now_ms)
