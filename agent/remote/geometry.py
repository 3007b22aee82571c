"""Which of two sources of zones and lines is newer: the config file or a signed remote change.

The setup view (or a hand edit) writes zones and lines to the config file; a signed remote change
may set them too. The latest wins. While the agent runs, a save it takes up sets the stored remote
zones and lines aside at once (agent.device.config_watch); for a save made while it was stopped,
the remote state keeps a fingerprint of the file's zones and lines as they were when the remote
settings were last written, and a start that finds the file's fingerprint changed sets them aside.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from agent.config import Config

KEYS = ("zones", "lines")  # the remote settings a local save of geometry supersedes


def _given(value: Any) -> Any:
    """A dataclass as its fields that differ from their defaults, recursively (so a field a later
    release adds, at its default, leaves the fingerprint of an unchanged file alone)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if f.default is not dataclasses.MISSING:
                default: Any = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = dataclasses.MISSING
            if default is dataclasses.MISSING or v != default:
                out[f.name] = _given(v)
        return out
    if isinstance(value, (list, tuple)):
        return [_given(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_given(v) for v in value)
    return value


def fingerprint(cfg: Config) -> str:
    """SHA-256 of the zones and lines of a config read from its file (before remote settings)."""
    doc = {key: _given(getattr(cfg, key)) for key in KEYS}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
