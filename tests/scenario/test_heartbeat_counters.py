"""The heartbeat carries the pipeline's numbers, on the pipeline's clock (repeatable in a replay)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.protocol.enrolment import load_registry
from agent.central.verify import Verifier
from tests.helpers import cli


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
        # health: inference percentiles over the beat, the camera streaming, memory, the version
        assert 0 < v["inference_p50_us"] <= v["inference_p95_us"] and v["camera_state"] == 0
        assert v["rss_kb"] > 10_000 and v["agent_version"] >= 100 and v["disk_free_mb"] > 0
        assert "label" not in b and "cell" not in b
    assert json.dumps(beats[0]).count("frames") == 1


@pytest.mark.slow
def test_sigterm_ends_the_run_cleanly_with_open_visits_closed(tmp_path: Path, model_dir: Path, clip: Path) -> None:
    """Review finding: SIGTERM (systemctl stop) killed the loop mid-frame; open visits never ended.
    Now the loop stops, the rules close, and the summary is printed."""
    import signal
    import subprocess
    import sys

    from agent.delivery.outbox import Outbox
    from tests.helpers import ROOT, wait_until

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[device]\nid = "cam-t"\n[detector]\nmodel_dir = "{model_dir}"\n'
        '[source]\nkind = "replay"\nrealtime = true\n'
        f'path = "{clip}"\n'
        '[[zones]]\nid = "table"\npolygon = [[0.30, 0.05], [0.85, 0.05], [0.85, 1.0], [0.30, 1.0]]\n'
        'loiter_after_s = 3\n'
    )
    assert cli("keygen", "--out", str(tmp_path / "s"), "--device-id", "cam-t", "--site", "demo-site").returncode == 0
    argv = [sys.executable, "-m", "agent", "run", "--config", str(cfg), "--state", str(tmp_path / "s")]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outbox = tmp_path / "s" / "outbox.db"
    verifier = Verifier(load_registry(tmp_path / "s" / "device.pub.json"))

    def stored_types() -> list[str]:  # read beside the running agent, as `outbox stats` is
        ob = Outbox(outbox, readonly=True)  # the running agent holds the outbox's lock
        try:
            return [verifier.check(r.envelope)[0]["type"] for r in ob.peek(1000)]
        finally:
            ob.close()

    try:
        # the first visitor stands at the table from about 8 s to 18 s of real time: stop the run
        # once the loitering has started (the visit is open), not after a guessed time
        started = wait_until(lambda: outbox.is_file() and "loitering_start" in stored_types(),
                             60, every=0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert started, "no loitering_start in the outbox"
    assert proc.returncode == 0, err[-800:]
    assert "stopping (SIGTERM)" in err and "frames:" in out
    types = stored_types()
    assert types.count("loitering_start") == 1
    assert types.count("loitering_end") == 1, types  # closed at shutdown, not lost
