"""hw/aarch64_compare.py: the aarch64 proof's verdict passes on equal results and fails on each
kind of difference it exists to catch (score drift, other events, numpy from the venv)."""

from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_compare() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aarch64_compare", ROOT / "hw" / "aarch64_compare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def envelope(body: dict[str, Any]) -> str:
    payload = base64.b64encode(json.dumps(body).encode()).decode()
    return json.dumps({"payloadType": "x", "payload": payload, "signatures": []})


def results(folder: Path, machine: str, score: float, events: list[dict[str, Any]],
            numpy_file: str = "/usr/lib/python3/dist-packages/numpy/__init__.py") -> Path:
    folder.mkdir()
    (folder / "version.txt").write_text("edge-agent 0.1.0\n")
    (folder / "python.txt").write_text(f"{machine} 3.11.2 1.24.2 {numpy_file}\n")
    detections = [{"label": "person", "score": score, "box": [0, 0, 1, 1]},
                   {"label": "person", "score": 0.5, "box": [0, 0, 0.2, 0.6]}]
    (folder / "detect.json").write_text(json.dumps({"detections": detections}))
    (folder / "events.jsonl").write_text("".join(envelope(e) + "\n" for e in events))
    return folder


EVENTS = [{"type": "occupancy", "rule": "table", "seq": 1, "values": {"count": 1}},
          {"type": "count", "rule": "table", "seq": 2, "values": {"in": 1}}]


def stamped(events: list[dict[str, Any]], salt: str) -> list[dict[str, Any]]:
    return [{**e, "id": f"{salt}{i}", "ts_ms": 1000 + i + len(salt)} for i, e in enumerate(events)]


@pytest.mark.parametrize(
    ("score", "events", "numpy_file", "passes"),
    [
        (0.715, EVENTS, "/usr/lib/python3/dist-packages/numpy/__init__.py", True),
        (0.705, EVENTS, "/usr/lib/python3/dist-packages/numpy/__init__.py", False),  # drift > 0.01
        (0.719, EVENTS[:1], "/usr/lib/python3/dist-packages/numpy/__init__.py", False),  # lost event
        (0.719, [EVENTS[0], {**EVENTS[1], "values": {"in": 2}}],
         "/usr/lib/python3/dist-packages/numpy/__init__.py", False),  # another value
        (0.719, EVENTS, "/opt/edge-agent/venv/lib/python3.11/site-packages/numpy/__init__.py", False),
    ],
)
def test_verdict(tmp_path: Path, score: float, events: list[dict[str, Any]], numpy_file: str,
                 passes: bool, capsys: pytest.CaptureFixture[str]) -> None:
    compare = load_compare()
    x86 = results(tmp_path / "x86", "x86_64", 0.719, stamped(EVENTS, "a"), "/x/numpy/__init__.py")
    arm = results(tmp_path / "arm", "aarch64", score, stamped(events, "bb"), numpy_file)
    assert compare.main(["aarch64_compare.py", str(x86), str(arm), "bookworm"]) == (0 if passes else 1)
    out = capsys.readouterr().out
    assert ("FAIL" in out) != passes
