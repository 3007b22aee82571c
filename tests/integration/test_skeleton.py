"""The walking skeleton through the real parts: clip -> SSD model -> event -> signed -> outbox -> broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.protocol.enrolment import load_registry
from agent.central.verify import Verifier
from tests.helpers import Subscriber, cli


def _config(tmp_path: Path, model_dir: Path, extra: str = "") -> Path:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(f'[device]\nid = "cam-1"\nsite = "lab"\n\n[detector]\nmodel_dir = "{model_dir}"\n{extra}')
    return cfg


@pytest.mark.slow
def test_replay_real_clip_gives_verified_person_events(tmp_path: Path, model_dir: Path, clip: Path) -> None:
    out = tmp_path / "events.jsonl"
    r = cli("replay", str(clip), "--config", str(_config(tmp_path, model_dir)), "--state", str(tmp_path / "s"),
            "--events-out", str(out), "--max-frames", "400")
    assert r.returncode == 0, r.stderr
    assert "frames: 400" in r.stdout
    assert "throwaway device identity" in r.stderr
    verifier = Verifier(load_registry(tmp_path / "s" / "device.pub.json"))
    events = [verifier.check(line)[0] for line in out.read_bytes().splitlines()]
    counts = [e["values"]["count"] for e in events if e["type"] == "occupancy"]
    assert counts and max(counts) >= 1, "the real model found no person in the real clip"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

    v = cli("verify", str(out), "--registry", str(tmp_path / "s" / "device.pub.json"))
    assert v.returncode == 0, v.stdout
    assert f"verified: {len(events)} ok, 0 bad" in v.stdout


@pytest.mark.slow
def test_replay_publishes_to_a_real_broker(tmp_path: Path, model_dir: Path, clip: Path, mosquitto) -> None:  # type: ignore[no-untyped-def]
    sub = Subscriber(mosquitto.host, mosquitto.port, "edge/v1/lab/cam-1/event/#")
    try:
        cfg = _config(tmp_path, model_dir, f'\n[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\n')
        r = cli("replay", str(clip), "--config", str(cfg), "--state", str(tmp_path / "s"), "--max-frames", "400",
                "--publish")
        assert r.returncode == 0, r.stderr
        assert "outbox: 0 envelopes waiting" in r.stdout
    finally:
        sub.close()
    verifier = Verifier(load_registry(tmp_path / "s" / "device.pub.json"))
    events = [verifier.check(p)[0] for p in sub.payloads()]
    assert events and all(e["device"] == "cam-1" for e in events)
    assert any(e["values"].get("count", 0) >= 1 for e in events)
    assert json.loads(json.dumps(events[0]))["type"] == "occupancy"
