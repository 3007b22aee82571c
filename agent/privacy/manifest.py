"""The privacy manifest: a signed, machine-checkable inventory of everything that can leave.

The document is built from the config alone (no clock, no randomness), so the same config and
model always give the same bytes and the same SHA-256, which every event carries in `manifest`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from agent.privacy import egress
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
    "reason": "alarm reason code",
    "values": "integer measurements (see value_fields)",
    "model": "model id",
    "manifest": "SHA-256 of this manifest's body",
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
    "blind_overload_s": "seconds of a count interval when frames were skipped because inference fell behind, whole seconds",
    "blind_not_running_s": "seconds of a count interval when the agent was not running (between boots), whole seconds",
    "blind_setup_view_s": "seconds of a count interval while the installer's setup view was open, whole seconds",
    "duration_s": "how long the installer's setup view was open, whole seconds",
    "config_changed": "1 when the setup view saved a changed config, else 0",
}


def masks_hash(masks: tuple[tuple[tuple[float, float], ...], ...]) -> str:
    """SHA-256 of the mask polygons as canonical JSON in integer millionths of the frame."""
    polys = [[[round(x * 1_000_000), round(y * 1_000_000)] for x, y in poly] for poly in masks]
    return hashlib.sha256(canonical_json(polys)).hexdigest()


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
    prefix = cfg.mqtt.topic_prefix if cfg.mqtt else topics.DEFAULT_PREFIX
    where = (prefix, cfg.device.site, cfg.device.id)
    rules = [{"id": z.id, "kind": "zone", "classes": sorted(z.classes)} for z in cfg.zones]
    rules += [{"id": ln.id, "kind": "line", "classes": sorted(ln.classes)} for ln in cfg.lines]
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
        "classes": sorted(cfg.detector.classes),
        "model": {"id": model_id or cfg.detector.model, "sha256": model_sha256},
        "rules": sorted(rules, key=lambda r: r["id"]),
        "masks": {"count": len(cfg.privacy.masks), "sha256": masks_hash(cfg.privacy.masks)},
        "publishes": cfg.mqtt is not None,
        "topics": [topics.all_events_filter(*where), topics.health_topic(*where), topics.status_topic(*where),
                   topics.manifest_topic(*where), topics.birth_topic(*where)],
        "ack": cfg.outbox.ack,
        "retention": {
            "frames": "memory only, one frame at a time; never written to disk",
            "outbox": f"until acknowledged ({cfg.outbox.ack}); at most {cfg.outbox.max_rows} rows"
            f" and {cfg.outbox.max_bytes} bytes, drops counted in the heartbeat",
        },
        "egress_guard": {"max_envelope_bytes": topics.MAX_EVENT_BYTES, "refuses": list(IMAGE_SIGNATURES)},
    }
    if cfg.homeassistant.enabled:  # opt-in: listed only when on, so a device without it is unchanged
        from agent.homeassistant import manifest_entry

        ha = manifest_entry(cfg)
        doc["homeassistant"] = ha
        doc["topics"] += [ha["discovery_topics"], ha["state_topic"]]
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
        "rules: " + ", ".join(f"{r['id']} ({r['kind']})" for r in document["rules"]),
        "positions: " + (
            f"coarse grid cells, {document['positions']['grid']} per side"
            if isinstance(document["positions"], dict) else "never leave"
        ),
        "counts below k suppressed: " + (f"k = {document['min_count_k']}" if document["min_count_k"] else "off"),
        f"privacy masks: {document['masks']['count']} polygon(s), sha256 {document['masks']['sha256']}",
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
        f"egress guard: envelopes over {guard['max_envelope_bytes']} bytes, outside the schema or carrying"
        f" {'/'.join(guard['refuses'])} data (raw or base64) are refused and raise an alarm"
    )
    return out
