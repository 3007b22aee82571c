"""The Detector contract over both backends: the model (CPU) and the scripted one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from agent import config
from agent.detect import Detector
from agent.detect.factory import build_detector
from agent.types import Frame


def _config(backend: str, models_dir: Path, tmp_path: Path) -> config.Config:
    if backend == "scripted":
        script = tmp_path / "bus.jsonl"
        person = {"label": "person", "score": 0.9, "box": [0.1, 0.2, 0.3, 0.9]}
        script.write_text(json.dumps({"frame": 0, "detections": [person]}) + "\n")
        detector = {"backend": "scripted", "script": str(script)}
    else:
        detector = {"model_dir": str(models_dir), "delegate": "cpu"}
    return config.replace(config.Config(), detector=detector)


@pytest.mark.parametrize("backend", ["tflite", "scripted"])
def test_every_detector_keeps_the_declared_contract(
    backend: str, models_dir: Path, tmp_path: Path, image: Callable[[str], Any]
) -> None:
    det = build_detector(_config(backend, models_dir, tmp_path))
    assert isinstance(det, Detector)
    assert det.model_id and len(det.model_sha256) == 64
    health = det.health()
    assert health["accelerator"] == 0 and health["delegate"] == "cpu"
    assert health["model"] == det.model_id
    found = det.detect(Frame(image("bus.jpg"), 0.0, 0))
    assert found and {d.label for d in found} == {"person"}  # the allow-list: persons only
    for d in found:
        assert 0.0 <= d.box.x0 <= d.box.x1 <= 1.0 and 0.0 <= d.box.y0 <= d.box.y1 <= 1.0
        assert 0.0 <= d.score <= 1.0
