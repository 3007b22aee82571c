"""`edge-agent registry add | revoke | list | pending | approve | rotate`: the ingest's enrolment records."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.central import config, enrolment, registry
from agent.errors import UsageError
from agent.protocol.dsse import SigningKey


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("registry", help="enrol, revoke and list device keys the ingest trusts")
    rsub = p.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    a = rsub.add_parser("add", help="enrol a device from its device.pub.json")
    a.add_argument(
        "record", metavar="FILE.pub.json", help="enrolment record from `edge-agent keygen`"
    )
    r = rsub.add_parser("revoke", help="revoke every active key of a device")
    r.add_argument("device", help="device id")
    ls = rsub.add_parser("list", help="list enrolment records")
    ls.add_argument("--json", action="store_true", help="print the records as JSON")
    pe = rsub.add_parser("pending", help="collect enrolment requests (stick folders, the enrol topic) and list them")
    pe.add_argument("--from", dest="sources", action="append", default=[], metavar="DIR",
                    help="a stick or folder holding *.request.dsse (repeatable)")
    pe.add_argument("--listen", action="store_true", help="also take the requests retained on the enrol topic "
                    "(broker from --config's [ingest])")
    ap = rsub.add_parser("approve", help="enrol a pending request; optionally issue its MQTT client certificate")
    ap.add_argument("device", help="device id")
    ap.add_argument("--key", required=True, metavar="FILE", help="provisioning key that signs the approval")
    ap.add_argument("--fingerprint", required=True, metavar="XXXX-XXXX[-...]",
                    help="the fingerprint the technician read out on the device (at least its first two "
                    "groups); a request whose key does not match is refused")
    ap.add_argument("--ca-cert", metavar="FILE", help="site CA certificate: issue a client certificate")
    ap.add_argument("--ca-key", metavar="FILE", help="site CA private key")
    ap.add_argument("--out", action="append", default=[], metavar="DIR", help="stick to leave the approval on")
    ap.add_argument("--publish", action="store_true", help="publish the approval retained on the device's "
                    "enrolled topic (broker from --config's [ingest])")
    ro = rsub.add_parser("rotate", help="apply a device's key rotation (signed by its enrolled key)")
    ro.add_argument("rotation", metavar="FILE", nargs="+",
                    help="rotation.dsse from `edge-agent rotate-key` (several: applied in order, oldest first)")
    for q in (a, r, ls, pe, ap, ro):
        q.add_argument("--registry", metavar="FILE",
                       help="registry file (default: --config's ingest.registry, else ./registry.json)")
        q.add_argument("--config", metavar="FILE", help="TOML config whose [ingest] names the registry")
    pe.set_defaults(func=cmd_pending)
    ap.set_defaults(func=cmd_approve)
    ro.set_defaults(func=cmd_rotate)
    a.set_defaults(func=cmd_add)
    r.set_defaults(func=cmd_revoke)
    ls.set_defaults(func=cmd_list)


def registry_path(args: argparse.Namespace) -> Path:
    if args.registry:
        return Path(args.registry)
    return Path(config.load(args.config).registry)


def cmd_add(args: argparse.Namespace) -> int:
    path = registry_path(args)
    if not path.parent.is_dir():  # a typo in the path would start a second registry the ingest never reads
        raise UsageError(f"the folder {str(path.parent.absolute())!r} for the registry does not exist; "
                         f"create it first or fix --registry / ingest.registry")
    new = not path.exists()
    rec = registry.add(path, registry.read_record(Path(args.record)))
    if new:
        print(f"new registry file {path.absolute()} (point ingest.registry at it)")
    print(
        f"enrolled {rec.device_id} (site {rec.site}, key {rec.keyid[:16]}...) at {rec.enrolled_at}"
    )
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    for rec in registry.revoke(registry_path(args), args.device):
        print(f"revoked {rec.device_id} key {rec.keyid[:16]}...")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    records = registry.listing(registry_path(args))
    if args.json:
        print(json.dumps([r.to_json() | {"status": r.status} for r in records], indent=2))
        return 0
    for r in records:
        print(f"{r.device_id}\t{r.site}\t{r.status}\t{r.keyid}\t{r.enrolled_at or '-'}")
    print(f"{len(records)} records, {sum(r.status == 'active' for r in records)} active")
    return 0


def cmd_pending(args: argparse.Namespace) -> int:
    path = registry_path(args)
    enrolment.collect_files([Path(s) for s in args.sources], path, print)
    if args.listen:
        enrolment.collect_topic(config.load(args.config), path, print)
    waiting = enrolment.pending(path)
    for p in waiting:
        print(p.line())
    print(f"{len(waiting)} pending; approve one with `edge-agent registry approve DEVICE --key FILE "
          "--fingerprint XXXX-XXXX-...` giving the fingerprint the technician read out on the device")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    if bool(args.ca_cert) != bool(args.ca_key):
        raise UsageError("--ca-cert and --ca-key go together")
    enrolment.approve(
        args.device, registry_path(args), SigningKey.load(Path(args.key)), print,
        ca_cert=Path(args.ca_cert) if args.ca_cert else None, ca_key=Path(args.ca_key) if args.ca_key else None,
        fingerprint_read=args.fingerprint, out=[Path(o) for o in args.out],
        broker=config.load(args.config) if args.publish else None,
    )
    if not args.ca_cert:  # said now, not found out on the device ("no certificate issued")
        print("no client certificate issued (no --ca-cert/--ca-key): the device connects to a broker that "
              "needs none, or gets one by a later approval")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    several = len(args.rotation) > 1
    for name in args.rotation:  # in order: each record is signed by the key the one before introduced
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {name!r}: {exc.strerror or exc}") from None
        enrolment.rotate(data, registry_path(args), print, pass_applied=several)
    return 0
