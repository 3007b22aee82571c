"""`edge-agent provision keygen | bundle | write`: the operator's site bundle, signed, onto a card or a stick."""

from __future__ import annotations

import argparse
from pathlib import Path

from agent.config import check_id, read_toml
from agent.errors import UsageError
from agent.protocol.dsse import SigningKey
from agent.protocol.provisioning import fingerprint
from agent.provision import operator
from agent.provision.device import DevicePaths, trusted
from agent.provision.files import write_secret


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("provision", help="operator: provisioning key, signed site bundle, boot/stick folders")
    psub = p.add_subparsers(dest="provision_command", metavar="ACTION", required=True)
    k = psub.add_parser("keygen", help="create the operator's provisioning key (0600) and its public record")
    k.add_argument("--out", required=True, metavar="DIR", help="folder for provisioning.key and provisioning.pub.json")
    k.set_defaults(func=cmd_keygen)

    b = psub.add_parser("bundle", help="sign a site bundle (broker, CA, ingest keys, settings, Wi-Fi)")
    b.add_argument("--key", required=True, metavar="FILE", help="the provisioning key that signs the bundle")
    b.add_argument("--site", required=True, help="site id")
    b.add_argument("--broker", required=True, metavar="URL", help="events broker, mqtts://HOST:PORT (mutual TLS)")
    b.add_argument("--ca", required=True, metavar="FILE", help="site CA certificate (PEM)")
    b.add_argument("--ingest-keys", required=True, metavar="FILE", help="the ingest's public key record(s)")
    b.add_argument("--operator-key", metavar="FILE",
                   help="public key record that signs configuration (default: the provisioning key's)")
    b.add_argument("--enrol-broker", default="", metavar="URL",
                   help="enrolment listener, mqtts://HOST:PORT (TLS only: the request carries the device's key)")
    b.add_argument("--enrol-user", default="", help="broker account that may only publish enrolment requests")
    b.add_argument("--enrol-password-file", metavar="FILE", help="that account's password")
    b.add_argument("--settings", metavar="FILE.toml", help="default config sections for the site's devices")
    b.add_argument("--wifi-ssid", default="", help="Wi-Fi network name")
    b.add_argument("--wifi-psk-file", metavar="FILE", help="file holding the Wi-Fi passphrase")
    b.add_argument("--wifi-country", default="", help="Wi-Fi regulatory domain (e.g. GB)")
    b.add_argument("--network-config", metavar="FILE", help="a cloud-init network-config to carry instead")
    b.add_argument("--topic-prefix", default="edge/v1")
    b.add_argument("--issued", type=int, metavar="SECONDS", help="issue time (default now); a device "
                   "takes a later bundle only if it was issued after the one it has")
    b.add_argument("--out", required=True, metavar="FILE", help="where the signed bundle goes")
    b.set_defaults(func=cmd_bundle)

    w = psub.add_parser("write", help="put a bundle on a boot partition (bookworm, trixie) or a USB stick")
    w.add_argument("bundle", metavar="BUNDLE", help="signed bundle from `provision bundle`")
    w.add_argument("--trust", required=True, metavar="FILE", help="provisioning.pub.json to check it against")
    w.add_argument("--to", required=True, metavar="DIR", help="mounted boot partition or stick")
    w.add_argument("--style", default="stick", choices=["bookworm", "trixie", "stick"])
    w.set_defaults(func=cmd_write)


def _read(path: str | None, what: str) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path!r}: {exc.strerror or exc}") from None


def cmd_keygen(args: argparse.Namespace) -> int:
    record = operator.keygen(Path(args.out))
    print(f"provisioning key {fingerprint(record['keyid'])} in {Path(args.out) / operator.KEY_FILE} (0600, keep it "
          f"offline); give {Path(args.out) / operator.PUB_FILE} to the device image")
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    try:
        check_id(args.site, "--site")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    key = SigningKey.load(Path(args.key))
    operator_key = Path(args.operator_key) if args.operator_key else Path(args.key).with_name(operator.PUB_FILE)
    wifi = {}
    if args.wifi_ssid:
        wifi = {"ssid": args.wifi_ssid, "psk": _read(args.wifi_psk_file, "--wifi-psk-file")}
        if args.wifi_country:
            wifi["country"] = args.wifi_country
    bundle = operator.build(
        site=args.site, broker=args.broker, ca_file=Path(args.ca), ingest_keys=Path(args.ingest_keys),
        operator_key=operator_key, enrol_broker=args.enrol_broker, enrol_username=args.enrol_user,
        enrol_password=_read(args.enrol_password_file, "--enrol-password-file"),
        settings=read_toml(args.settings) if args.settings else {}, wifi=wifi,
        network_config=_read(args.network_config, "--network-config"), topic_prefix=args.topic_prefix,
        issued=args.issued,
    )
    envelope = bundle.sign(key)
    out = Path(args.out)
    write_secret(out, envelope)  # the Wi-Fi key and the enrolment password: the operator's only
    print(f"bundle {bundle.id} for site {bundle.site}: broker {bundle.broker}, {len(bundle.ingest_keys)} ingest key(s)"
          f"{', Wi-Fi ' + wifi['ssid'] if wifi else ''}; signed by {fingerprint(key.keyid)}; written to {out}")
    return 0


def cmd_write(args: argparse.Namespace) -> int:
    data = Path(args.bundle).read_bytes() if Path(args.bundle).is_file() else b""
    if not data:
        raise UsageError(f"bundle {args.bundle!r} not found")
    from agent.protocol.provisioning import open_bundle

    bundle = open_bundle(data, trusted(DevicePaths(trust=Path(args.trust))))  # never write a bad bundle
    for path in operator.write(data, bundle, Path(args.to), args.style):
        print(f"wrote {path}")
    print(f"bundle {bundle.id} ready ({args.style}): the device verifies it at first boot")
    return 0
