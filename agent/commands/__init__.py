"""One module per command family; each exposes register(subparsers)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from agent import config
from agent.config import Config

if TYPE_CHECKING:
    from agent.device.board import Choice


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML config file (every section optional)")
    p.add_argument("--state", metavar="DIR", help="state folder: outbox, counters, keys, models")
    p.add_argument("--key", metavar="FILE", help="device private key (from `edge-agent keygen`)")


def load_config(args: argparse.Namespace) -> Config:
    return _command_line(args, config.load(args.config))


def load_config_for_board(args: argparse.Namespace) -> tuple[Config, Choice]:
    """The config with this board's profile laid under it (run, replay), and which profile it was."""
    from agent.device import board

    table, choice = board.apply(config.load_table(args.config))
    return _command_line(args, config.parse(table)), choice


def _command_line(args: argparse.Namespace, cfg: Config) -> Config:
    device: dict[str, str] = {}
    if getattr(args, "state", None):
        device["state_dir"] = str(Path(args.state))
    if getattr(args, "key", None):
        device["key"] = str(Path(args.key))
    elif not cfg.device.key and os.environ.get("CREDENTIALS_DIRECTORY"):
        # systemd's LoadCredential=device.key:...: a copy only this service can read
        credential = Path(os.environ["CREDENTIALS_DIRECTORY"]) / "device.key"
        if credential.is_file():
            device["key"] = str(credential)
    if device:
        cfg = config.replace(cfg, device=device)
    from agent.device.identity import resolve

    return resolve(cfg, args.config)  # device id and site: the key's enrolment record decides


def with_detector_options(cfg: Config, **options: object) -> Config:
    """cfg with the [detector] keys given on the command line; None means 'as configured'."""
    changes = {k: v for k, v in options.items() if v is not None}
    return config.replace(cfg, detector=changes) if changes else cfg
