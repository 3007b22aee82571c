"""`edge-agent firstboot | stick | rotate-key`: the device's side of provisioning."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agent.provision import device
from agent.provision.device import DevicePaths


def _paths_args(p: argparse.ArgumentParser, bundle: bool = True, state: bool = False) -> None:
    """The folders a command reads and writes; bundle: the ones applying a site bundle needs."""
    p.add_argument("--etc", default="/etc/edge-agent", metavar="DIR", help="config and key folder")
    p.add_argument("--stick", metavar="DIR", help="the USB stick's mount point (default: search /media, /mnt)")
    if bundle:
        p.add_argument("--boot", action="append", metavar="DIR", help="boot partition(s) to search "
                       "(default /boot/firmware, /boot)")
        p.add_argument("--bundle", metavar="FILE", help="a bundle file to use instead of searching")
        p.add_argument("--device-tree", metavar="DIR", help="device tree (default /proc/device-tree)")
        p.add_argument("--nm-dir", default="/etc/NetworkManager/system-connections", metavar="DIR",
                       help="where the bundle's Wi-Fi connection is written for NetworkManager")
        p.add_argument("--trust", metavar="FILE",
                       help="provisioning key record(s) (default ETC/provisioning.pub.json)")
        p.add_argument("--owner", default="", help="user that runs the agent (owns mqtt.key)")
    if state:
        p.add_argument("--state", metavar="DIR", required=True,
                       help="the agent's state folder (its outbox holds the seq counter)")


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
    _paths_args(r, bundle=False, state=True)
    r.set_defaults(func=cmd_rotate)


def paths(args: argparse.Namespace) -> DevicePaths:
    base = DevicePaths()
    given: dict[str, Any] = {k: v for k, v in vars(args).items() if v}  # a command without an option: its default

    def path(name: str) -> Path | None:
        return Path(given[name]) if name in given else None

    return DevicePaths(
        etc=Path(args.etc).absolute(), boot=tuple(Path(b) for b in given["boot"]) if "boot" in given else base.boot,
        bundle=path("bundle"), stick=path("stick"), device_tree=path("device_tree") or base.device_tree,
        nm_dir=path("nm_dir") or base.nm_dir, trust=path("trust"), state=path("state"),
        owner=str(given.get("owner", "")), media=() if args.stick else base.media,
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
