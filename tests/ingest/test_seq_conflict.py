"""Seq conflicts: after a key rotation on a re-imaged device (seq restarts at 1), validly signed new
events that reuse stored seqs are quarantined as seq-conflict and never acked past."""

from __future__ import annotations

from dataclasses import replace

from agent.protocol.body import encode
from agent.protocol.enrolment import enrolment
from agent.central.ingest.acks import AckScheduler
from agent.central.ingest.classify import Classifier
from agent.central.ingest.batch import IngestPipeline, Message
from agent.central.ingest.stats import report
from agent.central.store import open_store
from agent.protocol.dsse import EVENT_PAYLOAD_TYPE, SigningKey
from agent.central.verify import Verifier
from tests.helpers import cli
from tests.ingest.ingest_streams import event, topic


def test_reused_seqs_with_another_body_are_conflicts_and_hold_the_ack(db_url: str) -> None:
    old, new = SigningKey.from_seed(b"o" * 32), SigningKey.from_seed(b"n" * 32)
    store = open_store(db_url)
    first = [old.envelope(EVENT_PAYLOAD_TYPE, encode(event("cam-1", s))) for s in (1, 2, 3)]
    pipe = IngestPipeline(Classifier(Verifier([enrolment(old, "cam-1", "s1")])), store)
    r = pipe.process(Message(topic("cam-1"), e, 1) for e in first)
    assert r.stored == 3 and r.marks["cam-1"].ack_seq == 3

    # rotation: old key revoked, new key enrolled, the device restarts at seq 1 (fresh outbox)
    registry = [replace(enrolment(old, "cam-1", "s1"), status="revoked"), enrolment(new, "cam-1", "s1")]
    pipe.classifier.verifier = Verifier(registry)
    second = [new.envelope(EVENT_PAYLOAD_TYPE, encode(event("cam-1", s))) for s in (1, 2, 4)]
    r = pipe.process(Message(topic("cam-1"), e, 2) for e in [*second, second[0]])
    assert r.stored == 1  # seq 4 is new
    assert r.quarantined == {"seq-conflict": 3}  # seq 1 twice and seq 2: another body than stored
    mark = r.marks["cam-1"]
    assert (mark.contiguous, mark.conflict_seq, mark.ack_seq) == (4, 1, 0)
    acks = AckScheduler(0)
    acks.mark("cam-1", "s1", 3)  # an earlier batch's pending ack must not go out either
    acks.mark("cam-1", "s1", mark.ack_seq, capped=True)
    assert acks.due(10) == []

    # an identical re-send of a stored event is still a plain replay; the hold stays
    pipe.classifier.verifier = Verifier([enrolment(old, "cam-1", "s1")])
    r = pipe.process([Message(topic("cam-1"), first[1], 3)])
    assert r.quarantined == {"replayed": 1} and r.marks["cam-1"].ack_seq == 0
    assert [e for _, _, e in store.events("cam-1")] == [*first, second[2]]

    rep = report(store)
    assert rep["rejects"] == {"seq-conflict": 3, "replayed": 1}
    assert rep["devices"]["cam-1"]["seq_conflicts"] == 3 and rep["devices"]["cam-1"]["acked_up_to"] == 0
    store.close()

    # the operator, having exported the quarantined envelopes, releases the hold
    c = cli("ingest", "clear-conflict", "cam-1", "--database", db_url)
    assert c.returncode == 0 and "from seq 1 cleared" in c.stdout, c.stderr
    store = open_store(db_url)
    assert store.advance(["cam-1"])["cam-1"].ack_seq == 4
    store.close()
