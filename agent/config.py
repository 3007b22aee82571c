"""TOML -> frozen config. Unknown keys are rejected with the closest valid one; every section optional.

Each section is a frozen dataclass. A field's type annotation is the rule for its value and its
`metadata["help"]` describes it. Checks that need more than a type live in `__post_init__` and
raise ValueError, which the loader turns into one ConfigError line naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agent.errors import ConfigError
from agent.protocol.topics import DEFAULT_PREFIX

ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def described(text: str, default: Any = dataclasses.MISSING, **kw: Any) -> Any:
    """A config field with its one-line description (shown in errors and the docs) and default."""
    if default is dataclasses.MISSING and "default_factory" not in kw:
        return field(metadata={"help": text}, **kw)
    if "default_factory" in kw:
        return field(metadata={"help": text}, **kw)
    return field(default=default, metadata={"help": text}, **kw)


_help = described  # the short name the device's sections use


def check_id(value: str, what: str) -> None:
    """Ids end up in MQTT topics: no '/', '+', '#', spaces; 1..64 characters."""
    if not value or len(value) > 64 or not set(value) <= ID_CHARS:
        raise ValueError(
            f"{what} {value!r} must be 1-64 characters of letters, digits, '_', '.' or '-'"
        )


def default_state_dir() -> str:
    env = os.environ.get("EDGE_AGENT_STATE")
    if env:
        return env
    return str(Path.home() / ".local" / "state" / "edge-agent")


@dataclass(frozen=True)
class DeviceConfig:
    id: str = _help("Device id, used in topics and the enrolment record.", "edge-demo")
    site: str = _help("Site id, used in topics.", "demo-site")
    key: str = _help("Path to the device's Ed25519 private key (edge-agent keygen).", "")
    state_dir: str = _help("Where the outbox, counters and throwaway keys live.", "")
    profile: str = _help(
        "Board profile (hw/profiles): auto (from /proc/device-tree/model and the accelerators found), "
        "none, or a profile id from `edge-agent profile --list`. Its values are defaults under this file.",
        "auto",
    )

    def __post_init__(self) -> None:
        check_id(self.id, "device.id")
        check_id(self.site, "device.site")


@dataclass(frozen=True)
class SourceConfig:
    kind: str = _help("Frame source: replay, synthetic, v4l2, rtsp or picamera2.", "replay")
    path: str = _help("Video file or image folder (replay); device path (v4l2); URL (rtsp).", "")
    realtime: bool = _help("Replay at recorded speed instead of as fast as possible.", False)
    loop: bool = _help("Start the replay again at its end.", False)
    fps: float = _help("Frames per second (synthetic, or replay of an image folder).", 10.0)
    width: int = _help("Frame width asked of the camera (0: its default).", 0)
    height: int = _help("Frame height asked of the camera (0: its default).", 0)
    main_width: int = _help("picamera2: main stream width next to the lores one (0: 1280 or more).", 0)
    main_height: int = _help("picamera2: main stream height (0: 720 or more).", 0)
    stall_after: int = _help(
        "synthetic only: after this many frames the source blocks for good, like a hung camera read "
        "(to test the service watchdog; 0: never).", 0
    )
    max_frames: int = _help("Stop after this many frames (0: no limit).", 0)
    decode_threads: int = _help(
        "Threads FFmpeg decodes a replayed file or an rtsp stream with (0: one for files, whose decoding "
        "has its own thread in the frame loop and leaves the other cores to inference; FFmpeg's choice, "
        "one per core, for rtsp, which must keep up with the camera).", 0
    )

    def __post_init__(self) -> None:
        kinds = ("replay", "synthetic", "v4l2", "rtsp", "picamera2")
        if self.kind not in kinds:
            raise ValueError(f"source.kind {self.kind!r} is not one of {', '.join(kinds)}")
        if self.fps <= 0:
            raise ValueError("source.fps must be > 0")
        if min(self.width, self.height, self.main_width, self.main_height) < 0:
            raise ValueError("source.width, height, main_width and main_height must be >= 0 (0: the default)")
        if self.stall_after < 0:
            raise ValueError("source.stall_after must be >= 0 (0: never)")
        if self.max_frames < 0:
            raise ValueError("source.max_frames must be >= 0 (0: no limit)")
        if self.decode_threads < 0:
            raise ValueError("source.decode_threads must be >= 0 (0: the default)")


@dataclass(frozen=True)
class DetectorConfig:
    backend: Literal["tflite", "scripted"] = _help(
        "tflite (the model), or scripted: the detections listed in detector.script, for tests "
        "and demos without a model.", "tflite"
    )
    script: str = _help(
        "Scripted backend: a JSON Lines file, one line per frame with detections: "
        '{"frame": N, "detections": [{"label": "person", "score": 0.9, "box": [x0, y0, x1, y1]}]}.',
        "",
    )
    model: str = _help("Model id from models/manifest.toml.", "yolox_nano_ti_lite_416_int8")
    model_dir: str = _help("Where installed models live (default: <state_dir>/models).", "")
    threads: int = _help(
        "CPU threads for the interpreter (0: one fewer than the cores this process may use, so "
        "decoding, resizing and post-processing run beside inference on the core left over).", 0
    )
    delegate: Literal["auto", "cpu", "edgetpu"] = _help("auto, cpu or edgetpu.", "auto")
    on_missing_accelerator: Literal["fail", "cpu"] = _help(
        "When the Edge TPU is configured but missing: fail, or run the CPU twin.", "fail"
    )
    score_threshold: float = _help("Drop detections scoring below this.", 0.5)
    classes: tuple[str, ...] = _help(
        "Class allow-list: every other class is dropped inside detection.",
        default_factory=lambda: ("person",),
    )
    labels: str = _help("Labels file overriding the model's own (one class name per line).", "")
    nms_iou: float = _help(
        "Class-wise non-maximum suppression IoU (YOLO and YOLOX decoders). 0.7 as ByteTrack: people in a "
        "group overlap by more than the usual 0.45, which would merge two people into one box.", 0.7
    )
    max_detections: int = _help("Most detections kept per frame.", 100)
    edgetpu_library: str = _help("Edge TPU delegate library.", "libedgetpu.so.1")
    edgetpu_device: str = _help("Edge TPU device (usb, pci, usb:0; empty: the first found).", "")

    def __post_init__(self) -> None:
        if self.backend == "scripted" and not self.script:
            raise ValueError('detector.backend = "scripted" needs detector.script (JSON Lines)')
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError("detector.score_threshold must be between 0 and 1")
        if self.threads < 0:
            raise ValueError("detector.threads must be >= 0 (0: one fewer than the cores)")
        if not 0.0 < self.nms_iou <= 1.0:
            raise ValueError("detector.nms_iou must be in (0, 1]")
        if self.max_detections < 1:
            raise ValueError("detector.max_detections must be >= 1")

    @property
    def interpreter_threads(self) -> int:
        """`threads`, with 0 resolved: the usable cores minus one (Pi 4, 5, Zero 2 W: 3), at least 1."""
        if self.threads:
            return self.threads
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cores = os.cpu_count() or 1
        return max(1, cores - 1)


Point = tuple[float, float]


def _check_points(points: tuple[Point, ...], what: str, minimum: int) -> None:
    if len(points) < minimum:
        raise ValueError(f"{what} needs at least {minimum} points")
    for x, y in points:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"{what} point [{x}, {y}] is outside [0, 1] (normalized, origin top-left)")


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _segments_cross(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """True when segments p1p2 and q1q2 intersect (touching counts)."""
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    if ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and 0 not in (d1, d2, d3, d4):
        return True

    def on(a: Point, b: Point, c: Point, d: float) -> bool:
        return d == 0 and min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])

    return on(q1, q2, p1, d1) or on(q1, q2, p2, d2) or on(p1, p2, q1, d3) or on(p1, p2, q2, d4)


MIN_POLYGON_AREA = 1e-6  # of the frame: below this a polygon covers nothing a detector can see


def _check_polygon(points: tuple[Point, ...], what: str) -> None:
    """A simple polygon with an area: no zero-area outline, no edge crossing another."""
    n = len(points)
    area = abs(sum(points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1]
                   for i in range(n))) / 2
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbours share a corner
            if _segments_cross(*edges[i], *edges[j]):
                raise ValueError(f"{what} crosses itself (edge {i + 1} meets edge {j + 1}); list its "
                                 f"corners in order around the region")
    if area < MIN_POLYGON_AREA:
        raise ValueError(f"{what} has no area (its points lie on one line or repeat); give at least "
                         f"3 corners that enclose the region")


@dataclass(frozen=True)
class ZoneConfig:
    id: str = _help("Zone id, used as the rule id in events.")
    polygon: tuple[Point, ...] = _help("Polygon in normalized coordinates, origin top-left.")
    classes: tuple[str, ...] = _help("Classes this zone counts.", default_factory=lambda: ("person",))
    anchor: Literal["bottom_centre", "centre"] = _help("Point of the box tested.", "bottom_centre")
    restricted: bool = _help("A restricted zone: loitering is reported.", False)
    loiter_after_s: float = _help("Loitering after this many seconds (0: off).", 0.0)
    report_every_s: float = _help("Periodic occupancy report interval (0: only on change).", 60.0)
    gathering_threshold: int = _help("Gathering when at least this many are present (0: off).", 0)
    gathering_rise: int = _help("Gathering when the count rises by this many ...", 0)
    gathering_window_s: float = _help("... within this many seconds.", 10.0)
    unattended_after_s: float = _help("Unattended object after this many seconds (0: off).", 0.0)
    unattended_radius: float = _help("No person within this normalized distance.", 0.15)
    unattended_classes: tuple[str, ...] = _help(
        "Object classes watched for the unattended-object rule.",
        default_factory=lambda: ("backpack", "handbag", "suitcase"),
    )
    stationary_tolerance: float = _help("An object moving less than this (normalized) is stationary.", 0.03)
    count_every_s: float = _help("Entries/exits count event every this many seconds (0: off).", 60.0)
    hysteresis: float = _help("Distance past the zone edge an anchor must reach to change in/out.", 0.01)

    def __post_init__(self) -> None:
        check_id(self.id, "zones.id")
        _check_points(self.polygon, f"zone {self.id!r} polygon", 3)
        _check_polygon(self.polygon, f"zone {self.id!r} polygon")
        for name in ("loiter_after_s", "report_every_s", "gathering_window_s", "unattended_after_s",
                     "unattended_radius", "stationary_tolerance", "count_every_s", "hysteresis"):
            if getattr(self, name) < 0:
                raise ValueError(f"zone {self.id!r}: {name} must be >= 0")
        if self.gathering_threshold < 0 or self.gathering_rise < 0:
            raise ValueError(f"zone {self.id!r}: gathering_threshold and gathering_rise must be >= 0")
        if self.gathering_rise and self.gathering_window_s <= 0:
            raise ValueError(f"zone {self.id!r}: gathering_rise needs gathering_window_s > 0")

    @property
    def loitering(self) -> bool:
        """Loitering is reported in a restricted zone, or wherever loiter_after_s is set."""
        return self.restricted or self.loiter_after_s > 0


@dataclass(frozen=True)
class LineConfig:
    id: str = _help("Line id, used as the rule id in events.")
    points: tuple[Point, Point] = _help("Two points [a, b] in normalized coordinates.")
    classes: tuple[str, ...] = _help("Classes this line counts.", default_factory=lambda: ("person",))
    anchor: Literal["bottom_centre", "centre"] = _help("Point of the box tested.", "bottom_centre")
    hysteresis: float = _help("Distance from the line a track must reach to count.", 0.02)
    min_displacement: float = _help("Minimum travel across the line to count.", 0.05)
    confirm_frames: int = _help(
        "Observations a track must stay on the new side before the crossing counts.", 2
    )

    def __post_init__(self) -> None:
        check_id(self.id, "lines.id")
        _check_points(self.points, f"line {self.id!r}", 2)
        (ax, ay), (bx, by) = self.points
        if (ax - bx) ** 2 + (ay - by) ** 2 < 1e-8:
            raise ValueError(f"line {self.id!r}: its two points are the same")
        if self.hysteresis < 0 or self.min_displacement < 0:
            raise ValueError(f"line {self.id!r}: hysteresis and min_displacement must be >= 0")
        if self.confirm_frames < 1:
            raise ValueError(f"line {self.id!r}: confirm_frames must be >= 1")


@dataclass(frozen=True)
class ClassLimits:
    label: str = _help("Class these limits apply to (a label of the model).")
    min_area: float = _help("Smallest box kept, as a fraction of the picture's area.", 0.0)
    max_area: float = _help("Largest box kept, as a fraction of the picture's area (0: no limit).", 0.0)
    min_aspect: float = _help(
        "Smallest width / height of the box in normalized units (fractions of the picture's width and "
        "height; on a 4:3 picture a box 1.33 times as wide as tall in pixels is 1.0).", 0.0
    )
    max_aspect: float = _help("Largest width / height of the box, normalized as min_aspect (0: no limit).", 0.0)

    def __post_init__(self) -> None:
        if not self.label:
            raise ValueError("tracker.limits: label is empty")
        for name in ("min_area", "max_area"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"tracker.limits {self.label!r}: {name} must be between 0 and 1")
        if self.min_aspect < 0 or self.max_aspect < 0:
            raise ValueError(f"tracker.limits {self.label!r}: min_aspect and max_aspect must be >= 0")
        if self.max_area and self.max_area < self.min_area:
            raise ValueError(f"tracker.limits {self.label!r}: max_area is below min_area")
        if self.max_aspect and self.max_aspect < self.min_aspect:
            raise ValueError(f"tracker.limits {self.label!r}: max_aspect is below min_aspect")


def _default_limits() -> tuple[ClassLimits, ...]:
    # A person box under 0.15 % of the picture (on 1280x720 about 23 x 60 pixels; a person under a
    # twelfth of the picture's height) is below what a 300-416 pixel detector input resolves: at that
    # size it finds texture as often as people. One over 60 % is the detector calling the whole scene
    # a person; a person box more than twice as wide as tall (normalized) is a bench or a shadow.
    return (ClassLimits("person", min_area=0.0015, max_area=0.6, min_aspect=0.0, max_aspect=2.0),)


@dataclass(frozen=True)
class TrackerConfig:
    high_score: float = _help("Detections scoring at least this take part in the first matching stage.", 0.5)
    low_score: float = _help("Detections between this and high_score only extend existing tracks.", 0.1)
    new_track_score: float = _help("An unmatched detection starts a track when scoring at least this.", 0.5)
    match_iou: float = _help("Least IoU to match a confirmed track with a high-score detection.", 0.2)
    low_match_iou: float = _help("Least IoU to match a track with a low-score detection.", 0.5)
    tentative_match_iou: float = _help("Least IoU to match a tentative track.", 0.5)
    min_hits: int = _help("Consecutive matches before a track is confirmed (rules see only those).", 3)
    max_lost_s: float = _help("Seconds a lost track is kept for re-identification before it ends.", 1.0)
    ref_dt_s: float = _help("Time step the motion model's noise is tuned for (seconds).", 1.0 / 15.0)
    lost_buffer: float = _help("Lost tracks also match their last seen box grown by this on every side (C-BIoU).", 0.3)
    birth_max_iou: float = _help("No new track where a detection overlaps a live track this much (1: off).", 0.4)
    min_height_ratio: float = _help(
        "Never match a track with a detection whose height ratio is below this (0: off).", 0.5)
    confirm_score: float = _help(
        "A track is confirmed (and seen by the rules) only while the median of its last score_window "
        "detection scores is at least this: one high score among low ones is not a person (0: off).", 0.6
    )
    score_window: int = _help("How many recent detection scores confirm_score takes the median of.", 10)
    limits: tuple[ClassLimits, ...] = _help(
        "Per-class box limits ([[tracker.limits]] label, min_area, max_area, min_aspect, max_aspect): "
        "a detection outside them takes no part in tracking. Classes not listed are not limited.",
        default_factory=_default_limits,
    )

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_score <= self.high_score <= 1.0:
            raise ValueError("tracker: need 0 <= low_score <= high_score <= 1")
        if self.min_hits < 1:
            raise ValueError("tracker.min_hits must be >= 1")
        if self.max_lost_s < 0 or self.ref_dt_s <= 0:
            raise ValueError("tracker.max_lost_s must be >= 0 and ref_dt_s > 0")
        if self.score_window < 1:
            raise ValueError("tracker.score_window must be >= 1")
        labels = [lim.label for lim in self.limits]
        if len(set(labels)) != len(labels):
            raise ValueError("tracker.limits: a label is listed twice")
        for name in ("match_iou", "low_match_iou", "tentative_match_iou", "new_track_score", "confirm_score"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"tracker.{name} must be between 0 and 1")


@dataclass(frozen=True)
class PrivacyConfig:
    min_count_k: int = _help("Suppress periodic aggregate counts below k (0: off).", 0)
    grid: int = _help("Coarse grid cells per side for positions (0: no positions leave).", 0)
    masks: tuple[tuple[Point, ...], ...] = _help(
        "Polygons blanked before inference (normalized coordinates).", default_factory=tuple
    )
    time_precision_s: int = _help(
        "Round the timestamp (ts_ms) of per-person events (line crossings, loitering, unattended"
        " objects) down to this many whole seconds (0: milliseconds).", 0
    )

    def __post_init__(self) -> None:
        # what may leave (positions, small counts) and what is blanked before inference
        if self.min_count_k < 0:
            raise ValueError("privacy.min_count_k must be >= 0 (0: off)")
        if not 0 <= self.grid <= 64:
            raise ValueError("privacy.grid must be between 0 (no positions leave) and 64 cells per side")
        for i, polygon in enumerate(self.masks):
            _check_points(polygon, f"privacy.masks[{i}]", 3)
            _check_polygon(polygon, f"privacy.masks[{i}]")
        if not 0 <= self.time_precision_s <= 86400:
            raise ValueError("privacy.time_precision_s must be between 0 (milliseconds) and 86400 (a day)")


@dataclass(frozen=True)
class OutboxConfig:
    max_rows: int = _help("Most rows the outbox holds before the drop policy applies.", 100_000)
    max_bytes: int = _help("Most envelope bytes the outbox holds.", 256 * 1024 * 1024)
    ack: Literal["ingest", "broker"] = _help(
        "When a row may leave: on the ingest's signed ack, or on the broker's PUBACK.", "broker"
    )
    ingest_keys: str = _help(
        "ack = ingest: JSON file of the ingest's public key record(s) {keyid, public_key} trusted for acks.", ""
    )
    resend_s: float = _help(
        "ack = ingest: re-send rows still unacknowledged after this many seconds without ack progress.", 30.0
    )
    commit_interval_s: float = _help(
        "Group commit: events wait in memory up to this many seconds and are written together (0: each "
        "event is durable at once). Fewer SD-card writes; a power cut loses at most this window, "
        "reported as unclean_stops and not_running coverage.", 0.0
    )

    def __post_init__(self) -> None:
        if self.max_rows < 0 or self.max_bytes < 0:
            raise ValueError("outbox.max_rows and outbox.max_bytes must be >= 0 (0: unbounded)")
        if not 0 <= self.commit_interval_s <= 60:
            raise ValueError("outbox.commit_interval_s must be between 0 (every event durable at once) and 60")
        if self.resend_s <= 0:
            raise ValueError("outbox.resend_s must be > 0")


def _is_ipv6(host: str) -> bool:
    import ipaddress

    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
    except ValueError:
        return False


@dataclass(frozen=True)
class MqttConfig:
    host: str = _help("Broker host name.", "127.0.0.1")
    port: int = _help("Broker port (8883 for TLS).", 1883)
    topic_prefix: str = _help("Topic prefix.", DEFAULT_PREFIX)
    tls: bool = _help("Use TLS.", False)
    ca_file: str = _help("CA certificate (PEM) that signed the broker's certificate.", "")
    cert_file: str = _help("Client certificate (PEM) for mutual TLS.", "")
    key_file: str = _help("Client private key (PEM) for mutual TLS.", "")
    credentials_file: str = _help("File holding the MQTT password (the username is the device id).", "")
    keepalive_s: int = _help("MQTT keep-alive.", 30)
    max_inflight: int = _help(
        "Most QoS 1 publishes awaiting PUBACK (also capped by the broker's receive maximum).", 1000)
    backoff_min_s: float = _help("First reconnect delay; doubles per failure, with jitter.", 0.5)
    backoff_max_s: float = _help("Longest reconnect delay.", 60.0)
    connect_timeout_s: float = _help("Give up one connection attempt after this many seconds.", 10.0)

    def __post_init__(self) -> None:
        if not self.host.strip():
            raise ValueError("mqtt.host is empty; give the broker's host name or address")
        if "://" in self.host or "/" in self.host or (":" in self.host and not _is_ipv6(self.host)):
            raise ValueError(
                f"mqtt.host {self.host!r} must be a host name or address only: put the port in mqtt.port and "
                f"use tls = true for mqtts (e.g. host = \"broker.example.net\", port = 8883)")
        if not 0 < self.port < 65536:
            raise ValueError(f"mqtt.port {self.port} is not a TCP port")
        if self.keepalive_s < 1:
            raise ValueError("mqtt.keepalive_s must be >= 1")
        if self.max_inflight < 1:
            raise ValueError("mqtt.max_inflight must be >= 1")
        if not 0 < self.backoff_min_s <= self.backoff_max_s:
            raise ValueError("mqtt.backoff_min_s must be > 0 and <= mqtt.backoff_max_s")
        if self.tls and bool(self.cert_file) != bool(self.key_file):
            raise ValueError("mqtt.cert_file and mqtt.key_file go together (mutual TLS)")


@dataclass(frozen=True)
class HealthConfig:
    heartbeat_s: float = _help("Seconds between heartbeat events.", 60.0)
    min_fps: float = _help(
        "Frames per second below which the camera counts as blind (coverage reason low_fps; doctor warns).", 1.0
    )

    dark_level: float = _help(
        "Mean frame level (0-255) below which the scene counts as too dark (coverage reason covered).", 16.0
    )
    flat_contrast: float = _help(
        "Frame level spread (standard deviation, 0-255) below which the lens counts as covered.", 4.0
    )

    def __post_init__(self) -> None:
        if self.dark_level < 0 or self.flat_contrast < 0:
            raise ValueError("health.dark_level and health.flat_contrast must be >= 0 (0: off)")
        if self.heartbeat_s <= 0:
            raise ValueError("health.heartbeat_s must be > 0")
        if self.min_fps < 0:
            raise ValueError("health.min_fps must be >= 0 (0: no minimum)")


@dataclass(frozen=True)
class HomeAssistantConfig:
    enabled: bool = _help("Publish Home Assistant MQTT discovery and a state document (needs [mqtt]).", False)
    discovery_prefix: str = _help("Home Assistant's discovery prefix.", "homeassistant")

    def __post_init__(self) -> None:
        parts = self.discovery_prefix.split("/")
        if not all(parts) or any(set(p) & set("+#") for p in parts) or " " in self.discovery_prefix:
            raise ValueError(f"homeassistant.discovery_prefix {self.discovery_prefix!r} must be a plain topic "
                             f"prefix (no '+', '#', spaces or empty levels)")


@dataclass(frozen=True)
class RemoteConfig:
    operator_keys: str = _help(
        "JSON file of the operator public key record(s) {keyid, public_key} trusted to sign configuration "
        "changes on the cmd topic (empty: remote changes are off). Only this file, on the device, sets it.", ""
    )
    clock: Literal["system", "trusted"] = _help(
        "Whether the wall clock may judge a change's expiry: system (only when the kernel says it is "
        "synchronised, else changes are refused as 'time-unverified'), or trusted (a clock the kernel "
        "does not know about keeps it right: an RTC, GPS).", "system"
    )


@dataclass(frozen=True)
class Config:
    device: DeviceConfig = field(default_factory=DeviceConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    zones: tuple[ZoneConfig, ...] = ()
    lines: tuple[LineConfig, ...] = ()
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    mqtt: MqttConfig | None = None
    health: HealthConfig = field(default_factory=HealthConfig)
    homeassistant: HomeAssistantConfig = field(default_factory=HomeAssistantConfig)
    remote: RemoteConfig = field(default_factory=RemoteConfig)

    @property
    def state_dir(self) -> Path:
        return Path(self.device.state_dir or default_state_dir()).expanduser()

    @property
    def model_dir(self) -> Path:
        if self.detector.model_dir:
            return Path(self.detector.model_dir).expanduser()
        return self.state_dir / "models"


# ---------------------------------------------------------------- loading


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    if origin in (tuple, list):
        return "a list"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if value is None:
            return None
        return _convert(value, inner[0], where)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where} = {value!r}: must be {_type_name(tp)}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {type(value).__name__}")
        return _build(typing.cast(type, tp), value, where)
    if origin is tuple:
        if isinstance(value, dict) and where in ("zones", "lines"):
            raise ConfigError(f"[{where}] must be written [[{where}]] (double brackets: one table per "
                              f"{where[:-1]}, and a list of them)")
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where} must have {len(args)} items, got {len(value)}")
        return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} = {value!r}: must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} = {value!r}: must be a whole number")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} = {value!r}: must be a number")
        if not math.isfinite(value):  # TOML allows nan and inf; no setting here means either
            raise ConfigError(f"{where} = {value!r}: must be a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} = {value!r}: must be a string")
        return value
    raise ConfigError(f"{where}: unsupported type {tp!r}")  # a bug, not a user error


def _build(cls: type, table: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(names)}"
            full = f"{where}.{key}" if where else key
            raise ConfigError(f"unknown config key {full!r}{hint}")
        kwargs[key] = _convert(value, hints[key], f"{where}.{key}" if where else key)
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where or 'config'}: missing required key {missing[0]!r}")
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}" if where else str(exc)) from None


# Sections of the same file that another program reads and checks: [ingest] is the central
# ingest's (agent.central.config). The device only checks that each is a table.
FOREIGN_SECTIONS = ("ingest",)


def section(cls: type, table: dict[str, Any], where: str) -> Any:
    """Build the frozen dataclass cls from a TOML table named `where`, with the loader's one-line errors."""
    value = table.get(where, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table, got {type(value).__name__}")
    return _build(cls, value, where)


def parse(table: dict[str, Any]) -> Config:
    """Build a Config from a parsed TOML table."""
    own = {k: v for k, v in table.items() if k not in FOREIGN_SECTIONS}
    for name in FOREIGN_SECTIONS:
        if name in table and not isinstance(table[name], dict):
            raise ConfigError(f"{name} must be a table, got {type(table[name]).__name__}")
    cfg: Config = _build(Config, own, "")
    check_unique_ids(cfg)
    return cfg


def check_unique_ids(cfg: Config) -> None:
    """Zone and line ids name the rules in events: each is used once."""
    ids = [z.id for z in cfg.zones] + [ln.id for ln in cfg.lines]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"zone/line id {dupes[0]!r} is used twice; ids must be unique")


def load(path: str | Path | None) -> Config:
    """Read a TOML config file; None gives the embedded defaults."""
    return parse(load_table(path))


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Table `over` laid on `base`: sub-tables merged key by key, any other value replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_table(path: str | Path | None) -> dict[str, Any]:
    """The parsed TOML table of a config file, not yet checked; None gives an empty table."""
    if path is None:
        return {}
    return read_toml(path)


def read_toml(path: str | Path) -> dict[str, Any]:
    """The parsed TOML table of a config file; every way it cannot be read is one ConfigError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(p)!r} not found") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {str(p)!r}: {exc.__class__.__name__}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(p)!r} is not valid TOML: {exc}") from None


def replace(cfg: Config, **sections: Any) -> Config:
    """A copy of cfg with some sections' fields replaced: replace(cfg, source={"path": "x"})."""
    changes: dict[str, Any] = {}
    for name, values in sections.items():
        current = getattr(cfg, name)
        if current is None:
            current = typing.get_args(typing.get_type_hints(Config)[name])[0]()
        try:
            changes[name] = dataclasses.replace(current, **values)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return dataclasses.replace(cfg, **changes)
