"""The operator's side: a provisioning key, a signed site bundle, and where the bundle is written."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

from agent.errors import SignatureError, UsageError
from agent.protocol.dsse import SigningKey
from agent.protocol.jsonfile import read_json
from agent.protocol.provisioning import Bundle, fingerprint, key_record, public_key_of
from agent.provision.files import BUNDLE_FILE, FOLDER, write_public, write_secret

KEY_FILE = "provisioning.key"
PUB_FILE = "provisioning.pub.json"


def keygen(out: Path) -> dict[str, str]:
    """The operator's provisioning key (0600, made once) and its public record."""
    key = SigningKey.generate()
    if (out / KEY_FILE).exists():
        raise UsageError(f"{out / KEY_FILE} already exists; a provisioning key is never overwritten")
    key.save(out / KEY_FILE)  # exclusive, 0600
    record = key_record(key.public_key)
    write_public(out / PUB_FILE, (json.dumps(record, indent=2) + "\n").encode())
    return record


def read_key_records(path: Path, what: str) -> list[dict[str, str]]:
    """One {keyid, public_key} record, a list of them, or {"devices": [...]}/enrolment records."""
    data = read_json(path, what)
    if isinstance(data, dict) and "devices" in data:
        data = data["devices"]
    items = data if isinstance(data, list) else [data]
    out = []
    for i, item in enumerate(items):
        try:
            _, raw = public_key_of(item, f"{what} {str(path)!r} record {i + 1}")
        except SignatureError as exc:
            raise UsageError(str(exc).split(": ", 1)[-1]) from None
        out.append(key_record(raw))
    if not out:
        raise UsageError(f"{what} {str(path)!r} holds no key")
    return out


def trusted_keys(path: Path) -> dict[str, bytes]:
    """keyid -> raw key of the provisioning key record(s) in path."""
    return {r["keyid"]: base64.b64decode(r["public_key"]) for r in read_key_records(path, "provisioning key file")}


def check_broker(url: str, what: str) -> None:
    scheme, _, rest = url.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme != "mqtts" or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{what} {url!r} must look like mqtts://HOST:PORT (devices speak TLS only)")


def build(*, site: str, broker: str, ca_file: Path, ingest_keys: Path, operator_key: Path,
          enrol_broker: str = "", enrol_username: str = "", enrol_password: str = "",
          settings: dict[str, Any] | None = None, wifi: dict[str, str] | None = None,
          network_config: str = "", topic_prefix: str = "edge/v1", issued: int | None = None) -> Bundle:
    check_broker(broker, "--broker")
    if enrol_broker:
        check_broker(enrol_broker, "--enrol-broker")
        if not enrol_username or not enrol_password:
            raise UsageError("--enrol-broker needs --enrol-user and --enrol-password-file")
    try:
        ca = ca_file.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the CA certificate {str(ca_file)!r}: {exc}") from None
    if "-----BEGIN CERTIFICATE-----" not in ca or "PRIVATE KEY" in ca:
        raise UsageError(f"{str(ca_file)!r} is not a PEM CA certificate (and only the certificate may go in)")
    if wifi and network_config:
        raise UsageError("give either --wifi-ssid or --network-config, not both")
    return Bundle(
        site=site, broker=broker, ca_pem=ca, ingest_keys=tuple(read_key_records(ingest_keys, "ingest key file")),
        operator_key=read_key_records(operator_key, "operator key file")[0],
        issued=int(time.time()) if issued is None else issued, topic_prefix=topic_prefix,
        enrol_broker=enrol_broker, enrol_username=enrol_username, enrol_password=enrol_password,
        settings=settings or {}, wifi=wifi or {}, network_config=network_config,
    )


def network_config_yaml(bundle: Bundle) -> str:
    """cloud-init network-config (v2) for Trixie: the bundle's own text, or Wi-Fi from its settings."""
    if bundle.network_config:
        return bundle.network_config
    if not bundle.wifi:
        return ""
    ssid, psk = json.dumps(bundle.wifi["ssid"]), json.dumps(bundle.wifi.get("psk", ""))
    lines = ["network:", "  version: 2", "  wifis:", "    wlan0:", "      dhcp4: true", "      optional: true",
             f"      regulatory-domain: {bundle.wifi.get('country', 'GB')}" if bundle.wifi.get("country") else "",
             "      access-points:", f"        {ssid}:", f"          password: {psk}"]
    return "\n".join(line for line in lines if line) + "\n"


def write(envelope: bytes, bundle: Bundle, dest: Path, style: str) -> list[Path]:
    """Write the bundle for a boot partition (style bookworm or trixie) or a USB stick (style stick).

    Every style puts edge-agent/bundle.dsse (what the device verifies and trusts) and a README.
    trixie adds cloud-init's network-config at the partition's root when the bundle has Wi-Fi (so
    the network is up before the first-boot unit runs); bookworm and the stick need nothing more:
    the device writes its NetworkManager connection from the verified bundle itself.
    """
    if not dest.is_dir():
        raise UsageError(f"{str(dest)!r} is not a folder (mount the boot partition or the stick first)")
    folder = dest / FOLDER
    written = [folder / BUNDLE_FILE, folder / "README.txt"]
    write_secret(written[0], envelope)  # the Wi-Fi key and enrolment password (FAT ignores modes)
    write_public(written[1], (
        f"edge-agent site bundle {bundle.id} for site {bundle.site}, signed by provisioning key "
        f"{fingerprint(json_keyid(envelope))}.\nThe device verifies it at first boot (edge-agent firstboot) "
        "and leaves its enrolment request in requests/ on a stick.\nNo private key is in this folder.\n"
    ).encode())
    if style == "trixie":
        yaml = network_config_yaml(bundle)
        if yaml:
            target = dest / "network-config"
            write_secret(target, yaml.encode())
            written.append(target)
    elif style not in ("bookworm", "stick"):
        raise UsageError(f"--style {style!r} must be bookworm, trixie or stick")
    return written


def json_keyid(envelope: bytes) -> str:
    sigs = json.loads(envelope)["signatures"]
    return str(sigs[0]["keyid"])
