"""The store on both backends: migrations, dedupe by the database, marks across two connections, gaps."""

from __future__ import annotations

import dataclasses

from agent.central.store import open_store
from agent.central.store.migrations import SCHEMA_VERSION
from agent.central.store.base import Store
from agent.central.store.rows import EVENT_COLUMNS, EventRow, QuarantineRow


def row(device: str, seq: int, worker: str = "w") -> EventRow:
    return EventRow(device, seq, "s1", "count", 1, 1000 + seq, f"{seq:032x}", "door", "person",
                    f"edge/v1/s1/{device}/event/count", 5, worker, "{}", b"env-%d" % seq)


def raw(store: Store, text: str, params: tuple = ()) -> list[tuple]:  # type: ignore[type-arg]
    """SQL straight on the store's database (its connection, its placeholder), committed."""
    cur = store.conn.cursor()
    cur.execute(store.sql(text), params)
    rows = cur.fetchall() if cur.description else []
    store.conn.commit()
    return rows


def test_migrations_are_versioned_and_idempotent(db_url: str) -> None:
    a = open_store(db_url)
    assert a.schema_version() == SCHEMA_VERSION
    a.close()
    b = open_store(db_url)  # a second open (another worker) applies nothing twice
    assert b.schema_version() == SCHEMA_VERSION
    (n,), = raw(b, "SELECT COUNT(*) FROM schema_version")
    assert n == SCHEMA_VERSION
    b.close()


def test_two_connections_dedupe_and_agree_on_the_mark(db_url: str) -> None:
    w1, w2 = open_store(db_url), open_store(db_url)
    # worker 1 takes the odd seqs, worker 2 the even ones, interleaved; each advances after commit
    for lo in range(1, 21, 4):
        n1, r1 = w1.store_batch([row("d", lo), row("d", lo + 2)], [])
        n2, r2 = w2.store_batch([row("d", lo + 1), row("d", lo + 3)], [])
        assert (len(n1), len(r1), len(n2), len(r2)) == (2, 0, 2, 0)
        w1.advance(["d"])
        w2.advance(["d"])
    assert w1.advance(["d"])["d"].contiguous == 20
    # the same seqs again through the other connection: replays, quarantined in the same transaction
    new, replayed = w2.store_batch([row("d", 3), row("d", 3), row("d", 21)], [])
    assert [e.seq for e in new] == [21] and [e.seq for e in replayed] == [3, 3]
    # the same message twice is one quarantine row with two copies
    assert [(q.reason, q.copies) for q in w1.quarantined()] == [("replayed", 2)]
    assert w1.reject_counts() == {"replayed": 2}
    assert len(w1.events("d")) == 21
    assert w1.marks()[0].replayed == 2
    w1.close()
    w2.close()


def test_gaps_and_mark_stop_at_the_first_hole(db_url: str) -> None:
    s = open_store(db_url)
    s.store_batch([row("d", q) for q in (2, 3, 4, 8, 9, 12)], [])
    assert s.advance(["d"])["d"].contiguous == 0  # seq 1 never arrived
    assert s.gaps("d") == [(1, 1), (5, 7), (10, 11)]
    s.store_batch([row("d", 1)], [])
    assert s.advance(["d"])["d"].contiguous == 4
    s.store_batch([row("d", q) for q in (5, 6, 7)], [])
    assert s.advance(["d"])["d"].contiguous == 9
    assert s.gaps("d") == [(10, 11)]
    s.close()


def test_long_run_advances_past_one_page(db_url: str) -> None:
    s = open_store(db_url)
    s.store_batch([row("d", q) for q in range(1, 2501)], [])
    assert s.advance(["d"])["d"].contiguous == 2500
    s.close()


def test_quarantine_keeps_reason_detail_and_bytes(db_url: str) -> None:
    s = open_store(db_url)
    q = QuarantineRow(7, "edge/v1/s1/d/event/count", "d", "tampered", "bad-signature: x", 3, b"\x00\xffz")
    s.store_batch([], [q])
    assert s.quarantined() == [q]
    assert s.reject_counts() == {"tampered": 1}
    s.close()


