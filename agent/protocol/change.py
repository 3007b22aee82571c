"""Signed configuration changes: the body's one shape, the allow- and deny-lists, key records.

A change is a DSSE envelope (CHANGE_PAYLOAD_TYPE) signed by an operator key whose body is

    {"v": 1, "target": {"site": S, "device": D}, "version": N, "base_version": M,
     "issued": T0, "expires": T1, "settings": {KEY: VALUE, ...}, "commands": [NAME, ...]}

target.device absent means every device of the site. version grows per device; base_version is the
version the change was written against (the device applies it only when that is what it runs).
issued and expires are Unix seconds. settings are whole values for dotted keys ("zones",
"health.heartbeat_s"); commands are run once the change is accepted. Both operator tooling and
the device parse with this module, so a change the tool signs is exactly what the device checks.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from agent.errors import SignatureError, UsageError
from agent.protocol.canonical import canonical_json
from agent.protocol.dsse import SigningKey, key_id, strict_json
from agent.protocol.jsonfile import read_json

CHANGE_PAYLOAD_TYPE = "application/vnd.edge-agent.config-change+json; version=1"
CHANGE_VERSION = 1
MAX_CHANGE_BYTES = 65536  # a change envelope larger than this is refused unread ("too-large")
MAX_VERSION = 2**53 - 1
COMMANDS = ("heartbeat", "announce", "restart")

# Settings an operator may change remotely, as dotted keys; each value is whole (a list replaces
# the list). Live: applied at a frame boundary without a restart.
ALLOWED = (
    "zones",  # zone polygons, classes (within detector.classes), thresholds, report intervals
    "lines",  # counting lines and their parameters
    "health.heartbeat_s",  # heartbeat period
    "log.level",  # log level of the agent (debug, info, warning, error)
)
LOG_LEVELS = ("debug", "info", "warning", "error")

# Settings no signature can change (also any key under them): what leaves, how precisely, who is
# trusted. They change only on the device, in its config file.
DENIED = (
    "privacy",  # masks, grid, min_count_k, time coarsening: all of [privacy]
    "privacy.masks",
    "privacy.grid",
    "privacy.min_count_k",
    "privacy.time_precision_s",
    "detector.classes",  # the class allow-list
    "detector",  # the model that runs is the manifest's business too
    "egress",  # the egress guard
    "egress_guard",
    "images",  # image opt-ins
    "privacy.images",
    "raw_video_egress",  # the manifest's promise
    "images_on_disk",
    "device",  # id, site, key, state folder
    "device.key",
    "enrolment",
    "keys",
    "mqtt",  # broker, credentials, TLS files
    "outbox.ingest_keys",  # whose acks delete rows
    "outbox",
    "provision",
    "remote",  # operator keys themselves, clock policy
    "remote.operator_keys",
)

# Refusal reasons (the result event's `reason`; "applied" when accepted)
APPLIED = "applied"
REASONS = (
    APPLIED,
    "unsigned",
    "malformed",
    "too-large",
    "unknown-payload-type",
    "unknown-key",
    "bad-signature",
    "wrong-target",
    "replayed",
    "stale-version",
    "base-mismatch",
    "time-unverified",
    "expired",
    "not-yet-valid",
    "denied-setting",
    "unknown-setting",
    "invalid-value",
    "state-unavailable",  # the device could not read or record its remote state (e.g. disk full)
)


class ChangeRefused(Exception):
    """A change the device does not apply: `reason` is in REASONS, `setting` the key at fault."""

    def __init__(self, reason: str, detail: str = "", setting: str = "") -> None:
        self.reason = reason
        self.setting = setting
        self.version = 0  # the change's version once its body was read (for the result event)
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True)
class Change:
    site: str
    device: str  # "" for every device of the site
    version: int
    base_version: int
    issued: int
    expires: int
    settings: Mapping[str, Any] = field(default_factory=dict)
    commands: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        target = {"site": self.site} | ({"device": self.device} if self.device else {})
        return {
            "v": CHANGE_VERSION,
            "target": target,
            "version": self.version,
            "base_version": self.base_version,
            "issued": self.issued,
            "expires": self.expires,
            "settings": dict(self.settings),
            "commands": list(self.commands),
        }

    def targets(self, site: str, device: str) -> bool:
        return self.site == site and self.device in ("", device)


def change_body(change: Change) -> bytes:
    """The bytes an operator signs: canonical JSON."""
    return canonical_json(change.to_json())


def sign(key: SigningKey, change: Change) -> bytes:
    """The change's envelope, checked first as the device will check it."""
    check_settings(change.settings)
    body = change_body(change)
    parse(body)
    return key.envelope(CHANGE_PAYLOAD_TYPE, body)


def _int(d: Mapping[str, Any], name: str, lo: int = 0) -> int:
    value = d.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= MAX_VERSION:
        raise ChangeRefused("malformed", f"{name} must be an integer from {lo} to 2^53-1")
    return value


