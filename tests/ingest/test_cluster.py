"""Done-when 2 (both backends): two `edge-agent ingest` workers on one shared subscription against a
real Mosquitto split the load with no duplicates and no loss; one is SIGKILLed mid-run, the other
goes on, the devices re-send what was not acknowledged, and nothing is lost."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.central.store import open_store
from tests.helpers import wait_until
from tests.ingest.ingest_env import IngestEnv
from tests.ingest.ingest_resender import ResendingDevice, ingest_keys_of

DEVICES = 4
EVENTS_PER_DEVICE = 400


@pytest.mark.slow
def test_two_workers_split_the_load_and_survive_a_kill(tmp_path: Path, mosquitto, db_url: str) -> None:  # type: ignore[no-untyped-def]
    env = IngestEnv(tmp_path, mosquitto.host, mosquitto.port, db_url)
    env.registry.write_text('{"devices": []}')
    keys = ingest_keys_of(env.pub_file)
    devices = [ResendingDevice(tmp_path / "dev", f"cam-{i}", "site-a", mosquitto.host, mosquitto.port, keys)
               for i in range(DEVICES)]
    env.enrol([d.enrolment for d in devices])
    try:
        a = env.start_worker("worker-a", ack_interval_ms=100)
        b = env.start_worker("worker-b", ack_interval_ms=100)
        store = open_store(db_url)
    except BaseException:
        env.stop_all()
        for d in devices:
            d.close()
        raise
    killed_at_ms = 0
    try:
        for step in range(EVENTS_PER_DEVICE // 10):
            for d in devices:
                d.emit(10)
                d.pump()
            if step == EVENTS_PER_DEVICE // 20:  # half-way: worker A dies without a goodbye
                a_working = wait_until(lambda: "worker-a" in store.by_worker(), 20)
                assert a_working, "worker A stored nothing"
                a.kill()
                killed_at_ms = int(time.time() * 1000)

        def all_acknowledged() -> bool:  # re-send what is still unacknowledged, then look
            for d in devices:
                d.pump()
            return not any(d.waiting() for d in devices)

        wait_until(all_acknowledged, 40, every=0.1)
        waiting = {d.device: d.waiting() for d in devices}
        assert not any(waiting.values()), f"rows never acknowledged: {waiting}"

        # nothing lost, nothing twice: every emitted envelope stored exactly once, byte for byte
        stored = store.events()
        assert len(stored) == DEVICES * EVENTS_PER_DEVICE
        assert {(dv, s): e for dv, s, e in stored} == {
            (d.device, s): e for d in devices for s, e in d.emitted.items()}
        assert all(m.contiguous == EVENTS_PER_DEVICE for m in store.marks())
        # both workers took a share before the kill, and B carried on alone after it
        by_worker = store.by_worker()
        assert set(by_worker) == {"worker-a", "worker-b"}, by_worker
        assert by_worker["worker-a"][2] > 0 and by_worker["worker-a"][1] < killed_at_ms + 1000
        assert by_worker["worker-b"][1] > killed_at_ms
        # every reject is a re-sent copy of an event already stored: no other reason
        assert set(store.reject_counts()) <= {"replayed"}
        assert not any(d.bad_acks for d in devices)
        resends = sum(d.resends for d in devices)
        print(f"by worker {by_worker}; resends {resends}; replays {store.reject_counts()}")
    finally:
        store.close()
        code = b.stop()
        a.stop()
        for d in devices:
            d.close()
    assert code == 0, b.log.read_text()[-800:]
