"""A device signs as the identity its key was enrolled under: device id and site follow the key.

The enrolment record `device.pub.json` beside the key (written by `edge-agent keygen`) says which
device id and site the key belongs to. A config that names another is refused at start with one
line, so a device can never sign events that its own registry entry would reject (`key-binding`).
Without a record beside the key, the identity is derived from the config (or its defaults).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Set as AbstractSet
from pathlib import Path

from agent import config
from agent.config import Config
from agent.errors import UsageError
from agent.protocol import enrolment
from agent.protocol.dsse import SigningKey
from agent.protocol.jsonfile import read_json

NAMEABLE = ("id", "site")  # [device] keys the enrolment record decides


def key_path(cfg: Config) -> Path:
    """The key this config signs with: device.key in the config (or --key), else the state's."""
    if cfg.device.key:
        return Path(cfg.device.key).expanduser()
    return cfg.state_dir / enrolment.KEY_FILE


def named_in(path: str | Path | None) -> frozenset[str]:
    """Which of [device] id and site the config file names itself (the rest are defaults)."""
    if path is None:
        return frozenset()
    device = config.read_toml(path).get("device", {})
    return frozenset(k for k in NAMEABLE if isinstance(device, dict) and k in device)


def record_for(key: SigningKey, path: Path) -> enrolment.Enrolment | None:
    """The enrolment record beside the key file, checked to be this key's; None when absent."""
    pub = path.parent / enrolment.PUB_FILE
    if not pub.is_file():
        return None
    rec = enrolment.Enrolment.from_json(read_json(pub, "enrolment record"), str(pub))
    if rec.keyid != key.keyid:
        raise UsageError(
            f"{pub} belongs to another key (keyid {rec.keyid[:16]}..., "
            f"the key is {key.keyid[:16]}...); "
            f"keep each device.key with the device.pub.json `edge-agent keygen` wrote beside it"
        )
    return rec


def bind(
    cfg: Config, key: SigningKey, path: Path, named: AbstractSet[str] = frozenset(NAMEABLE)
) -> Config:
    """cfg with [device] id and site taken from the key's enrolment record.

    named: the [device] keys the config chose itself; one that differs from the record is refused
    (by default both are treated as chosen: the strict check for callers that resolved already)."""
    rec = record_for(key, path)
    if rec is None:
        return cfg
    for name, have, want in (
        ("id", cfg.device.id, rec.device_id),
        ("site", cfg.device.site, rec.site),
    ):
        if name in named and have != want:
            raise UsageError(
                f"the config names device.{name} = {have!r} but the key {path} is enrolled as "
                f"{want!r} ({path.parent / enrolment.PUB_FILE}); remove device.{name} from the "
                f"config or give this "
                f"device's own key (--key, or another --state)"
            )
    if (cfg.device.id, cfg.device.site) == (rec.device_id, rec.site):
        return cfg
    return dataclasses.replace(
        cfg, device=dataclasses.replace(cfg.device, id=rec.device_id, site=rec.site)
    )


def resolve(cfg: Config, config_path: str | Path | None) -> Config:
    """At start: bind cfg to the enrolment record of the key it signs with, if that key exists."""
    path = key_path(cfg)
    if not path.is_file():
        return cfg  # no key yet: `run` refuses later, `replay` makes a throwaway one for cfg's ids
    return bind(cfg, SigningKey.load(path), path, named_in(config_path))
