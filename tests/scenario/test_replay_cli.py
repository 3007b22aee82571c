"""`edge-agent replay VIDEO --config FILE --events-out FILE.jsonl` with the issue's zones-only config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agent.protocol.enrolment import load_registry
from agent.central.verify import Verifier
from tests.helpers import cli

ZONES_ONLY = """\
[[zones]]
id = "table"
polygon = [[0.30, 0.05], [0.85, 0.05], [0.85, 1.0], [0.30, 1.0]]
classes = ["person"]
loiter_after_s = 8
"""


@pytest.mark.slow
def test_zones_only_config_replays_and_reports_the_first_visit(tmp_path: Path, model_dir: Path, clip: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(model_dir, state / "models")
    cfg = tmp_path / "zones.toml"
    cfg.write_text(ZONES_ONLY)
    out = tmp_path / "events.jsonl"
    # frames 0-219: the first visitor arrives (~65), stands at the table and leaves (~195);
    # the second arrives only after frame 225
    r = cli("replay", str(clip), "--config", str(cfg), "--state", str(state), "--events-out", str(out),
            "--max-frames", "220")
    assert r.returncode == 0, r.stderr
    assert "frames: 220" in r.stdout and "frames/s:" in r.stdout
    assert "loitering_start 1" in r.stdout and "loitering_end 1" in r.stdout
    verifier = Verifier(load_registry(state / "device.pub.json"))
    events = [verifier.check(line)[0] for line in out.read_bytes().splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds.count("loitering_start") == 1 and kinds.count("loitering_end") == 1
    end = next(e for e in events if e["type"] == "loitering_end")
    assert end["rule"] == "table" and end["values"] == {"dwell_s_min": 10, "dwell_s_max": 30}
    assert [e["values"]["count"] for e in events if e["type"] == "occupancy"] == [1, 0]
    counts = [e["values"] for e in events if e["type"] == "count"]
    coverage = {"observed_s": 22, "blind_camera_lost_s": 0, "blind_covered_s": 0, "blind_low_fps_s": 0,
                "blind_overload_s": 0, "blind_not_running_s": 0, "blind_setup_view_s": 0}  # all observed
    assert counts == [{"entries": 1, "exits": 1, "interval_s": 22, **coverage}]
    assert all(isinstance(v, int) for e in events for v in e["values"].values())
    assert json.loads(out.read_bytes().splitlines()[0])["payloadType"].startswith("application/vnd.edge-agent.event")


def test_a_zone_counting_a_class_the_detector_drops_is_one_clear_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(ZONES_ONLY.replace('classes = ["person"]', 'classes = ["car"]'))
    r = cli("replay", "nowhere.mp4", "--config", str(cfg), "--state", str(tmp_path / "s"))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "detector.classes" in r.stderr and "Traceback" not in r.stderr


def test_bad_line_and_tracker_keys_are_one_clear_line(tmp_path: Path) -> None:
    for text, needle in [
        ('[[lines]]\nid = "d"\npoints = [[0.5, 0.1], [0.5, 0.1]]\n', "same"),
        ('[[lines]]\nid = "d"\npoints = [[0.5, 0.1], [0.5, 0.9]]\nconfirm_frame = 2\n', "confirm_frames"),
        ("[tracker]\nmin_hits = 0\n", "min_hits"),
        ('[[zones]]\nid = "z"\npolygon = [[0, 0], [1, 0], [1, 1]]\nloiter_after_s = -1\n', "loiter_after_s"),
    ]:
        cfg = tmp_path / "c.toml"
        cfg.write_text(text)
        r = cli("replay", "nowhere.mp4", "--config", str(cfg), "--state", str(tmp_path / "s"))
        assert r.returncode == 2, text
        assert r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr
