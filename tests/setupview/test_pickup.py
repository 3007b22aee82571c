"""A running agent takes up what the setup view saves at a frame boundary, and counts the open view as blind."""

from __future__ import annotations

import json
from pathlib import Path

from agent import config
from agent.config_watch import ConfigWatch
from agent.protocol.dsse import open_envelope
from agent.setupview import marker, shapes

START = """[detector]
model_dir = "{model_dir}"

[[zones]]
id = "left"
polygon = [[0.0, 0.0], [0.3, 0.0], [0.3, 1.0], [0.0, 1.0]]
"""
NEW = {"zones": [{"id": "table", "polygon": [[0.30, 0.05], [0.85, 0.05], [0.85, 1.0], [0.30, 1.0]]}],
       "lines": [{"id": "exit", "points": [[0.75, 0.0], [0.75, 1.0]]}]}


def test_the_run_loop_takes_up_saved_geometry_and_the_open_view_is_blind(tmp_path: Path, model_dir: Path,
                                                                          clip: Path) -> None:
    from agent.assembly import assemble

    cfg_file = tmp_path / "agent.toml"
    cfg_file.write_text(START.format(model_dir=model_dir))
    cfg = config.replace(config.load(cfg_file), device={"state_dir": str(tmp_path / "state")},
                         source={"kind": "replay", "path": str(clip), "max_frames": 300})
    asm = assemble(cfg, lambda s: None, tmp_path / "events.jsonl", throwaway_key=True)
    wall = [1_000_000]
    assert asm.live is not None and asm.coverage is not None
    watch = ConfigWatch(cfg_file, asm.live, asm.coverage, every_s=0.0, wall_ms=lambda: wall[0])
    asm.pipeline.frame_stages.insert(0, watch)
    p = asm.pipeline
    for frame in p.source.frames():  # 10 frames/s of media time
        if frame.index == 50:
            marker.write(cfg.state_dir, wall[0] + 600_000)  # `setup-view` opens
        if frame.index == 100:
            shapes.save(cfg_file, shapes.from_json(NEW))  # ... the installer saves ...
        if frame.index == 150:
            marker.clear(cfg.state_dir)  # ... and presses Done
        p.step(frame)
    p.finish()
    assert asm.events_out is not None
    asm.events_out.close()
    assert watch.applied == 1
    events = [json.loads(open_envelope(line)[1]) for line in (tmp_path / "events.jsonl").read_bytes().splitlines()]
    counts = {e["rule"]: e["values"] for e in events if e["type"] == "count"}
    # the old zone's interval closed at the swap (frame 100, 10 s): the view was open for its last 5 s
    assert counts["left"]["interval_s"] == 10 and 4 <= counts["left"]["blind_setup_view_s"] <= 6
    # the new zone counts from the swap: 5 of its 20 s were still under the open view
    assert counts["table"]["interval_s"] == 20 and 4 <= counts["table"]["blind_setup_view_s"] <= 6
    assert counts["table"]["observed_s"] + counts["table"]["blind_setup_view_s"] == 20
    # the new shapes count as drawn: the first person is at the table, then leaves through the exit
    assert any(e["type"] == "occupancy" and e["rule"] == "table" and e["values"]["count"] == 1 for e in events)
    assert [e["direction"] for e in events if e["type"] == "line_crossing"] == ["out"]
    # the privacy manifest follows the geometry: events of the new zone cite a new manifest
    before = {e["manifest"] for e in events if e.get("rule") == "left"}
    after = {e["manifest"] for e in events if e.get("rule") == "table"}
    assert len(before) == 1 and len(after) == 1 and before != after
