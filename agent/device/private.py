"""The device's state stays private: folders 0700 and files 0600, whatever the caller's umask."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
UMASK = 0o077  # new files 0600 and folders 0700, also those SQLite and shutil create for us

# Commands that write into the state folder (outbox, counters, keys, models): they run under UMASK.
STATE_COMMANDS = frozenset({"run", "replay", "keygen", "models", "outbox", "setup-view"})


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Run the body with umask 077, then restore the caller's (the umask is per process)."""
    previous = os.umask(UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) and make the folder itself 0700, also when it existed."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    if stat.S_IMODE(path.stat().st_mode) != DIR_MODE:
        path.chmod(DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty if absent, and make it 0600 (an older world-readable file included)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def tighten(path: Path) -> None:
    """Make an existing file 0600 (absent files are left alone): e.g. SQLite's -wal and -shm."""
    try:
        if stat.S_IMODE(path.stat().st_mode) != FILE_MODE:
            path.chmod(FILE_MODE)
    except FileNotFoundError:
        pass
