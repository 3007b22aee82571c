"""A broker restart mid-run: the worker reconnects and resubscribes, devices re-send, nothing is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.central.store import open_store
from tests.helpers import wait_until
from tests.ingest.ingest_env import IngestEnv
from tests.ingest.ingest_resender import ResendingDevice, ingest_keys_of


@pytest.mark.slow
def test_worker_survives_a_broker_restart(tmp_path: Path, mosquitto) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'ingest.db'}"
    env = IngestEnv(tmp_path, mosquitto.host, mosquitto.port, db)
    keys = ingest_keys_of(env.pub_file)
    dev = ResendingDevice(tmp_path, "cam-r", "site-a", mosquitto.host, mosquitto.port, keys, resend_after_s=1.0)
    env.enrol([dev.enrolment])
    w = env.start_worker("worker-r", ack_interval_ms=50)
    try:
        dev.emit(100)
        dev.pump()
        # mid-run: the worker has stored and acknowledged some of it
        assert wait_until(lambda: dev.acked > 0), "no ack before the restart"
        mosquitto.restart()
        dev.emit(100)
        # re-send what is unacknowledged until nothing waits
        wait_until(lambda: dev.pump() >= 0 and not dev.waiting(), 30, every=0.1)
        assert dev.waiting() == 0
        store = open_store(db)
        assert [s for _, s, _ in store.events()] == list(range(1, 201))
        store.close()
        assert w.proc.poll() is None  # still running
    finally:
        code = w.stop()
        dev.close()
    assert code == 0
    assert "reconnecting" in w.log.read_text()
