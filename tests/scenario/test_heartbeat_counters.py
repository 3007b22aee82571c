"""The heartbeat carries the pipeline's numbers, on the pipeline's clock (repeatable in a replay)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.identity import load_registry
from agent.verify import Verifier
from helpers import cli


@pytest.mark.slow
def test_replay_heartbeats_count_frames_and_outbox(tmp_path: Path, model_dir: Path, clip: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[detector]\nmodel_dir = "{model_dir}"\n[health]\nheartbeat_s = 10\n')
    out = tmp_path / "events.jsonl"
    r = cli("replay", str(clip), "--config", str(cfg), "--state", str(tmp_path / "s"),
            "--events-out", str(out), "--max-frames", "250")
    assert r.returncode == 0, r.stderr
    verifier = Verifier(load_registry(tmp_path / "s" / "device.pub.json"))
    events = [verifier.check(line)[0] for line in out.read_bytes().splitlines()]
    beats = [e for e in events if e["type"] == "heartbeat"]
    # 250 frames at the clip's 10 fps are 25 s of media time: beats at 10 s and 20 s
    assert len(beats) == 2, [e["type"] for e in events]
    assert [b["values"]["frames"] for b in beats] == [101, 201]
    for b in beats:
        v = b["values"]
        assert v["fps_milli"] > 0 and v["camera_errors"] == 0 and v["egress_refused"] == 0
        assert v["dropped_events"] == 0 and v["outbox_rows"] >= 0
        assert "label" not in b and "cell" not in b
    assert json.dumps(beats[0]).count("frames") == 1
