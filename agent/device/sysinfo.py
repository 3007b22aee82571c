"""Readers of the host's state (throttled bits, SoC temperature, clock sync, disk, RSS), each injectable.

On a Raspberry Pi the firmware exposes its throttled bits in sysfs (the same word `vcgencmd
get_throttled` prints) and the SoC temperature in the first thermal zone. Every path is read under
a root folder, so tests hand in a fake sysfs tree; on other hosts the readers return None.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

THROTTLED_PATH = "sys/devices/platform/soc/soc:firmware/get_throttled"
THERMAL_PATH = "sys/class/thermal/thermal_zone0/temp"

# The firmware's throttled word: bits 0-3 now, bits 16-19 the same conditions since boot.
UNDER_VOLTAGE = 1 << 0
FREQ_CAPPED = 1 << 1
THROTTLED = 1 << 2
SOFT_TEMP_LIMIT = 1 << 3
NOW_MASK = 0xF
SINCE_BOOT_SHIFT = 16
BIT_NAMES = {
    UNDER_VOLTAGE: "under-voltage",
    FREQ_CAPPED: "ARM frequency capped",
    THROTTLED: "throttled",
    SOFT_TEMP_LIMIT: "soft temperature limit",
}


def throttled_names(bits: int) -> list[str]:
    """The conditions set in the low four bits of a throttled word (now, or since boot shifted down)."""
    return [name for bit, name in BIT_NAMES.items() if bits & bit]


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def parse_throttled(text: str) -> int | None:
    """'0x50005', 'throttled=0x50005' (vcgencmd) or '50005' (sysfs, hex) -> the integer word."""
    value = text.strip().rpartition("=")[2].strip()
    try:
        return int(value, 16)
    except ValueError:
        return None


@dataclass(frozen=True)
class SysRoot:
    """The firmware and thermal files under `root` ('/' on a device, a fake tree in tests)."""

    root: Path = Path("/")

    def throttled(self) -> int | None:
        """The firmware's throttled word, or None where the Pi's firmware does not expose it."""
        text = _read_text(self.root / THROTTLED_PATH)
        return parse_throttled(text) if text else None

    def temperature_mc(self) -> int | None:
        """SoC temperature in millidegrees Celsius, or None without a thermal zone."""
        text = _read_text(self.root / THERMAL_PATH)
        try:
            return int(text) if text else None
        except ValueError:
            return None


class _Timex(ctypes.Structure):
    # struct timex is 208 bytes on 64-bit Linux; modes = 0 only reads. The rest is padding here.
    _fields_ = [("modes", ctypes.c_uint), ("rest", ctypes.c_byte * 252)]


TIME_ERROR = 5  # adjtimex(): the kernel clock is not synchronised (STA_UNSYNC)


def kernel_clock_synced() -> bool | None:
    """The kernel's view (adjtimex, as `timedatectl` shows 'System clock synchronized'): True, False,
    or None where it cannot be asked (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6", use_errno=True)
        state = int(libc.adjtimex(ctypes.byref(_Timex())))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR


@dataclass(frozen=True)
class DiskUsage:
    total: int
    free: int

    @property
    def free_mb(self) -> int:
        return self.free // (1024 * 1024)


def disk_usage(path: Path) -> DiskUsage:
    """Total and free bytes of the file system holding path (its nearest existing parent)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    u = shutil.disk_usage(p)
    return DiskUsage(u.total, u.free)


def rss_kb() -> int:
    """This process's resident set size now, in KiB (Linux /proc; the peak elsewhere)."""
    text = _read_text(Path("/proc/self/statm"))
    if text:
        try:
            return int(text.split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
        except (ValueError, IndexError, OSError):
            pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


@dataclass(frozen=True)
class ServiceState:
    active: str  # systemd's ActiveState: active, inactive, failed, ...
    watchdog_us: int  # WatchdogUSec (0: no watchdog)


def systemd_service(unit: str = "edge-agent.service") -> ServiceState | None:
    """The unit's state from `systemctl show`, or None without systemd."""
    exe = shutil.which("systemctl")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "show", unit, "--property=ActiveState,LoadState,WatchdogUSec"],
            check=False, capture_output=True, text=True, timeout=2,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    props = dict(line.partition("=")[::2] for line in out.stdout.splitlines())
    if props.get("LoadState") in (None, "", "not-found"):
        return ServiceState("not-installed", 0)
    return ServiceState(props.get("ActiveState", "unknown"), _usec(props.get("WatchdogUSec", "0")))


def _usec(text: str) -> int:
    """systemd prints WatchdogUSec as '0', '30s', '1min 30s' or microseconds."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    units = {"us": 1, "ms": 1000, "s": 1_000_000, "min": 60_000_000, "h": 3_600_000_000}
    total = 0
    for part in text.split():
        num = "".join(ch for ch in part if ch.isdigit() or ch == ".")
        unit = part[len(num):]
        if not num or unit not in units:
            return 0
        total += int(float(num) * units[unit])
    return total


@dataclass(frozen=True)
class Readers:
    """Every reader of the host the doctor and the heartbeat use; tests replace any of them."""

    sys: SysRoot = SysRoot()
    clock_synced: Callable[[], bool | None] = kernel_clock_synced
    disk: Callable[[Path], DiskUsage] = disk_usage
    service: Callable[[], ServiceState | None] = systemd_service
