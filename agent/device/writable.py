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


def writable_fix(folder: Path, code: int | None) -> str:
    """The fix for a folder that cannot be written, by cause (code: the errno when known): a
    permission is fixed by an owner, a read-only disk by a remount, a full one by freeing space."""
    if code == errno.EROFS:
        return "remount it read-write"
    if code == errno.ENOSPC:
        return "free some space on that disk"
    if code in (errno.ENOENT, errno.ENOTDIR):
        return "it cannot be made there; use a folder on the device's disk"
    if code in (errno.EACCES, errno.EPERM) or code is None:
        if not folder.exists():  # nothing to chown yet: make it, owned by whoever runs the agent
            return f"create it for user {_user()} (`sudo install -d -o {_user()} {folder}`)"
        return f"make it writable for user {_user()} (`sudo chown -R {_user()} {folder}`, or remount it read-write)"
    return "check the disk it is on"


def not_writable(folder: Path, what: str, reason: str, option: str = "--state", code: int | None = None) -> StateError:
    """The error for a folder this user cannot write: names it, says why and the fix for that cause."""
    return StateError(f"cannot write to the {what} {str(folder)!r} ({reason}); {writable_fix(folder, code)}, "
                      f"or give {option} another folder")


def probe_writable(folder: Path) -> OSError | None:
    """Whether a file can be made in folder, or in the nearest existing folder above it when it does not
    exist yet (nothing is created): None, or the error that stopped it."""
    target = folder
    while not target.exists() and target != target.parent:
        target = target.parent
    if not target.is_dir():
        return NotADirectoryError(errno.ENOTDIR, "not a folder", str(target))
    try:
        with tempfile.NamedTemporaryFile(dir=target, prefix=".edge-agent-probe-"):
            return None
    except OSError as exc:
        return exc


def ensure_writable(folder: Path, what: str, option: str = "--state") -> None:
    """Create folder if needed and prove a file can be written there, or raise not_writable."""
    if folder.exists() and not folder.is_dir():
        raise StateError(f"the {what} {str(folder)!r} is a file; give {option} a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise not_writable(folder, what, exc.strerror or exc.__class__.__name__, option, exc.errno) from None
    failed = probe_writable(folder)
    if failed is not None:
        raise not_writable(folder, what, failed.strerror or failed.__class__.__name__, option, failed.errno)
