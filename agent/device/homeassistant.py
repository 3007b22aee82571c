"""Home Assistant MQTT discovery (opt-in): occupancy and counts per zone, health as diagnostics.

Off by default. When [homeassistant] enabled = true (with [mqtt]), the device publishes, retained
and at QoS 0: one discovery config per sensor on {discovery_prefix}/sensor/{device}/{key}/config,
and one state document of integers on {base}/ha, built only from the signed events that already
left (so k-suppression and the class allow-list apply). Availability is the device's status topic
('online' / the Last Will 'offline'). The configs are re-announced when Home Assistant's own birth
('online' on {discovery_prefix}/status) arrives. The privacy manifest lists these topics and the
state keys; `check_state` refuses any other key or a non-integer value.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.config import Config
from agent.protocol import topics
from agent.protocol.canonical import canonical_json
from agent.rules import scene_zone

HA_KIND = topics.HA  # {base}/ha: the state document
PUBLISH_EVERY_S = 1.0  # at most one state publish per second

# heartbeat value -> (name, device_class, unit, value template expression)
HEALTH: dict[str, tuple[str, str | None, str | None, str]] = {
    "fps_milli": ("frames per second", None, "fps", "value_json.fps_milli / 1000"),
    "inference_p95_us": ("inference p95", "duration", "ms", "value_json.inference_p95_us / 1000"),
    "cpu_temp_mc": ("SoC temperature", "temperature", "\u00b0C", "value_json.cpu_temp_mc / 1000"),
    "throttled_now": ("throttled bits", None, None, "value_json.throttled_now"),
    "camera_state": ("camera state", None, None, "value_json.camera_state"),
    "outbox_rows": ("outbox rows", None, None, "value_json.outbox_rows"),
    "disk_free_mb": ("disk free", "data_size", "MB", "value_json.disk_free_mb"),
    "rss_kb": ("memory", "data_size", "kB", "value_json.rss_kb"),
}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", text.lower())


@dataclass(frozen=True)
class Entity:
    key: str  # the state document's key
    name: str
    diagnostic: bool = False
    device_class: str | None = None
    unit: str | None = None
    state_class: str = "measurement"
    template: str = ""


def entities(cfg: Config) -> list[Entity]:
    """Every sensor the config makes: per zone and class occupancy (and entries/exits and coverage
    when the zone counts), per line and class crossings in and out, then the device's health."""
    out: list[Entity] = []
    zones = list(cfg.zones) or ([] if cfg.lines else [scene_zone(cfg.detector.classes)])
    for z in zones:
        for label in z.classes:
            base = f"{_slug(z.id)}_{_slug(label)}"
            out.append(Entity(f"{base}_occupancy", f"{z.id} {label} occupancy"))
            if z.count_every_s > 0:
                out.append(Entity(f"{base}_entries", f"{z.id} {label} entries per interval"))
                out.append(Entity(f"{base}_exits", f"{z.id} {label} exits per interval"))
        if z.count_every_s > 0:
            out.append(Entity(f"{_slug(z.id)}_coverage_pct", f"{z.id} coverage", True, None, "%"))
    for ln in cfg.lines:
        for label in ln.classes:
            for d in ("in", "out"):
                out.append(Entity(f"{_slug(ln.id)}_{_slug(label)}_{d}", f"{ln.id} {label} {d}",
                                  state_class="total_increasing"))
    for key, (name, dclass, unit, template) in HEALTH.items():
        out.append(Entity(key, name, True, dclass, unit, template=template))
    return out


def state_topic(cfg: Config) -> str:
    prefix = cfg.mqtt.topic_prefix if cfg.mqtt else topics.DEFAULT_PREFIX
    return topics.device_topic(prefix, cfg.device.site, cfg.device.id, HA_KIND)


def config_topic(cfg: Config, key: str) -> str:
    return f"{cfg.homeassistant.discovery_prefix}/sensor/{cfg.device.id}/{key}/config"


def manifest_entry(cfg: Config) -> dict[str, Any]:
    """What the privacy manifest says about discovery when it is on."""
    return {
        "discovery_topics": config_topic(cfg, "+"),
        "state_topic": state_topic(cfg),
        "state_keys": sorted(e.key for e in entities(cfg)),
        "subscribes": f"{cfg.homeassistant.discovery_prefix}/status",
    }


