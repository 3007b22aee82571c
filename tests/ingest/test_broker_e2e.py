"""Done-when 1 end to end (both backends): a mixed stream through a real Mosquitto into
`edge-agent ingest`, signed acks back out, and `edge-agent ingest stats` reading the result."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from agent.errors import SignatureError
from agent.central.store import open_store
from agent.protocol.dsse import ACK_PAYLOAD_TYPE, strict_json, verify_envelope
from tests.helpers import Subscriber, cli, wait_until
from tests.ingest.ingest_env import IngestEnv, publish_all
from tests.ingest.ingest_resender import ingest_keys_of
from tests.ingest.ingest_streams import mixed_stream


@pytest.mark.slow
def test_mixed_stream_through_mosquitto(tmp_path: Path, mosquitto, db_url: str) -> None:  # type: ignore[no-untyped-def]
    stream = mixed_stream(valid_per_device=100, bad=40, seed=11)
    env = IngestEnv(tmp_path, mosquitto.host, mosquitto.port, db_url)
    env.enrol(stream.registry)
    acks = Subscriber(mosquitto.host, mosquitto.port, "edge/v1/+/+/ack")
    worker = env.start_worker("w-e2e")
    try:
        publish_all(mosquitto.host, mosquitto.port, stream.messages)
        store = open_store(db_url)
        expected_rejects = sum(stream.rejects.values())
        done = wait_until(lambda: len(store.events()) == len(stream.valid)
                          and len(store.quarantined()) == expected_rejects, 30)
        assert done, (len(store.events()), len(stream.valid), store.reject_counts(), stream.reasons())
        assert {(d, s): e for d, s, e in store.events()} == stream.valid
        assert Counter((q.reason, q.raw) for q in store.quarantined()) == stream.rejects
        assert not [q for q in store.quarantined() if q.topic.endswith("/ack")]  # never our own acks
        store.close()
        # every device gets a signed ack for its highest contiguous seq (all 100 arrived)
        keys = ingest_keys_of(env.pub_file)

        def last_acks() -> dict[str, int]:
            out: dict[str, int] = {}
            for topic, payload in acks.messages:
                try:
                    body = strict_json(verify_envelope(payload, keys, ACK_PAYLOAD_TYPE).body)
                except SignatureError:
                    continue  # the stream's own junk on ack topics
                assert isinstance(body, dict) and topic == f"edge/v1/{body['site']}/{body['device']}/ack"
                assert set(body) == {"v", "device", "site", "seq", "ts_ms"} and body["v"] == 1
                out[body["device"]] = max(out.get(body["device"], 0), body["seq"])
            return out

        assert wait_until(lambda: last_acks() == {f"dev-{i}": 100 for i in range(4)}, 10), last_acks()
    finally:
        code = worker.stop()
        acks.close()
    assert code == 0, worker.log.read_text()[-800:]
    log = worker.log.read_text()
    assert "Traceback" not in log and "ignored" in log

    r = cli("ingest", "stats", "--config", str(env.config("w-e2e")), "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["events"] == len(stream.valid)
    assert rep["rejects"] == dict(stream.reasons())
    assert rep["devices"]["dev-0"]["events"] == {"count": 100}
    text = cli("ingest", "stats", "--database", db_url)
    assert text.returncode == 0, text.stderr
    assert f"events stored: {len(stream.valid)} from 4 devices" in text.stdout
    assert "tampered: " in text.stdout and "oversized: " in text.stdout
