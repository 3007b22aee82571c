"""The privacy manifest: a signed, machine-checkable inventory of everything that can leave.

The document is built from the config alone (no clock, no randomness), so the same config and
model always give the same bytes and the same SHA-256, which every event carries in `manifest`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from agent.privacy import egress
from agent.privacy.anonymizer import PER_OBJECT_TYPES
from agent.config import Config
from agent.protocol.body import EVENT_TYPES, SCHEMA_VERSION
from agent.protocol import topics
from agent.protocol.canonical import canonical_json
from agent.protocol.schema import schema

MANIFEST_VERSION = 1
# What the egress guard enforces, stated from the guard's own table so the two cannot drift:
# the formats it refuses (raw or base64; data: URIs too) and its size cap.
IMAGE_SIGNATURES = tuple(dict.fromkeys(
    name.removesuffix("-base64") for name, _ in egress.IMAGE_SIGNATURES if name != "data-uri"
))

# How precise each field that can leave is. A schema field missing here fails the tests, so a
# new field cannot leave without a line a reviewer can read.
FIELD_PRECISION: dict[str, str] = {
    "v": "schema version (constant)",
    "id": "random 128-bit event id, fresh for every event; links nothing across events",
    "device": "device id (configured)",
    "site": "site id (configured)",
    "seq": "per-device event counter, +1 per event",
    "boot": "per-device start counter",
    "ts_ms": "device wall clock, integer milliseconds (advisory)",
    "type": "event type (one of a fixed list)",
    "rule": "configured zone or line id",
    "label": "object class from the class allow-list",
    "direction": "'in' or 'out' across a configured line",
    "cell": "coarse grid cell of the frame (row * grid + column)",
    "reason": "alarm reason code; on a config result, applied or the refusal reason",
    "values": "integer measurements (see value_fields)",
    "model": "model id",
    "manifest": "SHA-256 of this manifest's body",
    "source": "'replay' on events made from recorded footage by `edge-agent replay`; absent on live events",
}
VALUE_PRECISION: dict[str, str] = {
    "count": "objects, integer (k-suppressed in periodic aggregates when min_count_k > 0)",
    "entries": "line or zone entries, integer",
    "exits": "line or zone exits, integer",
    "interval_s": "aggregation interval, whole seconds",
    "rise": "count increase within window_s, integer",
    "window_s": "window, whole seconds",
    "dwell_s_min": "dwell-time bucket lower bound, whole seconds",
    "dwell_s_max": "dwell-time bucket upper bound, whole seconds (-1: open)",
    "stationary_s": "time an object stood still, whole seconds",
    "suppressed": "1 when counts below k were reported as 0",
    "uptime_s": "agent uptime, whole seconds",
    "frames": "frames processed",
    "fps_milli": "frames per second x 1000",
    "inference_us": "inference time, microseconds",
    "dropped_events": "events dropped by the outbox policy",
    "dropped_seq_first": "first dropped seq",
    "dropped_seq_last": "last dropped seq",
    "outbox_rows": "rows waiting",
    "outbox_bytes": "bytes waiting",
    "outbox_oldest_s": "age of the oldest row, whole seconds",
    "camera_errors": "camera errors counted",
    "egress_refused": "payloads refused by the egress guard",
    "lost_disk_full": "events lost for lack of disk space since boot",
    "unclean_stops": "runs that ended without an orderly stop (their last commit window may be lost)",
    "sender_restarts": "sender thread recoveries since boot",
    "cpu_temp_mc": "CPU temperature, millidegrees Celsius",
    "disk_free_mb": "free disk, MB",
    "accelerator": "1 when the Edge TPU runs inference",
    "inference_p50_us": "median detector time since the last heartbeat, microseconds",
    "inference_p95_us": "95th percentile detector time since the last heartbeat, microseconds",
    "camera_state": "0 streaming, 1 lost, 2 covered or too dark, 3 below the minimum frame rate",
    "throttled_now": "firmware under-voltage/throttling bits now (4 bits)",
    "throttled_since_boot": "the same 4 bits since boot",
    "rss_kb": "agent resident memory, KiB",
    "clock_synced": "1 when the system clock is synchronised",
    "agent_version": "agent version, major * 10000 + minor * 100 + patch",
    "observed_s": "seconds of a count interval the camera was looking, whole seconds",
    "blind_camera_lost_s": "seconds of a count interval when the camera was lost, whole seconds",
    "blind_covered_s": "seconds of a count interval when the lens was covered or the scene too dark, whole seconds",
    "blind_low_fps_s": "seconds of a count interval when frames came slower than health.min_fps, whole seconds",
    "blind_overload_s": "seconds of a count interval when frames were skipped because inference fell behind, "
                        "whole seconds",
    "blind_not_running_s": "seconds of a count interval when the agent was not running (between boots), whole seconds",
    "version": "version of the signed configuration change a config result is about",
    "config_version": "version of the remote configuration in force",
    "blind_setup_view_s": "seconds of a count interval while the installer's setup view was open, whole seconds",
    "duration_s": "how long the installer's setup view was open, whole seconds",
    "config_changed": "1 when the setup view saved a changed config, else 0",
}


def masks_hash(masks: tuple[tuple[tuple[float, float], ...], ...]) -> str:
    """SHA-256 of the mask polygons as canonical JSON in integer millionths of the frame."""
    polys = [[[round(x * 1_000_000), round(y * 1_000_000)] for x, y in poly] for poly in masks]
    return hashlib.sha256(canonical_json(polys)).hexdigest()


MILLIONTHS = 1_000_000
# How numbers are written in the manifest (every number an integer, like the events'): the
# configured values, scaled, so a reviewer reads what was configured and two configs that watch
# different places or apply different thresholds never share a hash.
UNITS = {
    "coordinates": "integer millionths of the frame's width (x) and height (y), origin top-left",
    "*_ms": "durations, integer milliseconds (the config's *_s keys x 1000)",
    "other fractions": "hysteresis, radius, tolerance, displacement: integer millionths of the frame",
}


def _e6(value: float) -> int:
    return round(value * MILLIONTHS)


def _points(points: tuple[tuple[float, float], ...]) -> list[list[int]]:
    return [[_e6(x), _e6(y)] for x, y in points]


def rule_entry(rule: Any, kind: str) -> dict[str, Any]:
    """A zone's or line's every configured parameter, as integers (see UNITS)."""
    entry: dict[str, Any] = {"kind": kind}
    for f in dataclasses.fields(rule):
        value = getattr(rule, f.name)
        if f.name in ("polygon", "points"):
            entry[f.name] = _points(value)
        elif f.name.endswith("classes"):
            entry[f.name] = sorted(value)
        elif isinstance(value, float) and f.name.endswith("_s"):
            entry[f.name.removesuffix("_s") + "_ms"] = round(value * 1000)
        elif isinstance(value, float):
            entry[f.name] = _e6(value)
        else:
            entry[f.name] = value
    return entry


def schema_hash() -> str:
    """SHA-256 of the event schema as canonical JSON (independent of the file's whitespace)."""
    return hashlib.sha256(manifest_body(schema())).hexdigest()


def build(cfg: Config, model_sha256: str, model_id: str | None = None) -> dict[str, Any]:
    """The privacy manifest document for a config and the model file that runs (id and SHA-256;
    the id defaults to the configured one, and differs after a fall-back to the CPU twin)."""
    props = schema()["properties"]
    fields = {k: FIELD_PRECISION[k] for k in sorted(props)}
    if cfg.privacy.grid <= 0:
        fields.pop("cell")  # positions cannot leave at all
    else:
        g = cfg.privacy.grid
        fields["cell"] = f"{FIELD_PRECISION['cell']}, {g} x {g} cells"
    precision_s = cfg.privacy.time_precision_s
    if precision_s:
        fields["ts_ms"] = (f"{FIELD_PRECISION['ts_ms']}; rounded down to {precision_s} s on "
                           f"{', '.join(PER_OBJECT_TYPES)}")
    prefix = cfg.mqtt.topic_prefix if cfg.mqtt else topics.DEFAULT_PREFIX
    where = (prefix, cfg.device.site, cfg.device.id)
    rules = [rule_entry(z, "zone") for z in cfg.zones] + [rule_entry(ln, "line") for ln in cfg.lines]
    if not rules:
        rules = [{"id": "scene", "kind": "scene", "classes": sorted(cfg.detector.classes)}]
    doc = {
        "v": MANIFEST_VERSION,
        "device": cfg.device.id,
        "site": cfg.device.site,
        "raw_video_egress": False,
        "images_on_disk": False,
        "event_schema": {"version": SCHEMA_VERSION, "sha256": schema_hash()},
        "event_types": list(EVENT_TYPES),
        "fields": fields,
        "value_fields": {k: VALUE_PRECISION[k] for k in sorted(props["values"]["properties"])},
        "positions": {"grid": cfg.privacy.grid} if cfg.privacy.grid > 0 else "none",
        "min_count_k": cfg.privacy.min_count_k,
        # ts_ms of per-person events rounded down to this many ms (1: as measured)
        "time_precision": {"per_object_ms": max(1, precision_s * 1000), "types": list(PER_OBJECT_TYPES)},
        "classes": sorted(cfg.detector.classes),
        "model": {"id": model_id or cfg.detector.model, "sha256": model_sha256},
        "rules": sorted(rules, key=lambda r: r["id"]),
        "masks": {"count": len(cfg.privacy.masks), "sha256": masks_hash(cfg.privacy.masks),
                  "polygons": [_points(poly) for poly in cfg.privacy.masks]},
        "units": UNITS,
        "publishes": cfg.mqtt is not None,
        "topics": [topics.all_events_filter(*where), topics.status_topic(*where),
                   topics.manifest_topic(*where), topics.birth_topic(*where)],
        "ack": cfg.outbox.ack,
        "retention": {
            "frames": "memory only, one frame at a time; never written to disk",
            "outbox": f"until acknowledged ({cfg.outbox.ack}); at most {cfg.outbox.max_rows} rows"
            f" and {cfg.outbox.max_bytes} bytes, drops counted in the heartbeat",
        },
        # each envelope's own cap: an event's, and this manifest's (it lists zones, lines and masks)
        "egress_guard": {"max_event_envelope_bytes": topics.MAX_EVENT_BYTES,
                         "max_manifest_envelope_bytes": topics.MAX_MANIFEST_BYTES,
                         "refuses": list(IMAGE_SIGNATURES)},
    }
    if cfg.homeassistant.enabled:  # opt-in: listed only when on, so a device without it is unchanged
        from agent.device.homeassistant import manifest_entry

        ha = manifest_entry(cfg)
        doc["homeassistant"] = ha
        listed = doc["topics"]
        assert isinstance(listed, list)
        doc["topics"] = [*listed, ha["discovery_topics"], ha["state_topic"]]
    return doc


def manifest_body(document: dict[str, Any]) -> bytes:
    """Canonical JSON bytes: sorted keys, no spaces, ASCII; these bytes are signed and hashed."""
    return canonical_json(document)


def manifest_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def lines(document: dict[str, Any], sha256: str) -> list[str]:
    """The manifest for a person: what leaves, how precise, where to and for how long."""
    out = [
        f"privacy manifest v{document['v']} for device {document['device']} at site {document['site']}",
        f"sha256 of the manifest body (in every event's 'manifest' field): {sha256}",
        f"raw video leaves the device: {'yes' if document['raw_video_egress'] else 'no'}",
        f"images written to disk: {'yes' if document['images_on_disk'] else 'no'}",
        f"publishes over MQTT: {'yes' if document['publishes'] else 'no (events stay in the local outbox)'}",
        "topics: " + ", ".join(document["topics"]),
        f"acknowledgement before a row leaves the outbox: {document['ack']}",
        f"model: {document['model']['id']} (sha256 {document['model']['sha256']})",
        "object classes that can be reported: " + (", ".join(document["classes"]) or "none"),
        "rules (coordinates in millionths of the frame, durations in ms):",
        *(f"  {r['id']} ({r['kind']}): " + ", ".join(f"{k} {v}" for k, v in sorted(r.items())
                                                    if k not in ("id", "kind")) for r in document["rules"]),
        "positions: " + (
            f"coarse grid cells, {document['positions']['grid']} per side"
            if isinstance(document["positions"], dict)
            else "no coordinates leave; an event names only the zone or line above it is about"
        ),
        "counts below k suppressed: " + (f"k = {document['min_count_k']}" if document["min_count_k"] else "off"),
        f"timestamps of {', '.join(document['time_precision']['types'])}: "
        + (f"rounded down to {document['time_precision']['per_object_ms']} ms"
           if document["time_precision"]["per_object_ms"] > 1 else "milliseconds"),
        f"privacy masks: {document['masks']['count']} polygon(s), sha256 {document['masks']['sha256']}",
        *(f"  mask {i + 1}: {poly}" for i, poly in enumerate(document["masks"]["polygons"])),
        f"event schema v{document['event_schema']['version']}, sha256 {document['event_schema']['sha256']}",
        "event types: " + ", ".join(document["event_types"]),
        "fields that can leave, and their precision:",
    ]
    out += [f"  {k}: {v}" for k, v in document["fields"].items()]
    out.append("integer values that can leave (inside 'values'):")
    out += [f"  {k}: {v}" for k, v in document["value_fields"].items()]
    out.append("retention:")
    out += [f"  {k}: {v}" for k, v in document["retention"].items()]
    guard = document["egress_guard"]
    out.append(
        f"egress guard: event envelopes over {guard['max_event_envelope_bytes']} bytes (this manifest's over"
        f" {guard['max_manifest_envelope_bytes']}), outside the schema or carrying"
        f" {'/'.join(guard['refuses'])} data (raw or base64) are refused and raise an alarm"
    )
    return out
