"""A running agent takes up what the setup view saves at a frame boundary, and counts the open view as blind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent import config
from agent.device.config_watch import ConfigWatch
from agent.protocol.dsse import open_envelope
from agent.setupview import marker, shapes
from tests.helpers import wait_until

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


def audit_events(path: Path) -> list[dict[str, object]]:
    events = [json.loads(open_envelope(line)[1]) for line in path.read_bytes().splitlines()]
    return [e for e in events if e["type"] in ("setup_view_opened", "setup_view_closed")]


def test_the_running_agent_signs_the_audit_events_of_a_view_beside_it(tmp_path: Path, model_dir: Path,
                                                                      clip: Path) -> None:
    """The agent owns the outbox, so a setup view beside it leaves its audit in the mark: the agent
    signs opened when the mark appears and closed when it closes, and removes the closed mark."""
    from agent.assembly import assemble

    cfg_file = tmp_path / "agent.toml"
    cfg_file.write_text(START.format(model_dir=model_dir))
    cfg = config.replace(config.load(cfg_file), device={"state_dir": str(tmp_path / "state")},
                         source={"kind": "replay", "path": str(clip), "max_frames": 200})
    asm = assemble(cfg, lambda s: None, tmp_path / "events.jsonl", throwaway_key=True)
    assert asm.live is not None and asm.coverage is not None
    wall = [1_000_000]
    watch = ConfigWatch(cfg_file, asm.live, asm.coverage, every_s=0.0, wall_ms=lambda: wall[0])
    asm.pipeline.frame_stages.insert(0, watch)
    p = asm.pipeline
    views = {"a": (20, 60, 1), "b": (100, 101, 0)}  # b opens and closes between two of the agent's looks
    for frame in p.source.frames():
        wall[0] = 1_000_000 + frame.index * 100  # 10 frames/s
        for session, (opens, closes, changed) in views.items():
            opened = 1_000_000 + opens * 100
            if frame.index == opens and session == "a":
                marker.write(cfg.state_dir, opened + 300_000, session=session, opened_ms=opened,
                             duration_s=300, audit=marker.AGENT)
            if frame.index == closes:
                marker.write(cfg.state_dir, opened + 300_000, session=session, opened_ms=opened, duration_s=300,
                             audit=marker.AGENT, closed_ms=1_000_000 + closes * 100 - 50,
                             config_changed=bool(changed))
        if frame.index == 40:
            assert asm.coverage.setup_view  # open: blind
        if frame.index == 80:
            assert not asm.coverage.setup_view and marker.read(cfg.state_dir) is None  # consumed
        p.step(frame)
    p.finish()
    assert asm.events_out is not None
    asm.events_out.close()
    assert [(e["type"], e["values"]) for e in audit_events(tmp_path / "events.jsonl")] == [
        ("setup_view_opened", {"duration_s": 300}),
        ("setup_view_closed", {"duration_s": 4, "config_changed": 1}),
        ("setup_view_opened", {"duration_s": 300}),
        ("setup_view_closed", {"duration_s": 0, "config_changed": 0}),
    ]
    assert marker.read(cfg.state_dir) is None


def test_setup_view_beside_a_running_agent_leaves_outbox_and_broker_to_it(tmp_path: Path, model_dir: Path,
                                                                          clip: Path, mosquitto: Any) -> None:
    """A real `edge-agent setup-view` process while this test's agent holds the outbox: it queues
    nothing, opens no MQTT session under the device's client id, and the agent signs its audit."""
    import os
    import signal
    import subprocess
    import sys

    from tests.helpers import ROOT, Subscriber, cli, stop_by_pid
    from tests.setupview.test_browser import Console

    from agent.assembly import assemble

    state = tmp_path / "state"
    assert cli("keygen", "--out", str(state), "--device-id", "cam-1", "--site", "lab").returncode == 0
    cfg_file = tmp_path / "agent.toml"
    cfg_file.write_text(f'[device]\nid = "cam-1"\nsite = "lab"\n\n[detector]\nmodel_dir = "{model_dir}"\n\n'
                        f'[source]\nkind = "replay"\npath = "{clip}"\n\n'
                        f'[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\n')
    cfg = config.replace(config.load(cfg_file), device={"state_dir": str(state)},
                         source={"kind": "replay", "path": str(clip), "max_frames": 100})
    asm = assemble(cfg, lambda s: None, tmp_path / "events.jsonl")  # the agent: it holds the outbox
    assert asm.live is not None and asm.coverage is not None
    watch = ConfigWatch(cfg_file, asm.live, asm.coverage, every_s=0.0)
    asm.pipeline.frame_stages.insert(0, watch)
    frames = iter(asm.pipeline.source.frames())
    asm.pipeline.step(next(frames))
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "setup-view", "--config", str(cfg_file), "--state", str(state),
         "--port", "0", "--minutes", "2", "--no-qr"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        Console(proc).wait_for("setup view open at")
        mark = marker.read(state)
        assert mark is not None and mark.audit == marker.AGENT and mark.duration_s == 120
        asm.pipeline.step(next(frames))  # the agent's next look: opened
        os.kill(proc.pid, signal.SIGTERM)  # Ctrl-C on the view
        assert proc.wait(timeout=60) == 0
        assert proc.stderr is not None
        err = proc.stderr.read()
        assert "the running agent owns the outbox" in err and "Traceback" not in err, err
        closed = marker.read(state)
        assert closed is not None and closed.closed_ms and not closed.config_changed
        asm.pipeline.step(next(frames))  # ... and closed
    finally:
        stop_by_pid(proc)
    asm.pipeline.finish()
    assert asm.events_out is not None
    asm.events_out.close()
    events = audit_events(tmp_path / "events.jsonl")
    assert [e["type"] for e in events] == ["setup_view_opened", "setup_view_closed"]
    assert events[0]["values"] == {"duration_s": 120} and events[1]["values"]["config_changed"] == 0
    assert marker.read(state) is None
    seqs = [r.seq for r in asm.outbox.peek(1000)]
    assert seqs == list(range(1, len(seqs) + 1))  # one writer: no seq taken by the view, none refused
    asm.outbox.close()
    # the view never connected: no retained status or manifest of its own on the broker. Retained
    # messages reach a new subscriber before anything published after it subscribed (the sentinel).
    sub = Subscriber(mosquitto.host, mosquitto.port, "#")
    sub.client.publish("sentinel", b"1", qos=1)
    assert wait_until(lambda: ("sentinel", b"1") in sub.messages, timeout=20)
    sub.close()
    assert [t for t, _ in sub.messages] == ["sentinel"]


def test_the_mark_belongs_to_the_state_folders_owner(tmp_path: Path) -> None:
    """setup-view runs under sudo, the agent as its service user: the mark must stay readable by it."""
    import os
    import stat

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    if os.geteuid() == 0:  # CI runs as root: the folder belongs to the service user
        os.chown(state, 65534, 65534)
    path = marker.write(state, 2_000, session="s", opened_ms=1_000, duration_s=60, audit=marker.AGENT)
    st, folder = path.stat(), state.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (folder.st_uid, folder.st_gid, 0o600)
    assert marker.is_open(state, 1_500) and not marker.is_open(state, 2_000)
    assert [p.name for p in state.iterdir()] == [marker.MARKER_FILE]  # no temp file left
