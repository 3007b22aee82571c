"""The device's health numbers for the heartbeat: inference percentiles, camera state, host readings.

All integers. The detector is wrapped (InferenceTimer) rather than the frame loop edited, so the
timing follows the detector wherever the loop calls it. Host readings come from agent.device.sysinfo and
are left out where the host has none (no thermal zone, no firmware bits), never sent as a guess.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

from agent.device import sysinfo

CAMERA_STREAMING = 0
CAMERA_LOST = 1
CAMERA_BLIND = 2  # covered or too dark (agent.device.coverage)
CAMERA_SLOW = 3  # frames below health.min_fps


def version_number(version: str) -> int:
    """'1.2.3' -> 10203 (major * 10000 + minor * 100 + patch; anything after a non-digit is ignored)."""
    parts = []
    for piece in version.split(".")[:3]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        parts.append(min(99, int(digits or 0)))
    parts += [0] * (3 - len(parts))
    return parts[0] * 10000 + parts[1] * 100 + parts[2]


class InferenceTimer:
    """A detector wrapper that times inference; percentiles() gives p50/p95 since the last call.

    It times the whole detect() of the one-thread loop, and the infer() step (invoke and its
    copies) of the threaded loop, where preparing and decoding overlap other frames' inference.
    """

    def __init__(self, detector: Any, keep: int = 4096) -> None:
        self.inner = detector
        self.keep = keep
        self._samples: list[int] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # model_id, model_sha256, health(): the detector's own
        return getattr(self.inner, name)

    def _timed(self, step: Callable[[Any], Any], arg: Any) -> Any:
        start = time.perf_counter_ns()
        out = step(arg)
        took = (time.perf_counter_ns() - start) // 1000
        with self._lock:
            if len(self._samples) < self.keep:
                self._samples.append(took)
        return out

    def detect(self, frame: Any) -> Any:
        return self._timed(self.inner.detect, frame)

    def set_masks(self, masks: Any) -> bool:
        return bool(self.inner.set_masks(masks))

    def stages(self) -> Any:
        inner = self.inner.stages()
        return None if inner is None else _TimedStages(inner, self)

    def percentiles(self) -> tuple[int, int] | None:
        """(p50, p95) in microseconds of the detects since the last call (nearest rank), or None."""
        with self._lock:
            samples, self._samples = self._samples, []
        if not samples:
            return None
        samples.sort()
        n = len(samples)
        return samples[(n - 1) * 50 // 100], samples[(n - 1) * 95 // 100]


class _TimedStages:
    """A detector's stages with the inference step timed (agent.frameloop.Stages)."""

    def __init__(self, inner: Any, timer: InferenceTimer) -> None:
        self.inner, self.timer = inner, timer

    def prepare(self, frame: Any) -> Any:
        return self.inner.prepare(frame)

    def infer(self, prepared: Any) -> Any:
        return self.timer._timed(self.inner.infer, prepared)

    def detections(self, inferred: Any) -> Any:
        return self.inner.detections(inferred)


def host_values(readers: sysinfo.Readers, state_dir: Path) -> dict[str, int]:
    """SoC temperature, throttled bits (now, since boot), RSS, free disk, clock sync: what the host has."""
    out: dict[str, int] = {"rss_kb": sysinfo.rss_kb()}
    temp = readers.sys.temperature_mc()
    if temp is not None:
        out["cpu_temp_mc"] = temp
    bits = readers.sys.throttled()
    if bits is not None:
        out["throttled_now"] = bits & sysinfo.NOW_MASK
        out["throttled_since_boot"] = (bits >> sysinfo.SINCE_BOOT_SHIFT) & sysinfo.NOW_MASK
    try:
        out["disk_free_mb"] = readers.disk(state_dir).free_mb
    except OSError:
        pass
    synced = readers.clock_synced()
    if synced is not None:
        out["clock_synced"] = int(synced)
    return out


def camera_state(coverage_state: str | None = None) -> int:
    """0 streaming, 1 lost, 2 covered or too dark, 3 below the minimum frame rate: the coverage
    stage's view of the newest frame (or of the outage, which the frame loop reports to it)."""
    if coverage_state == "camera_lost":
        return CAMERA_LOST
    if coverage_state == "covered":
        return CAMERA_BLIND
    if coverage_state in ("low_fps", "overload"):
        return CAMERA_SLOW
    return CAMERA_STREAMING
