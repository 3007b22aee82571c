"""Helpers for the remote configuration tests: operator keys, a device config, signed changes."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

from agent.protocol import change as ch
from agent.protocol.dsse import SigningKey

ZONE = {"id": "door", "polygon": [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]}
MOVED = {"id": "door", "polygon": [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]}


def key_record_file(key: SigningKey, path: Path) -> Path:
    path.write_text(
        json.dumps({"keyid": key.keyid, "public_key": base64.b64encode(key.public_key).decode()})
    )
    return path


def signed(
    key: SigningKey,
    version: int,
    settings: dict[str, Any] | None = None,
    *,
    base: int | None = None,
    device: str = "cam-1",
    site: str = "lab",
    commands: tuple[str, ...] = (),
    issued: int | None = None,
    expires_in: int = 3600,
    check: bool = True,
) -> bytes:
    now = int(time.time()) if issued is None else issued
    change = ch.Change(
        site,
        device,
        version,
        version - 1 if base is None else base,
        now,
        now + expires_in,
        settings if settings is not None else ({} if commands else {"zones": [MOVED]}),
        commands,
    )
    if check:
        return ch.sign(key, change)
    return key.envelope(ch.CHANGE_PAYLOAD_TYPE, ch.change_body(change))