def _id(value: object, what: str) -> str:
    ok = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not set(value) <= ok:
        raise ChangeRefused(
            "malformed", f"{what} must be an id of 1-64 letters, digits, '_', '.' or '-'"
        )
    return value


def parse(body: bytes) -> Change:
    """The change in a verified body, or ChangeRefused("malformed") naming what is wrong."""
    try:
        d = strict_json(body)
    except SignatureError as exc:
        raise ChangeRefused("malformed", str(exc)) from None
    if not isinstance(d, dict):
        raise ChangeRefused("malformed", "the body is not a JSON object")
    fields = {"v", "target", "version", "base_version", "issued", "expires", "settings", "commands"}
    extra = sorted(set(d) - fields)
    if extra:
        raise ChangeRefused("malformed", f"unexpected field {extra[0]!r}")
    missing = sorted(fields - set(d))
    if missing:
        raise ChangeRefused("malformed", f"missing field {missing[0]!r}")
    if d["v"] != CHANGE_VERSION or isinstance(d["v"], bool):
        raise ChangeRefused("malformed", f"v must be {CHANGE_VERSION}")
    target = d["target"]
    if (
        not isinstance(target, dict)
        or not set(target) <= {"site", "device"}
        or "site" not in target
    ):
        raise ChangeRefused("malformed", "target must be {site} or {site, device}")
    site = _id(target["site"], "target.site")
    device = _id(target["device"], "target.device") if "device" in target else ""
    version, base = _int(d, "version", 1), _int(d, "base_version")
    if base >= version:
        raise ChangeRefused("malformed", "base_version must be below version")
    issued, expires = _int(d, "issued"), _int(d, "expires")
    if expires <= issued:
        raise ChangeRefused("malformed", "expires must be after issued")
    settings, commands = d["settings"], d["commands"]
    if not isinstance(settings, dict):
        raise ChangeRefused("malformed", "settings must be an object")
    if not isinstance(commands, list) or not all(isinstance(c, str) for c in commands):
        raise ChangeRefused("malformed", "commands must be a list of names")
    unknown = [c for c in commands if c not in COMMANDS]
    if unknown:
        raise ChangeRefused(
            "malformed", f"unknown command {unknown[0][:32]!r}; known: {', '.join(COMMANDS)}"
        )
    if len(set(commands)) != len(commands):
        raise ChangeRefused("malformed", "a command is listed twice")
    if not settings and not commands:
        raise ChangeRefused("malformed", "neither settings nor commands")
    return Change(site, device, version, base, issued, expires, settings, tuple(commands))


def _under(key: str, entry: str) -> bool:
    return key == entry or key.startswith(entry + ".") or entry.startswith(key + ".")


def check_settings(settings: Mapping[str, Any]) -> None:
    """ChangeRefused unless every key is allow-listed; a deny-listed key (or a table holding one)
    is refused whatever else the change says. The deny-list is checked first and wins."""
    for key in sorted(settings):
        if any(_under(key, entry) for entry in DENIED):
            raise ChangeRefused("denied-setting", f"{key!r} changes only on the device", key[:64])
    for key in sorted(settings):
        if key not in ALLOWED:
            raise ChangeRefused(
                "unknown-setting",
                f"{key!r} cannot be set remotely; settable: {', '.join(ALLOWED)}",
                key[:64],
            )
    level = settings.get("log.level")
    if "log.level" in settings and level not in LOG_LEVELS:
        raise ChangeRefused(
            "invalid-value", f"log.level must be one of {', '.join(LOG_LEVELS)}", "log.level"
        )


def flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A TOML-shaped table -> dotted settings: {"health": {"heartbeat_s": 30}} ->
    {"health.heartbeat_s": 30}.
    Tables stop at an allow- or deny-listed key, so a denied table stays whole (and is refused)."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and full not in ALLOWED and full not in DENIED:
            out.update(flatten(value, full + "."))
        else:
            out[full] = value
    return out


def operator_keys(path: Path) -> dict[str, bytes]:
    """keyid -> raw key from a file of public key records: one {keyid, public_key} record (an
    enrolment record or a provisioning record will do), a list of them, or {"devices": [...]}."""
    data = read_json(path, "operator key file")
    if isinstance(data, dict) and "devices" in data:
        data = data["devices"]
    items = data if isinstance(data, list) else [data]
    keys: dict[str, bytes] = {}
    for i, item in enumerate(items, 1):
        where = f"operator key file {str(path)!r} record {i}"
        if not isinstance(item, dict) or not isinstance(item.get("public_key"), str):
            raise UsageError(f"{where}: needs public_key (base64) and keyid")
        try:
            raw = base64.b64decode(item["public_key"], validate=True)
        except binascii.Error:
            raise UsageError(f"{where}: public_key is not standard base64") from None
        if len(raw) != 32 or item.get("keyid") != key_id(raw):
            raise UsageError(f"{where}: keyid does not match the public key")
        keys[key_id(raw)] = raw
    if not keys:
        raise UsageError(f"operator key file {str(path)!r} holds no key")
    return keys
