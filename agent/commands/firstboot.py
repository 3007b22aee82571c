"""`edge-agent firstboot | stick | rotate-key`: the device's side of provisioning."""

from __future__ import annotations

import argparse
from pathlib import Path

from agent.provision import device
from agent.provision.device import DevicePaths


def _paths_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--etc", default="/etc/edge-agent", metavar="DIR", help="config and key folder")
    p.add_argument("--boot", action="append", metavar="DIR", help="boot partition(s) to search "
                   "(default /boot/firmware, /boot)")
    p.add_argument("--stick", metavar="DIR", help="the USB stick's mount point (default: search /media, /mnt)")
    p.add_argument("--bundle", metavar="FILE", help="a bundle file to use instead of searching")
    p.add_argument("--device-tree", metavar="DIR", help="device tree (default /proc/device-tree)")
    p.add_argument("--nm-dir", default="/etc/NetworkManager/system-connections", metavar="DIR")
    p.add_argument("--trust", metavar="FILE", help="provisioning key record(s) (default ETC/provisioning.pub.json)")
    p.add_argument("--owner", default="", help="user that runs the agent (owns mqtt.key)")
    p.add_argument("--state", metavar="DIR", help="the agent's state folder (rotate-key: its outbox)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    f = sub.add_parser("firstboot",
                       help="device: verify the site bundle, make the key, write config, request enrolment")
    _paths_args(f)
    f.add_argument("--device-id", help="device id (default pi-<serial> from the device tree)")
    f.add_argument("--no-publish", action="store_true", help="leave the request on the stick only")
    f.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the enrolment broker")
    f.set_defaults(func=cmd_firstboot)
    s = sub.add_parser("stick", help="device: take an approval or a newer bundle from a stick (same key)")
    _paths_args(s)
    s.add_argument("--from-broker", action="store_true", help="fetch the approval from the enrolment broker")
    s.set_defaults(func=cmd_stick)
    r = sub.add_parser("rotate-key",
                       help="device: new key, rotation record signed by the old one (stop the agent first)")
    _paths_args(r)
    r.set_defaults(func=cmd_rotate)


def paths(args: argparse.Namespace) -> DevicePaths:
    base = DevicePaths()
    return DevicePaths(
        etc=Path(args.etc).absolute(), boot=tuple(Path(b) for b in args.boot) if args.boot else base.boot,
        bundle=Path(args.bundle) if args.bundle else None, stick=Path(args.stick) if args.stick else None,
        device_tree=Path(args.device_tree) if args.device_tree else base.device_tree,
        nm_dir=Path(args.nm_dir), trust=Path(args.trust) if args.trust else None,
        state=Path(args.state) if args.state else None, owner=args.owner,
        media=() if args.stick else base.media,
    )


def cmd_firstboot(args: argparse.Namespace) -> int:
    return device.firstboot(paths(args), print, args.device_id, not args.no_publish, args.timeout)


def cmd_stick(args: argparse.Namespace) -> int:
    p = paths(args)
    if args.from_broker:
        device.fetch_approval(p, print)
        return 0
    return device.apply_stick(p, print)


def cmd_rotate(args: argparse.Namespace) -> int:
    device.rotate(paths(args), print)
    return 0
