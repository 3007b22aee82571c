"""`edge-agent keygen`: a device key (0600, never printed) and its enrolment record."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.protocol import enrolment as identity
from agent.config import check_id
from agent.errors import UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("keygen", help="create a device key and its enrolment record device.pub.json")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for device.key and device.pub.json")
    # no defaults: a key made for "edge-demo" by accident would sign every event as that device
    p.add_argument("--device-id", required=True, help="device id the key is enrolled as (letters, digits, _ . -)")
    p.add_argument("--site", required=True, help="site id the key is enrolled at")
    p.set_defaults(func=cmd_keygen)


def cmd_keygen(args: argparse.Namespace) -> int:
    for value, what in ((args.device_id, "--device-id"), (args.site, "--site")):
        try:
            check_id(value, what)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    rec = identity.keygen(Path(args.out), args.device_id, args.site)
    print(json.dumps(rec.to_json(), indent=2))
    return 0
