"""Done-when 1 (in-process, both backends): a mixed stream of >= 10,000 messages stores exactly the
valid events once and quarantines every other message with the right reason."""

from __future__ import annotations

from collections import Counter

import pytest

from agent.central.ingest.classify import REASONS, Classifier
from agent.central.ingest.batch import IngestPipeline, Message
from agent.central.ingest.stats import report
from agent.central.store import open_store
from agent.central.verify import Verifier
from tests.ingest.ingest_streams import RAW_CAP, Stream, mixed_stream


@pytest.fixture(scope="module")
def stream() -> Stream:
    return mixed_stream()


@pytest.mark.slow
def test_mixed_stream_stores_valid_once_and_quarantines_the_rest(stream: Stream, db_url: str) -> None:
    assert len(stream.messages) >= 10_000
    # every kind of bad message is in the stream (seq conflicts: tests/ingest/test_seq_conflict.py)
    assert set(stream.reasons()) == set(REASONS) - {"seq-conflict"}
    store = open_store(db_url)
    pipe = IngestPipeline(Classifier(Verifier(stream.registry), raw_cap=RAW_CAP, worker="w1"), store)
    msgs = [Message(t, p, 1_000 + i) for i, (t, p) in enumerate(stream.messages)]
    for i in range(0, len(msgs), 500):
        pipe.process(msgs[i:i + 500])

    # exactly the valid events, once each, with their exact envelope bytes
    stored = store.events()
    assert len(stored) == len(stream.valid)
    assert {(d, s): env for d, s, env in stored} == stream.valid

    # every other message quarantined with the right reason (matched on its raw bytes)
    # (the same message received again is one row with copies counted: weigh each row by them)
    quarantined = store.quarantined()
    seen: Counter[tuple[str, bytes]] = Counter()
    for q in quarantined:
        seen[(q.reason, q.raw)] += q.copies
    assert seen == stream.rejects
    assert all(len(q.raw) <= RAW_CAP for q in quarantined)
    oversized = [q for q in quarantined if q.reason == "oversized"]
    assert oversized and all(q.size > 4096 and len(q.raw) == RAW_CAP for q in oversized)

    # the signed manifests, verified and stored once each by body SHA-256
    assert {m.sha256: m.envelope for m in store.manifests()} == stream.manifests

    # nothing dropped unrecorded: stored + manifests + quarantined + ignored (non-event topics) = received
    t = pipe.totals
    assert t.manifests == 2 * len(stream.manifests)
    assert t.stored + t.manifests + sum(t.quarantined.values()) + sum(t.ignored.values()) == len(msgs)
    assert sum(t.ignored.values()) == stream.ignored

    # marks and gaps: dev-3 is missing 700-702, so it is acked only up to 699
    rep = report(store)
    assert {d: (v["contiguous"], v["max_seq"]) for d, v in rep["devices"].items()} == {
        "dev-0": (1500, 1500), "dev-1": (1500, 1500), "dev-2": (1500, 1500), "dev-3": (699, 1500)}
    assert rep["devices"]["dev-3"]["gaps"] == [[700, 702]]
    assert rep["rejects"] == dict(stream.reasons()) and rep["manifests"] == 4
    assert sum(v["replayed"] for v in rep["devices"].values()) == stream.reasons()["replayed"]

    # the same stream again: nothing new is stored, every valid copy is now a replay
    again = IngestPipeline(Classifier(Verifier(stream.registry), raw_cap=RAW_CAP), store)
    valid = set(stream.valid.values())
    valid_msgs = [m for m in msgs[:3000] if m.payload in valid]
    r = again.process(valid_msgs)
    assert valid_msgs and r.stored == 0 and r.quarantined == {"replayed": len(valid_msgs)}
    assert len(store.events()) == len(stream.valid)
    store.close()


def test_a_signed_heartbeat_reporting_drops_lets_the_ack_move_on(db_url: str) -> None:
    from agent.protocol.body import encode
    from agent.protocol.enrolment import enrolment
    from agent.protocol.dsse import EVENT_PAYLOAD_TYPE, SigningKey
    from tests.ingest.ingest_streams import event, topic

    key = SigningKey.from_seed(b"h" * 32)
    store = open_store(db_url)
    pipe = IngestPipeline(Classifier(Verifier([enrolment(key, "dev-h", "s1")])), store)

    def msg(seq: int, **kw: object) -> Message:
        return Message(topic("dev-h", str(kw.get("type", "count"))),
                       key.envelope(EVENT_PAYLOAD_TYPE, encode(event("dev-h", seq, **kw))), seq)

    r = pipe.process([msg(1), msg(2), msg(6)])
    assert r.marks["dev-h"].contiguous == 2
    hb = msg(7, type="heartbeat", rule=None, label=None, direction=None,
             values={"dropped_events": 3, "dropped_seq_first": 3, "dropped_seq_last": 5})
    r = pipe.process([hb])
    assert r.marks["dev-h"].contiguous == 7
    rep = report(store)["devices"]["dev-h"]
    assert rep["dropped_by_device"] == [[3, 5]] and rep["events"] == {"count": 3, "heartbeat": 1}
    store.close()
