"""`edge-agent registry add FILE.pub.json | revoke DEVICE | list`: the ingest's enrolments."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.central import config, registry


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
    for q in (a, r, ls):
        q.add_argument(
            "--registry", metavar="FILE", help="registry file (default: ingest.registry)"
        )
        q.add_argument(
            "--config", metavar="FILE", help="TOML config whose [ingest] names the registry"
        )
    a.set_defaults(func=cmd_add)
    r.set_defaults(func=cmd_revoke)
    ls.set_defaults(func=cmd_list)


def registry_path(args: argparse.Namespace) -> Path:
    if args.registry:
        return Path(args.registry)
    return Path(config.load(args.config).registry)


def cmd_add(args: argparse.Namespace) -> int:
    rec = registry.add(registry_path(args), registry.read_record(Path(args.record)))
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
