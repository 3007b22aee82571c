"""Canonical JSON, defined once: sorted keys, no spaces, ASCII; the bytes signed and hashed."""

from __future__ import annotations

import json


def canonical_json(value: object) -> bytes:
    """value as canonical JSON bytes: sorted keys, separators without spaces, ASCII only."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )
