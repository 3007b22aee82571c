"""The whole delivery chain with no stand-ins: the device's real Sender in `ack = "ingest"` mode
publishes to a real Mosquitto, two real `edge-agent ingest` workers share the subscription, one
is SIGKILLed mid-stream, and the device lets go of a row only after a signed ingest ack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.protocol.enrolment import keygen
from agent.central.store import open_store
from agent.delivery.outbox import Outbox
from tests.ingest.ingest_env import IngestEnv

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 300


@pytest.mark.slow
def test_device_sender_and_ingest_workers_lose_nothing(tmp_path: Path, mosquitto) -> None:  # type: ignore[no-untyped-def]
    env = IngestEnv(tmp_path, mosquitto.host, mosquitto.port, f"sqlite:///{tmp_path / 'ingest.db'}")
    device = keygen(tmp_path / "dev", "cam-9", "site-z")
    env.enrol([device])
    cfg = tmp_path / "device.toml"
    cfg.write_text(
        f'[device]\nid = "cam-9"\nsite = "site-z"\nkey = "{tmp_path / "dev" / "device.key"}"\n'
        f'state_dir = "{tmp_path / "dev"}"\n'
        f'[outbox]\nack = "ingest"\ningest_keys = "{env.pub_file}"\nresend_s = 1.5\n'
        f'[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\n'
    )
    try:
        a = env.start_worker("worker-a", ack_interval_ms=100)
        b = env.start_worker("worker-b", ack_interval_ms=100)
        emitter = subprocess.Popen(
            [sys.executable, "-m", "agent.tools.emitter", "--config", str(cfg), "--rate", "60",
             "--count", str(EVENTS), "--flush-s", "40"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
    except BaseException:
        env.stop_all()
        raise
    try:
        # let a third of the stream through, then kill worker A without a goodbye
        seen = 0
        assert emitter.stdout is not None
        while seen < EVENTS // 3:
            line = emitter.stdout.readline()
            assert line, emitter.stderr.read() if emitter.stderr else "emitter ended early"
            seen += line.startswith("seq ")
        a.kill()
        out, err = emitter.communicate(timeout=90)
        assert emitter.returncode == 0, err[-800:]
        assert out.strip().endswith("done")
    finally:
        if emitter.poll() is None:
            emitter.kill()
            emitter.wait(timeout=10)
        b_code = b.stop()
        a.stop()
    assert b_code == 0, b.log.read_text()[-800:]

    # every seq stored exactly once at the ingest, byte for byte what the device queued
    store = open_store(env.database)
    try:
        stored = store.events()
        seqs = sorted(s for dv, s, _ in stored if dv == "cam-9")
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= EVENTS
        marks = {m.device: m.contiguous for m in store.marks()}
        assert marks["cam-9"] == len(seqs)
        assert set(store.reject_counts()) <= {"replayed"}
    finally:
        store.close()
    # and the device's outbox let go of everything only because the ingest acknowledged it
    ob = Outbox(tmp_path / "dev" / "outbox.db")
    try:
        stats = ob.stats()
        assert stats.rows == 0 and stats.last_seq == len(seqs)
        assert stats.last_ack == len(seqs)
    finally:
        ob.close()
