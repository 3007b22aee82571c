"""Device identity: the Ed25519 key file, the enrolment record and registries of records."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path

from agent.errors import UsageError
from agent.sign import SigningKey, key_id

KEY_FILE = "device.key"
PUB_FILE = "device.pub.json"


@dataclass(frozen=True)
class Enrolment:
    """What the central side needs to trust a device: {device_id, site, keyid, public_key}."""

    device_id: str
    site: str
    keyid: str
    public_key: bytes
    status: str = "active"
    enrolled_at: str = ""

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
            )
        except KeyError as exc:
            raise UsageError(f"{where}: missing field {exc.args[0]!r}") from None
        except (binascii.Error, TypeError):
            raise UsageError(f"{where}: public_key is not standard base64") from None
        if len(pub) != 32 or key_id(pub) != rec.keyid:
            raise UsageError(f"{where}: keyid does not match the public key of {rec.device_id!r}")
        if rec.status not in ("active", "revoked"):
            raise UsageError(f"{where}: status must be 'active' or 'revoked'")
        return rec


def enrolment(key: SigningKey, device_id: str, site: str) -> Enrolment:
    return Enrolment(device_id, site, key.keyid, key.public_key)


def keygen(out_dir: Path, device_id: str, site: str) -> Enrolment:
    """Write device.key (0600) and device.pub.json into out_dir; refuse to overwrite a key."""
    key_path = out_dir / KEY_FILE
    if key_path.exists():
        raise UsageError(f"{key_path} already exists; a device key is never overwritten")
    key = SigningKey.generate()
    key.save(key_path)
    rec = enrolment(key, device_id, site)
    (out_dir / PUB_FILE).write_text(json.dumps(rec.to_json(), indent=2) + "\n")
    return rec


def load_registry(path: Path) -> list[Enrolment]:
    """A registry file: a JSON list of enrolment records, {"devices": [...]}, or one record."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"registry file {str(path)!r} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"registry file {str(path)!r} is not JSON: {exc}") from None
    if isinstance(data, dict) and "devices" in data:
        data = data["devices"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise UsageError(f"registry file {str(path)!r} must hold a list of enrolment records")
    return [Enrolment.from_json(d, f"{path} record {i + 1}") for i, d in enumerate(data)]


def save_registry(path: Path, records: list[Enrolment]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"devices": [r.to_json() for r in records]}, indent=2) + "\n")
    tmp.replace(path)
