"""Is the wall clock synchronised? Asked of the kernel (adjtimex) and systemd-timesyncd."""

from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path

TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")
TIME_ERROR = 5  # adjtimex's answer while the kernel considers the clock unsynchronised (STA_UNSYNC)


def kernel_synchronised() -> bool:
    """adjtimex(2) with no modes: anything but TIME_ERROR means an NTP daemon keeps the clock."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex (208 bytes on 64-bit); modes = 0
        state = int(libc.adjtimex(buf))
    except (OSError, AttributeError):
        return False
    return state not in (-1, TIME_ERROR)


def clock_synchronised() -> bool:
    """The default clock check of `[remote] clock = "system"`."""
    return TIMESYNC_FLAG.exists() or kernel_synchronised()
