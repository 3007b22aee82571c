"""The enrolment registry file: add a device's record, revoke a device, list records."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from agent.errors import UsageError
from agent.protocol.enrolment import Enrolment, load_registry, save_registry
from agent.protocol.jsonfile import read_json


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def load_or_empty(path: Path) -> list[Enrolment]:
    return load_registry(path) if path.exists() else []


def read_record(pub_file: Path) -> Enrolment:
    """One enrolment record from a device.pub.json (from `edge-agent keygen`)."""
    data = read_json(pub_file, "enrolment file")
    return Enrolment.from_json(data, str(pub_file))


def add(path: Path, record: Enrolment, enrolled_at: str | None = None) -> Enrolment:
    """Append an active record. A key already present, or a device that still has an active key,
    is refused (revoke the old key first), so one device never has two live keys by mistake."""
    records = load_or_empty(path)
    for r in records:
        if r.keyid == record.keyid:
            state = "revoked" if r.status == "revoked" else "enrolled"
            raise UsageError(
                f"key {record.keyid[:16]}... is already {state} (device {r.device_id!r})"
            )
        if r.device_id == record.device_id and r.status == "active":
            raise UsageError(
                f"device {record.device_id!r} already has an active key; "
                f"run `edge-agent registry revoke {record.device_id}` first"
            )
    rec = dataclasses.replace(
        record, status="active", enrolled_at=record.enrolled_at or enrolled_at or now_iso()
    )
    save_registry(path, [*records, rec])
    return rec


def revoke(path: Path, device_id: str) -> list[Enrolment]:
    """Mark every active key of the device revoked; return the records changed."""
    records = load_or_empty(path)
    if not any(r.device_id == device_id for r in records):
        raise UsageError(f"device {device_id!r} is not in the registry {str(path)!r}")
    changed = [r for r in records if r.device_id == device_id and r.status == "active"]
    if not changed:
        raise UsageError(f"device {device_id!r} has no active key to revoke")
    save_registry(
        path, [dataclasses.replace(r, status="revoked") if r in changed else r for r in records]
    )
    return changed


def listing(path: Path) -> list[Enrolment]:
    """The records; a missing file is an error here (a typo should not read as "0 records")."""
    if not path.exists():
        raise UsageError(f"registry file {str(path)!r} does not exist; "
                         "enrol a device with `edge-agent registry add`")
    return load_registry(path)
