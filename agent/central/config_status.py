"""`edge-agent config status`: what each device runs, by remote config version and manifest hash."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agent.central.store.base import Store


@dataclass
class DeviceConfig:
    device: str
    site: str
    version: int = 0  # config_version of the device's latest config result
    last_result: str = ""  # reason of the latest config result (applied, or why refused)
    last_result_version: int = 0
    manifest: str = ""  # the manifest hash its latest event cites
    manifest_stored: str = ""  # the latest privacy manifest it published (retained)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def status(store: Store) -> list[DeviceConfig]:
    """One entry per device the ingest has heard from, from the events and manifests it stored."""
    out: dict[str, DeviceConfig] = {}
    for device, site in store._exec("SELECT device, site FROM devices ORDER BY device").fetchall():
        out[device] = DeviceConfig(device, site)
    rows = store._exec(
        "SELECT device, site, body FROM events WHERE type = 'config' ORDER BY device, seq"
    ).fetchall()
    for device, site, body in rows:
        d = out.setdefault(device, DeviceConfig(device, site))
        event = json.loads(body)
        values = event.get("values", {})
        d.version = int(values.get("config_version", 0))
        d.last_result = str(event.get("reason", ""))
        d.last_result_version = int(values.get("version", 0))
    latest = store._exec(
        "SELECT e.device, e.site, e.body FROM events e"
        " WHERE e.seq = (SELECT MAX(seq) FROM events WHERE device = e.device)"
    ).fetchall()
    for device, site, body in latest:
        out.setdefault(device, DeviceConfig(device, site)).manifest = str(
            json.loads(body).get("manifest", "")
        )
    for device, site, sha in store._exec(
        "SELECT device, site, sha256 FROM manifests ORDER BY received_ms"
    ).fetchall():
        out.setdefault(device, DeviceConfig(device, site)).manifest_stored = str(sha)
    return [out[k] for k in sorted(out)]


def lines(entries: list[DeviceConfig]) -> list[str]:
    if not entries:
        return ["no device has reported yet"]
    out = []
    for d in entries:
        result = (
            f"last result {d.last_result} (version {d.last_result_version})"
            if d.last_result
            else "no change yet"
        )
        manifest = d.manifest[:16] or "-"
        stored = d.manifest_stored[:16] or "-"
        note = (
            ""
            if not d.manifest or not d.manifest_stored or d.manifest == d.manifest_stored
            else " (differ)"
        )
        out.append(
            f"{d.site}/{d.device}: config version {d.version}; {result}; "
            f"events cite manifest {manifest}; "
            f"latest manifest published {stored}{note}"
        )
    return out
