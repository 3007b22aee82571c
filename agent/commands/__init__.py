"""One module per command family; each exposes register(subparsers)."""

from __future__ import annotations

import argparse
from pathlib import Path

from agent import config
from agent.config import Config


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML config file (every section optional)")
    p.add_argument("--state", metavar="DIR", help="state folder: outbox, counters, keys, models")
    p.add_argument("--key", metavar="FILE", help="device private key (from `edge-agent keygen`)")


def load_config(args: argparse.Namespace) -> Config:
    cfg = config.load(args.config)
    device: dict[str, str] = {}
    if getattr(args, "state", None):
        device["state_dir"] = str(Path(args.state))
    if getattr(args, "key", None):
        device["key"] = str(Path(args.key))
    if device:
        cfg = config.replace(cfg, device=device)
    from agent.device_identity import resolve

    return resolve(cfg, args.config)  # device id and site: the key's enrolment record decides


def with_detector_options(cfg: Config, **options: object) -> Config:
    """cfg with the [detector] keys given on the command line; None means 'as configured'."""
    changes = {k: v for k, v in options.items() if v is not None}
    return config.replace(cfg, detector=changes) if changes else cfg