def discovery(cfg: Config, model_id: str, agent_version: str) -> list[tuple[str, bytes]]:
    """(topic, retained payload) of every discovery config."""
    prefix = cfg.mqtt.topic_prefix if cfg.mqtt else topics.DEFAULT_PREFIX
    status = topics.status_topic(prefix, cfg.device.site, cfg.device.id)
    device = {"identifiers": [f"edge-agent_{cfg.device.id}"], "name": cfg.device.id, "manufacturer": "edge-agent",
              "model": model_id, "sw_version": agent_version, "suggested_area": cfg.device.site}
    out = []
    for e in entities(cfg):
        doc: dict[str, Any] = {
            "name": e.name, "unique_id": f"edge-agent_{cfg.device.id}_{e.key}",
            "state_topic": state_topic(cfg),
            "value_template": "{{ " + (e.template or f"value_json.{e.key}") + " }}",
            "availability_topic": status, "payload_available": "online", "payload_not_available": "offline",
            "state_class": e.state_class, "device": device,
        }
        if e.diagnostic:
            doc["entity_category"] = "diagnostic"
        if e.device_class:
            doc["device_class"] = e.device_class
        if e.unit:
            doc["unit_of_measurement"] = e.unit
        out.append((config_topic(cfg, e.key), json.dumps(doc, sort_keys=True).encode("ascii")))
    return out


def check_state(body: bytes, keys: frozenset[str]) -> None:
    """ValueError unless body is a JSON object of declared keys with integer values."""
    problem = _state_problem(json.loads(body), keys)
    if problem:
        raise ValueError(problem)


def _state_problem(doc: object, keys: frozenset[str]) -> str:
    if not isinstance(doc, dict):
        return "the Home Assistant state must be a JSON object"
    for k, v in doc.items():
        if k not in keys:
            return f"state key {k!r} is not declared in the privacy manifest"
        if isinstance(v, bool) or not isinstance(v, int):
            return f"state value {k!r} must be an integer"
    return ""


class Discovery:
    """The device half: state from the signed events (emitter sink), publishing on the sender thread."""

    def __init__(self, cfg: Config, model_id: str, agent_version: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.configs = discovery(cfg, model_id, agent_version)
        self.state_topic = state_topic(cfg)
        self.status_topic = f"{cfg.homeassistant.discovery_prefix}/status"
        self.keys = frozenset(e.key for e in entities(cfg))
        self.state: dict[str, int] = {}
        self.clock = clock
        self._lock = threading.Lock()
        self._dirty = False
        self._announce = True
        self._last = -PUBLISH_EVERY_S

    # -- frame loop: the emitter's sink sees every stored envelope

    def observe(self, envelope: bytes) -> None:
        event = json.loads(base64.b64decode(json.loads(envelope)["payload"]))
        values: dict[str, int] = event.get("values", {})
        etype, rule, label = event["type"], _slug(event.get("rule", "")), _slug(event.get("label", ""))
        update: dict[str, int] = {}
        if etype == "occupancy":
            update[f"{rule}_{label}_occupancy"] = values.get("count", 0)
        elif etype == "count":
            update[f"{rule}_{label}_entries"] = values.get("entries", 0)
            update[f"{rule}_{label}_exits"] = values.get("exits", 0)
            if values.get("interval_s"):
                update[f"{rule}_coverage_pct"] = values.get("observed_s", values["interval_s"]) * 100 // values[
                    "interval_s"]
        elif etype == "line_crossing" and event.get("direction") in ("in", "out"):
            key = f"{rule}_{label}_{event['direction']}"
            update[key] = self.state.get(key, 0) + values.get("count", 1)
        elif etype == "heartbeat":
            update = {k: v for k, v in values.items() if k in HEALTH}
        update = {k: int(v) for k, v in update.items() if k in self.keys}
        if update:
            with self._lock:
                self.state.update(update)
                self._dirty = True

    # -- sender thread

    def on_message(self, topic: str, payload: bytes) -> bool:
        """True when the message was Home Assistant's birth (then everything is announced again)."""
        if topic != self.status_topic:
            return False
        if payload.strip() == b"online":
            self._announce = True
        return True

    def flush(self, publish: Callable[[str, bytes], None], force: bool = False) -> None:
        """Publish the configs when due (connect, HA birth), and the state when it changed."""
        if self._announce or force:
            self._announce = False
            for topic, body in self.configs:
                publish(topic, body)
            self._dirty = True
        now = self.clock()
        with self._lock:
            if not self._dirty or (now - self._last < PUBLISH_EVERY_S and not force):
                return
            body = canonical_json(dict(self.state))
            self._dirty = False
        self._last = now
        check_state(body, self.keys)
        publish(self.state_topic, body)

    def reconnected(self) -> None:
        self._announce = True
