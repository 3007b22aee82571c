"""Issue 13 item 3: replayed footage is never mistaken for live events. A replay publishes only
with --publish; every event it makes carries the signed `source: replay`, which the ingest
stores and `ingest stats` shows apart."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.helpers import cli, replay, wait_until
from tests.ingest.ingest_env import IngestEnv

from agent.central.ingest.batch import IngestPipeline, Message
from agent.central.ingest.classify import Classifier
from agent.central.ingest.stats import lines, report
from agent.central.store import open_store
from agent.central.verify import Verifier
from agent.delivery.outbox import Outbox
from agent.protocol.enrolment import load_registry


def device(tmp_path: Path, model_dir: Path, mqtt: str) -> tuple[Path, Path]:
    st = tmp_path / "st"
    assert cli("keygen", "--out", str(st), "--device-id", "cam-r", "--site", "lab").returncode == 0
    shutil.copytree(model_dir, st / "models")
    cfg = tmp_path / "device.toml"
    cfg.write_text(f'[health]\nheartbeat_s = 0.05\n[outbox]\nack = "broker"\n{mqtt}')
    return st, cfg


def test_replay_events_are_marked_and_the_ingest_counts_them_apart(
    tmp_path: Path, model_dir: Path, clip: Path
) -> None:
    st, cfg = device(tmp_path, model_dir, "")
    out = tmp_path / "events.jsonl"
    r = replay(clip, cfg, st, "--events-out", str(out), "--max-frames", "5")
    assert r.returncode == 0, r.stderr
    registry = load_registry(st / "device.pub.json")
    envelopes = out.read_bytes().splitlines()
    bodies = [Verifier(registry).verify(e) for e in envelopes]
    assert bodies and all(b["source"] == "replay" for b in bodies)  # signed with the rest
    store = open_store(f"sqlite:///{tmp_path / 'ingest.db'}")
    try:
        pipe = IngestPipeline(Classifier(Verifier(registry)), store)
        msgs = [
            Message(f"edge/v1/lab/cam-r/event/{b['type']}", e, 1) for b, e in zip(bodies, envelopes)
        ]
        assert pipe.process(msgs).stored == len(msgs)
        rep = report(store)
        assert rep["from_replay"] == len(msgs) and rep["devices"]["cam-r"]["from_replay"] == len(
            msgs
        )
        text = "\n".join(lines(rep))
        assert f"0 live, {len(msgs)} from recorded footage" in text and "RECORDED FOOTAGE" in text
        assert store.schema_version() >= 5
    finally:
        store.close()
    assert "--publish" in cli("replay", "--help").stdout


def test_publish_needs_a_broker_to_publish_to(tmp_path: Path, model_dir: Path, clip: Path) -> None:
    st, cfg = device(tmp_path, model_dir, "")
    r = cli("replay", str(clip), "--config", str(cfg), "--state", str(st), "--publish")
    assert r.returncode == 2 and "[mqtt]" in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.slow
def test_replay_publishes_only_with_publish(
    tmp_path: Path, model_dir: Path, clip: Path, mosquitto
) -> None:  # type: ignore[no-untyped-def]
    st, cfg = device(
        tmp_path, model_dir, f'[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\n'
    )
    env = IngestEnv(tmp_path, mosquitto.host, mosquitto.port, f"sqlite:///{tmp_path / 'ingest.db'}")
    env.enrol(load_registry(st / "device.pub.json"))
    worker = env.start_worker("w1")
    try:
        # without --publish: nothing is sent, so a broker-acked outbox keeps every row
        r = replay(clip, cfg, st, "--max-frames", "5")
        assert r.returncode == 0, r.stderr
        ob = Outbox(st / "outbox.db")
        kept = ob.stats()
        ob.close()
        assert kept.rows == kept.last_seq > 0
        # with --publish: everything goes out, marked, and the ingest stores it as replayed footage
        r = replay(clip, cfg, st, "--max-frames", "5", "--publish")
        assert r.returncode == 0, r.stderr
        ob = Outbox(st / "outbox.db")
        total = ob.stats().last_seq
        ob.close()
        store = open_store(env.database)
        try:
            assert wait_until(lambda: len(store.events("cam-r")) >= total, timeout=30)
        finally:
            store.close()
    finally:
        assert worker.stop() == 0
    stats = cli("ingest", "stats", "--database", env.database, "--json")
    rep = json.loads(stats.stdout)
    assert rep["from_replay"] == rep["events"] == total
