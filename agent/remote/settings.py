"""Remote settings laid over the device's config, through the checks a local config file gets."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from agent import config
from agent.config import Config
from agent.errors import ConfigError
from agent.protocol.change import ChangeRefused, check_settings

RUNTIME_ONLY = ("log.level",)  # settings that are not part of the config file


def parse_settings(settings: Mapping[str, Any]) -> Config:
    """The settings through the config file's own loader (types, ranges, unknown keys such as a
    zone's 'polgon'), on their own: what holds whatever the device's config is, so `config sign`
    refuses here what every device would refuse. ChangeRefused otherwise."""
    check_settings(settings)
    table: dict[str, Any] = {}
    for key, value in settings.items():
        if key in RUNTIME_ONLY:
            continue
        *path, name = key.split(".")
        node = table
        for part in path:
            node = node.setdefault(part, {})
        node[name] = value
    try:
        return config.parse(table)
    except ConfigError as exc:
        raise ChangeRefused("invalid-value", str(exc), _setting_of(str(exc), settings)) from None


def overlay(cfg: Config, settings: Mapping[str, Any]) -> Config:
    """cfg with settings applied, or ChangeRefused ("denied-setting", "unknown-setting",
    "invalid-value"). Each value is parsed as the config file's own loader would parse it, and
    the result must build its rules (zone classes within detector.classes, ids unique)."""
    from agent.rules import build_rules

    given = parse_settings(settings)
    changes: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for key in settings:
        if key in RUNTIME_ONLY:
            continue
        if "." not in key:
            changes[key] = getattr(given, key)
        else:
            section, name = key.split(".", 1)
            sections.setdefault(section, {})[name] = getattr(getattr(given, section), name)
    for section, values in sections.items():
        changes[section] = dataclasses.replace(getattr(cfg, section), **values)
    new = dataclasses.replace(cfg, **changes)
    try:
        config.check_unique_ids(new)
        build_rules(new)
    except ConfigError as exc:
        raise ChangeRefused("invalid-value", str(exc), _setting_of(str(exc), settings)) from None
    return new


def _setting_of(message: str, settings: Mapping[str, Any]) -> str:
    """The setting a config error names (its first word starts with the key), else the first key."""
    for key in sorted(settings, key=len, reverse=True):
        head = key.split(".")[0]
        if message.startswith(key) or message.startswith(head) or f" {head[:-1]} " in f" {message}":
            return key
    return sorted(settings)[0] if settings else ""
