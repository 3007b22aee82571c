"""The scripted detector: a selectable backend that keeps the Detector contract without a model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from agent import config
from agent.assembly import assemble
from agent.detect import Detector
from agent.detect.factory import build_detector
from agent.detect.scripted import ScriptedDetector
from agent.errors import ConfigError
from agent.types import Box, Detection, Frame

PERSON = {"label": "person", "score": 0.9, "box": [0.1, 0.2, 0.3, 0.9]}
CAT = {"label": "cat", "score": 0.8, "box": [0.5, 0.5, 0.6, 0.6]}


def _frame(index: int) -> Frame:
    return Frame(np.zeros((4, 4, 3), dtype=np.uint8), index / 10, index)


def _script(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    path = tmp_path / "script.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_selected_by_config_keeps_the_contract_and_the_allow_list(tmp_path: Path) -> None:
    path = _script(tmp_path, [{"frame": 1, "detections": [PERSON, CAT]}])
    cfg = config.replace(config.Config(), detector={"backend": "scripted", "script": str(path)})
    det = build_detector(cfg)
    assert isinstance(det, Detector)
    assert det.model_id == "scripted"
    assert det.model_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert det.health()["accelerator"] == 0
    assert det.detect(_frame(0)) == []
    assert det.detect(_frame(1)) == [Detection("person", 0.9, Box(0.1, 0.2, 0.3, 0.9))]
    every_class = build_detector(cfg, all_classes=True)
    assert [d.label for d in every_class.detect(_frame(1))] == ["person", "cat"]


def test_a_function_of_the_frame_is_a_script() -> None:
    det = ScriptedDetector(lambda f: [Detection("person", 1.0, Box(0, 0, f.index / 10, 1))])
    assert det.detect(_frame(5))[0].box.x1 == 0.5


@pytest.mark.parametrize("line, message", [
    ("{not json", "line 1: not JSON"),
    ('{"detections": []}', 'line 1: needs "frame"'),
    ('{"frame": 0, "detections": [{"label": "person", "score": 2, "box": [0, 0, 1, 1]}]}',
     "score must be"),
    ('{"frame": 0, "detections": [{"label": "person", "box": [0.5, 0, 0.4, 1]}]}',
     "not normalized"),
])
def test_a_malformed_script_is_one_config_error_naming_the_line(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        ScriptedDetector.from_file(path)


def test_the_backend_needs_a_script_and_a_readable_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs detector.script"):
        config.replace(config.Config(), detector={"backend": "scripted"})
    missing = str(tmp_path / "nope")
    cfg = config.replace(config.Config(), detector={"backend": "scripted", "script": missing})
    with pytest.raises(ConfigError, match="cannot read detector.script"):
        build_detector(cfg)


def test_a_scripted_replay_runs_the_whole_pipeline_without_a_model(tmp_path: Path) -> None:
    """The synthetic camera and scripted detections: rules fire, the manifest cites the script."""
    rows = [{"frame": n, "detections": [PERSON]} for n in range(4, 12)]
    path = _script(tmp_path, rows)
    cfg = config.replace(config.Config(), device={"state_dir": str(tmp_path / "state")},
                         detector={"backend": "scripted", "script": str(path)},
                         source={"kind": "synthetic", "max_frames": 40, "fps": 4.0,
                                 "width": 64, "height": 48})
    asm = assemble(cfg, lambda s: None, throwaway_key=True)
    try:
        summary = asm.pipeline.run()
    finally:
        asm.outbox.close()
    assert summary.frames == 40
    assert summary.events["occupancy"] == 2, summary.events  # one person arrived, then left


def test_replay_takes_scripted_detections_from_the_command_line(tmp_path: Path, clip: Path) -> None:
    from tests.helpers import cli

    path = _script(tmp_path, [{"frame": n, "detections": [PERSON]} for n in range(2, 8)])
    r = cli("replay", str(clip), "--max-frames", "30", "--state", str(tmp_path / "s"),
            "--detections", str(path), "--events-out", str(tmp_path / "events.jsonl"))
    assert r.returncode == 0, r.stderr
    assert "frames: 30" in r.stdout and "occupancy 2" in r.stdout
    bad = cli("replay", str(clip), "--state", str(tmp_path / "s"),
              "--detections", str(tmp_path / "none"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "detector.script" in bad.stderr
