"""`edge-agent profile`: which board profile this device gets, the known ones, and its agent.toml."""

from __future__ import annotations

import argparse
import socket

from agent import config
from agent.device import board
from agent.config import check_id
from agent.errors import UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("profile", help="show the board profile this device gets (or list them)")
    p.add_argument("--config", metavar="FILE", help="TOML config file (its device.profile is obeyed)")
    p.add_argument("--list", action="store_true", help="list every profile")
    p.add_argument("--agent-toml", action="store_true",
                   help="print an agent.toml for this device (what hw/install.sh writes)")
    p.add_argument("--device-id", default="", help="--agent-toml: device id (default: the host name)")
    p.add_argument("--site", default="site", help="--agent-toml: site id")
    p.add_argument("--pin", metavar="ID", default="", help="--agent-toml: use profile ID instead of detecting")
    p.add_argument("--models", action="store_true",
                   help="print the model ids the config runs: the model, then its twin (CPU or Edge TPU)")
    p.set_defaults(func=cmd_profile)


def cmd_profile(args: argparse.Namespace) -> int:
    if args.list:
        for p in board.profiles().values():
            print(f"{p.id:18s} {p.accelerator:10s} {p.description}")
        return 0
    table = config.load_table(args.config)
    if args.pin:
        if args.pin not in ("auto", "none") and args.pin not in board.profiles():
            known = ", ".join(board.profiles())
            raise UsageError(f"--pin {args.pin!r} is not a board profile (known: {known}, or auto, none)")
        table = config.merge(table, {"device": {"profile": args.pin}})
    merged, choice = board.apply(table)
    if args.models:
        from agent.device.install_media import install_set

        for model_id in install_set(config.parse(merged).detector.model):
            print(model_id)
        return 0
    if not args.agent_toml:
        print(choice.line())
        if choice.profile is not None:
            print(choice.profile.toml(), end="")
        return 0
    device_id = args.device_id or _host_id()
    for value, what in ((device_id, "--device-id"), (args.site, "--site")):
        try:
            check_id(value, what)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    print(agent_toml(choice, device_id, args.site), end="")
    return 0


def _host_id() -> str:
    name = "".join(c if c in config.ID_CHARS else "-" for c in socket.gethostname())[:64]
    return name or "edge-device"


def agent_toml(choice: board.Choice, device_id: str, site: str) -> str:
    """The device's config: identity and camera; tuning comes from the profile (shown as comments)."""
    p = choice.profile
    camera = p.camera if p is not None else "v4l2"
    lines = [
        "# edge-agent configuration (written by hw/install.sh; yours to edit, never overwritten).",
        f"# {choice.line()}",
        "# The board profile's values are defaults under this file: set a key here to override it,",
        "# or device.profile = \"<id>\" (`edge-agent profile --list`) to pin another profile.",
        "",
        "[device]",
        f'id = "{device_id}"',
        f'site = "{site}"',
        f'profile = "{"auto" if "detected" in choice.reason else (p.id if p else "none")}"',
        "",
        "[source]",
        f'kind = "{camera}"',
    ]
    if camera == "v4l2":
        lines.append('path = "/dev/video0"')
    lines += [
        "",
        "# [mqtt]",
        '# host = "broker.example.org"',
        "# port = 8883",
        "# tls = true",
        '# ca_file = "/etc/edge-agent/ca.pem"',
        "",
    ]
    if p is not None:
        lines.append(f"# The profile {p.id} sets:")
        lines += [f"# {line}" if line else "#" for line in p.toml().splitlines()]
    return "\n".join(lines) + "\n"