def test_the_same_reject_again_is_one_row_with_its_copies(db_url: str) -> None:
    # a revoked device re-sends what is never acked, for ever: the table grows with distinct
    # messages, not with time (migration 7)
    from agent.central.store.rows import reject_digest

    s = open_store(db_url)
    topic, payload = "edge/v1/s1/d/event/count", b"signed by a revoked key"
    first = QuarantineRow(7, topic, "d", "revoked", "revoked key", len(payload), payload, reject_digest(topic, payload))
    for n in range(5):
        s.store_batch([], [dataclasses.replace(first, received_ms=7 + n)])
    other = QuarantineRow(9, topic, "d", "revoked", "revoked key", 3, b"xyz", reject_digest(topic, b"xyz"))
    s.store_batch([], [other, other])
    got = s.quarantined()
    assert [(q.raw, q.copies, q.received_ms) for q in got] == [(payload, 5, 7), (b"xyz", 2, 9)]
    assert s.reject_counts() == {"revoked": 7}
    (last,), = raw(s, "SELECT last_ms FROM quarantine WHERE raw = ?", (payload,))
    assert last == 11
    s.close()


def test_a_version_1_database_is_upgraded_in_place(db_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import agent.central.store.base as st  # Store.migrate reads MIGRATIONS there

    monkeypatch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:1])
    old = open_store(db_url)
    assert old.schema_version() == 1
    # written as version 1 wrote it (today's store_batch uses later columns)
    v1 = EVENT_COLUMNS[:14]  # the columns version 1 had (source came with migration 5)
    raw(old, f"INSERT INTO events ({', '.join(v1)}) VALUES ({', '.join('?' * len(v1))})", row("d", 1).values()[:14])
    raw(old, "INSERT INTO devices (device, site, max_seq) VALUES (?, ?, ?)", ("d", "s1", 1))
    old.close()
    monkeypatch.undo()
    s = open_store(db_url)
    assert s.schema_version() == SCHEMA_VERSION == 7
    assert s.coverage() == []  # migration 6: the coverage table, empty for events stored before it
    assert len(s.events()) == 1 and s.dropped("d") == []
    assert s.replay_counts() == {}  # an event stored before migration 5 counts as live
    assert s.advance(["d"])["d"].ack_seq == 1 and s.marks()[0].conflict_seq == 0
    s.close()


def test_seqs_the_device_reports_dropped_do_not_hold_the_mark_back(db_url: str) -> None:
    import dataclasses

    s = open_store(db_url)
    s.store_batch([row("d", q) for q in (1, 2, 3, 8, 9)], [])
    assert s.advance(["d"])["d"].contiguous == 3
    # the device's heartbeat (seq 10) says it dropped 4-6 (outbox full): 7 is still missing
    heartbeat = dataclasses.replace(row("d", 10), type="heartbeat", dropped=(4, 6))
    s.store_batch([heartbeat], [])
    assert s.advance(["d"])["d"].contiguous == 6  # 4-6 stepped over, 7 not stored yet
    s.store_batch([row("d", 7)], [])
    assert s.advance(["d"])["d"].contiguous == 10
    assert s.dropped("d") == [(4, 6)]
    assert s.gaps("d") == [(4, 6)]  # still shown as missing, and as dropped by the device
    s.close()


def test_one_seq_with_two_bodies_in_one_batch_is_one_event_and_one_conflict(db_url: str) -> None:
    import dataclasses

    s = open_store(db_url)
    other = dataclasses.replace(row("d", 1), body='{"other":1}', envelope=b"env-other")
    new, replayed = s.store_batch([row("d", 1), other, row("d", 1)], [])
    assert [e.envelope for e in new] == [b"env-1"] and len(replayed) == 1
    assert [e.envelope for e in s.last_conflicts] == [b"env-other"]
    assert sorted(q.reason for q in s.quarantined()) == ["replayed", "seq-conflict"]
    mark = s.advance(["d"])["d"]
    assert (mark.contiguous, mark.conflicts, mark.conflict_seq, mark.ack_seq) == (1, 1, 1, 0)
    s.close()
