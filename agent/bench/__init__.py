"""Benchmarks: each compares the agent with a bare baseline measured in the same run."""

from __future__ import annotations

import json
from typing import Any


def emit(figures: dict[str, Any]) -> None:
    """The last line of every benchmark: one JSON object."""
    print(json.dumps(figures, sort_keys=True), flush=True)
