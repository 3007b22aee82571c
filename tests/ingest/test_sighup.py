"""SIGHUP makes a running `edge-agent ingest` reload its registry even when the file looks unchanged."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from agent.protocol.body import encode
from agent.protocol.enrolment import enrolment
from agent.central.ingest.worker import RegistryWatch
from agent.central.store import open_store
from agent.protocol.dsse import EVENT_PAYLOAD_TYPE, SigningKey
from tests.helpers import Subscriber, wait_until
from tests.ingest.ingest_env import IngestEnv, publish_all
from tests.ingest.ingest_streams import event, topic


@pytest.mark.slow
def test_sighup_reloads_the_registry(tmp_path: Path, mosquitto) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'ingest.db'}"
    env = IngestEnv(tmp_path, mosquitto.host, mosquitto.port, db)
    key = SigningKey.from_seed(b"s" * 32)
    rec = enrolment(key, "dev-0", "s1").to_json()

    def registry_text(status: str) -> str:  # the same length either way
        return json.dumps({"devices": [rec | {"status": status}]}).replace('"active"', '"active" ')

    env.registry.write_text(registry_text("active"))
    w = env.start_worker("worker-h")
    try:
        acks = Subscriber(mosquitto.host, mosquitto.port, "edge/v1/s1/dev-0/ack")
        store = open_store(db)
    except BaseException:
        w.stop()
        raise
    try:
        def send(seq: int) -> None:
            publish_all(mosquitto.host, mosquitto.port,
                        [(topic("dev-0"), key.envelope(EVENT_PAYLOAD_TYPE, encode(event("dev-0", seq))))])

        send(1)
        assert wait_until(lambda: len(store.events()) == 1, 10)
        watch = RegistryWatch(env.registry)  # the worker's own file watch, polled once a second
        # rewrite the file in place, same size, same inode, old mtime: the file watch cannot see it
        st = env.registry.stat()
        with open(env.registry, "r+") as fh:
            fh.write(registry_text("revoked"))
        os.utime(env.registry, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert env.registry.stat().st_size == st.st_size
        # what each of the worker's periodic polls sees: no change (checked, not waited for)
        assert watch.poll() is None and watch.reloads == 0
        send(2)
        assert wait_until(lambda: len(store.events()) == 2, 10)  # still trusted: no reload yet
        os.kill(w.proc.pid, signal.SIGHUP)
        assert wait_until(lambda: "registry reloaded" in w.log.read_text(), 10)
        # reloaded by the SIGHUP, not by a poll before it
        assert w.log.read_text().count("registry reloaded") == 1
        send(3)
        assert wait_until(lambda: store.reject_counts() == {"revoked": 1}, 10)
        assert len(store.events()) == 2
        assert wait_until(lambda: len(acks.messages) >= 1, 5)
    finally:
        store.close()
        acks.close()
        code = w.stop()
    assert code == 0
