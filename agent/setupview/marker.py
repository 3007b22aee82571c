"""The state folder's mark that a setup view is open, read by a running agent (coverage: blind)."""

from __future__ import annotations

import json
import os
from pathlib import Path

MARKER_FILE = "setup_view.open"


def write(state_dir: Path, until_ms: int) -> Path:
    """Mark the setup view open until until_ms (wall clock); a crash leaves a mark that expires."""
    path = state_dir / MARKER_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "until_ms": until_ms}) + "\n")
    os.replace(tmp, path)
    return path


def clear(state_dir: Path) -> None:
    try:
        (state_dir / MARKER_FILE).unlink()
    except FileNotFoundError:
        pass


def is_open(state_dir: Path, now_ms: int) -> bool:
    """True while a setup view's mark exists and its deadline has not passed."""
    try:
        doc = json.loads((state_dir / MARKER_FILE).read_text())
        return bool(now_ms < int(doc["until_ms"]))
    except (OSError, ValueError, KeyError, TypeError):
        return False
