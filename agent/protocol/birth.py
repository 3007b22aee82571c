"""The retained birth message a device publishes on connect: agent version, model, manifest hash, boot.

Only these four fields, each of a fixed shape, can be in a birth; `check` refuses anything else, so
the birth cannot become a side channel (it is unsigned: the signed manifest it names is the proof).
"""

from __future__ import annotations

import re
from typing import Any

from agent.protocol.canonical import canonical_json

MAX_BIRTH_BYTES = 512
FIELDS: dict[str, re.Pattern[str]] = {
    "agent_version": re.compile(r"^[0-9A-Za-z.+-]{1,32}$"),
    "model": re.compile(r"^[A-Za-z0-9_.-]{1,64}$"),
    "manifest": re.compile(r"^[0-9a-f]{64}$"),
}


def birth_body(agent_version: str, model: str, manifest_sha256: str, boot: int) -> bytes:
    """Canonical JSON bytes of a birth, checked before they are returned."""
    body = canonical_json({"agent_version": agent_version, "model": model, "manifest": manifest_sha256,
                           "boot": boot})
    check(body)
    return body


def check(body: bytes) -> dict[str, Any]:
    """The parsed birth, or ValueError naming what does not belong in one."""
    import json

    if len(body) > MAX_BIRTH_BYTES:
        raise ValueError(f"birth is {len(body)} bytes, the cap is {MAX_BIRTH_BYTES}")
    doc = json.loads(body)
    if not isinstance(doc, dict) or set(doc) != {*FIELDS, "boot"}:
        raise ValueError("a birth holds exactly agent_version, model, manifest and boot")
    for name, rx in FIELDS.items():
        if not isinstance(doc[name], str) or not rx.match(doc[name]):
            raise ValueError(f"birth field {name!r} is not of its fixed shape")
    boot = doc["boot"]
    if isinstance(boot, bool) or not isinstance(boot, int) or boot < 1:
        raise ValueError("birth field 'boot' must be a positive integer")
    return doc
