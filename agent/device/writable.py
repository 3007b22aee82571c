"""One line for a folder the agent must write into but cannot: which folder, why, and the fix."""

from __future__ import annotations

import errno
import getpass
import os
import tempfile
from pathlib import Path

from agent.errors import StateError


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.geteuid())


def not_writable(folder: Path, what: str, reason: str, option: str = "--state", code: int | None = None) -> StateError:
    """The error for a folder this user cannot write: names it, says why and the fix for that cause
    (code: the errno when known; a permission is fixed by an owner, a read-only disk by a remount)."""
    if code == errno.EROFS:
        fix = "remount it read-write"
    elif code == errno.ENOSPC:
        fix = "free some space on that disk"
    elif code in (errno.ENOENT, errno.ENOTDIR):
        fix = "it cannot be made there; use a folder on the device's disk"
    elif code in (errno.EACCES, errno.EPERM) or code is None:
        fix = f"make it writable for user {_user()} (`sudo chown -R {_user()} {folder}`, or remount it read-write)"
    else:
        fix = "check the disk it is on"
    return StateError(f"cannot write to the {what} {str(folder)!r} ({reason}); {fix}, or give {option} another folder")


def ensure_writable(folder: Path, what: str, option: str = "--state") -> None:
    """Create folder if needed and prove a file can be written there, or raise not_writable."""
    if folder.exists() and not folder.is_dir():
        raise StateError(f"the {what} {str(folder)!r} is a file; give {option} a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".edge-agent-probe-"):
            pass
    except OSError as exc:
        raise not_writable(folder, what, exc.strerror or exc.__class__.__name__, option, exc.errno) from None
