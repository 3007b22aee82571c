"""Enrolment records and registry files (the trust contract), and the device keys they describe."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path

from agent.errors import StateError, UsageError
from agent.protocol.jsonfile import read_json
from agent.protocol.dsse import SigningKey, key_id

KEY_FILE = "device.key"
PUB_FILE = "device.pub.json"
THROWAWAY_MARKER = KEY_FILE + ".throwaway"  # beside a key that `replay` made up


@dataclass(frozen=True)
class Enrolment:
    """What the central side needs to trust a device: {device_id, site, keyid, public_key}."""

    device_id: str
    site: str
    keyid: str
    public_key: bytes
    status: str = "active"
    enrolled_at: str = ""
    # status "rotated": the device moved to a new key; this one stays valid for seq < until_seq
    until_seq: int = 0

    def to_json(self) -> dict[str, str]:
        d = {
            "device_id": self.device_id,
            "site": self.site,
            "keyid": self.keyid,
            "public_key": base64.b64encode(self.public_key).decode(),
        }
        if self.status != "active":
            d["status"] = self.status
        if self.enrolled_at:
            d["enrolled_at"] = self.enrolled_at
        if self.until_seq:
            d["until_seq"] = str(self.until_seq)
        return d

    @classmethod
    def from_json(cls, d: object, where: str = "record") -> Enrolment:
        if not isinstance(d, dict):
            raise UsageError(f"{where}: an enrolment record must be a JSON object")
        try:
            pub = base64.b64decode(d["public_key"], validate=True)
            rec = cls(
                str(d["device_id"]), str(d["site"]), str(d["keyid"]), pub,
                str(d.get("status", "active")), str(d.get("enrolled_at", "")),
                int(d.get("until_seq", 0)),
            )
        except KeyError as exc:
            raise UsageError(f"{where}: missing field {exc.args[0]!r}") from None
        except (binascii.Error, TypeError):
            raise UsageError(f"{where}: public_key is not standard base64") from None
        except ValueError:
            raise UsageError(f"{where}: until_seq is not a whole number") from None
        if len(pub) != 32 or key_id(pub) != rec.keyid:
            raise UsageError(f"{where}: keyid does not match the public key of {rec.device_id!r}")
        if rec.status not in ("active", "revoked", "rotated"):
            raise UsageError(f"{where}: status must be 'active', 'revoked' or 'rotated'")
        if (rec.status == "rotated") != (rec.until_seq > 0):
            raise UsageError(f"{where}: a 'rotated' key needs until_seq > 0, and only a rotated key has one")
        return rec


def enrolment(key: SigningKey, device_id: str, site: str) -> Enrolment:
    return Enrolment(device_id, site, key.keyid, key.public_key)


def keygen(out_dir: Path, device_id: str, site: str) -> Enrolment:
    """Write device.key (0600) and device.pub.json into out_dir; refuse to overwrite a key."""
    key_path = out_dir / KEY_FILE
    if key_path.exists() and (out_dir / THROWAWAY_MARKER).exists():
        raise UsageError(f"{key_path} is the throwaway identity `replay` made in that state folder (never used "
                         f"by `run`); give the device's own key another folder: keygen --out /etc/edge-agent, "
                         f"then run with --key /etc/edge-agent/device.key")
    if key_path.exists():
        raise UsageError(f"{key_path} already exists; a device key is never overwritten")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(
            f"--out {str(out_dir)!r} is a file; give a folder for device.key and device.pub.json"
        )
    key = SigningKey.generate()
    rec = enrolment(key, device_id, site)
    try:
        key.save(key_path)
        (out_dir / PUB_FILE).write_text(json.dumps(rec.to_json(), indent=2) + "\n")
    except FileExistsError:
        raise UsageError(f"{key_path} already exists; a device key is never overwritten") from None
    except OSError as exc:
        raise UsageError(
            f"cannot write the key into {str(out_dir)!r}: {exc.strerror or exc}"
        ) from None
    return rec


def load_registry(path: Path) -> list[Enrolment]:
    """A registry file: a JSON list of enrolment records, {"devices": [...]}, or one record."""
    data = read_json(path, "registry file")
    if isinstance(data, dict) and "devices" in data:
        data = data["devices"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise UsageError(f"registry file {str(path)!r} must hold a list of enrolment records")
    records = [Enrolment.from_json(d, f"{path} record {i + 1}") for i, d in enumerate(data)]
    seen: dict[str, int] = {}
    for i, r in enumerate(records, 1):
        if r.keyid in seen:
            # Which record would win is arbitrary (e.g. one active, one revoked): refuse the file.
            raise UsageError(
                f"registry file {str(path)!r}: records {seen[r.keyid]} and {i} have the same "
                f"keyid {r.keyid[:16]}...; keep one record per key"
            )
        seen[r.keyid] = i
    return records


def save_registry(path: Path, records: list[Enrolment]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"devices": [r.to_json() for r in records]}, indent=2) + "\n")
        tmp.replace(path)
    except OSError as exc:
        raise StateError(
            f"cannot write registry file {str(path)!r}: {exc.strerror or exc}"
        ) from None
