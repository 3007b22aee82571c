"""A full outbox drops by the policy (periodic first, alarms last, oldest first) and the next heartbeat counts it."""

from __future__ import annotations

from pathlib import Path

from agent.config import HealthConfig
from agent.delivery.heartbeat import Health
from agent.protocol.enrolment import enrolment
from agent.delivery.outbox import VICTIM, DropReport, PRIORITY_ALARM, PRIORITY_EVENT, PRIORITY_PERIODIC, Outbox
from agent.types import Observation
from agent.central.verify import Verifier
from tests.helpers import device_publishing


def _rig(path: Path, max_rows: int = 0, max_bytes: int = 0):  # type: ignore[no-untyped-def]
    pub = device_publishing(path.parent, outbox_file=path.name, max_rows=max_rows, max_bytes=max_bytes)
    return pub.key, pub.outbox, pub.emitter


def _obs(kind: str, n: int = 0) -> Observation:
    if kind == "alarm":
        return Observation("alarm", "publish_denied", "", 0.0, {"count": n})
    if kind == "occupancy":
        return Observation("occupancy", "scene", "person", 0.0, {"count": n})
    return Observation("line_crossing", "door", "person", 0.0, {"count": 1}, direction="in")


def _seqs_by_priority(ob: Outbox) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {PRIORITY_ALARM: [], PRIORITY_EVENT: [], PRIORITY_PERIODIC: []}
    for row in ob.peek(1000):
        out[row.priority].append(row.seq)
    return out


def test_full_outbox_drops_periodic_first_then_events_alarms_last(tmp_path: Path) -> None:
    key, ob, em = _rig(tmp_path / "o.db", max_rows=10)
    alarms = em.emit([_obs("alarm", i) for i in range(3)])  # seqs 1-3
    events = em.emit([_obs("line_crossing") for _ in range(3)])  # seqs 4-6
    periodic = em.emit([_obs("occupancy", i) for i in range(6)])  # seqs 7-12: two over the bound
    assert alarms == [1, 2, 3] and events == [4, 5, 6] and periodic == list(range(7, 13))
    kept = _seqs_by_priority(ob)
    assert kept[PRIORITY_ALARM] == [1, 2, 3]
    assert kept[PRIORITY_EVENT] == [4, 5, 6]
    assert kept[PRIORITY_PERIODIC] == [9, 10, 11, 12], "the oldest periodic rows go first"
    assert ob.rows == 10 and ob.stats().dropped == 2
    # now only alarms and events: the events go (oldest first) before any alarm
    em.emit([_obs("alarm", 9) for _ in range(6)])  # seqs 13-18
    kept = _seqs_by_priority(ob)
    assert kept[PRIORITY_PERIODIC] == []
    assert kept[PRIORITY_EVENT] == [6] or kept[PRIORITY_EVENT] == []
    assert kept[PRIORITY_ALARM][:3] == [1, 2, 3], "alarms are the last to go"
    assert ob.rows == 10 and ob.stats().dropped == 8
    # counters kept in memory agree with the table, also after reopening
    ob.close()
    ob2 = Outbox(tmp_path / "o.db", max_rows=10)
    stats = ob2.stats()
    assert (ob2.rows, ob2.size_bytes) == (stats.rows, stats.size_bytes) and stats.rows == 10
    assert ob2.append(lambda s: ("t", b"x")) == 19


def test_choosing_what_to_drop_never_scans_the_outbox(tmp_path: Path) -> None:
    """At the limit every append picks a victim: that must be index searches, not a sort of 100k rows."""
    box = Outbox(tmp_path / "o.db", max_rows=3)
    plan = [row[-1] for row in box.db.execute("EXPLAIN QUERY PLAN " + VICTIM)]
    assert plan and all(step.startswith(("SEARCH", "SCALAR SUBQUERY")) for step in plan), plan
    box.close()


def test_byte_bound_applies_too(tmp_path: Path) -> None:
    _, ob, em = _rig(tmp_path / "o.db", max_bytes=5000)
    em.emit([_obs("occupancy", i) for i in range(30)])
    assert 0 < ob.size_bytes <= 5000 and ob.size_bytes == ob.stats().size_bytes
    assert ob.stats().dropped == 30 - ob.rows


def _latest(ob: Outbox, verifier: Verifier) -> dict:  # type: ignore[type-arg]
    return verifier.verify(max(ob.peek(1000), key=lambda r: r.seq).envelope)


def _values(hbs: list[dict]) -> list[tuple[int, int, int]]:  # type: ignore[type-arg]
    return [(h["values"]["dropped_events"], h["values"]["dropped_seq_first"], h["values"]["dropped_seq_last"])
            for h in hbs]


def test_next_heartbeat_counts_the_drops_and_explains_the_gap(tmp_path: Path) -> None:
    key, ob, em = _rig(tmp_path / "o.db", max_rows=6)
    health = Health(ob, HealthConfig(heartbeat_s=60.0), beat_at_start=True)
    verifier = Verifier([enrolment(key, "cam-1", "lab")])
    assert em.emit(health.tick(0.0)) == [1]  # the boot heartbeat: nothing dropped yet
    assert _latest(ob, verifier)["values"]["dropped_events"] == 0
    em.emit([_obs("alarm", 1), _obs("line_crossing")])  # seqs 2-3
    em.emit([_obs("occupancy", i) for i in range(6)])  # seqs 4-9: 9 rows for 6 places
    kept = {r.seq for r in ob.peek(100)}
    assert kept == {2, 3, 6, 7, 8, 9}, "the boot heartbeat and the oldest counts went first"
    assert ob.pending_drops() == [DropReport.run(1, 1), DropReport.run(4, 5)], "two runs: 2-3 are stored"
    assert not health.tick(30.0), "no heartbeat before heartbeat_s"
    seqs = em.emit(health.tick(61.0))  # one heartbeat per run: 10 (drops 6), 11 (drops 7)
    assert seqs == [10, 11]
    hbs = [verifier.verify(r.envelope) for r in ob.peek(100) if r.seq in seqs]
    assert all(h["type"] == "heartbeat" for h in hbs)
    assert _values(hbs) == [(1, 1, 1), (2, 4, 5)]
    assert hbs[0]["values"]["outbox_rows"] == 6 and hbs[0]["values"]["outbox_bytes"] > 0
    # the gap in seq is explained: every seq below the heartbeats is stored or in a reported run
    assert all(s in kept or s in (1, 4, 5) for s in range(1, 10) if s not in (6, 7))
    # the drops their own storing caused (6, 7: one run) are reported by the next beat, and only those
    em.emit(health.tick(122.0))  # seq 12; storing it drops seq 8, left for the heartbeat after
    v2 = _latest(ob, verifier)["values"]
    assert (v2["dropped_events"], v2["dropped_seq_first"], v2["dropped_seq_last"]) == (2, 6, 7)
    assert ob.stats().dropped == 6 and ob.drop_report() == DropReport(1, 8, 8)


def test_a_dropped_heartbeat_hands_its_report_to_the_next(tmp_path: Path) -> None:
    key, ob, em = _rig(tmp_path / "o.db", max_rows=3)
    health = Health(ob, HealthConfig(heartbeat_s=1.0), beat_at_start=True)
    verifier = Verifier([enrolment(key, "cam-1", "lab")])
    em.emit([_obs("occupancy", i) for i in range(5)])  # seqs 1-5: 1 and 2 dropped
    em.emit(health.tick(0.0))  # heartbeat 6 reports (2, 1-2); storing it drops the count 3
    em.emit([_obs("line_crossing") for _ in range(3)])  # 7-9 push out counts 4, 5 and heartbeat 6
    assert {r.seq for r in ob.peek(100)} == {7, 8, 9}
    assert ob.pending_drops() == [DropReport.run(1, 6)], "heartbeat 6's run is pending again, joined by 3-6"
    em.emit(health.tick(5.0))  # heartbeat 10 in an outbox full of events: dropped at once
    assert {r.seq for r in ob.peek(100)} == {7, 8, 9}
    assert ob.pending_drops() == [DropReport.run(1, 6), DropReport.run(10, 10)]
    ob.ack([7, 8])  # the broker comes back for a moment
    assert em.emit(health.tick(10.0)) == [11, 12]
    hbs = [verifier.verify(r.envelope) for r in ob.peek(100) if r.seq in (11, 12)]
    assert _values(hbs) == [(6, 1, 6), (1, 10, 10)]
    assert ob.stats().dropped == 7
    assert ob.pending_drops() == [] and ob.drop_report().count == 0
    ob.ack([11])  # heartbeat 11 delivered: its run is done; 12's stays until 12 leaves
    assert ob.db.execute("SELECT first, last, carrier FROM drops").fetchall() == [(10, 10, 12)]


def test_interleaved_priorities_report_exact_runs_only(tmp_path: Path) -> None:
    """Review finding: P,E,P,E,P with max_rows=3 kept [2, 4, 5] but reported first=1, last=3, count=2;
    an ingest stepping its contiguous mark over 1..3 would ack (delete) seq 2 before it was delivered."""
    # the ingest's own rule for stepping over reported drops
    from agent.central.store.base import skip_dropped

    key, ob, em = _rig(tmp_path / "o.db", max_rows=3)
    verifier = Verifier([enrolment(key, "cam-1", "lab")])
    beats: list[dict] = []  # type: ignore[type-arg]
    em.sink = lambda env: beats.append(verifier.verify(env))
    health = Health(ob, HealthConfig(heartbeat_s=1.0), beat_at_start=True)
    em.emit([_obs("occupancy", 0), _obs("line_crossing"), _obs("occupancy", 1), _obs("line_crossing"),
             _obs("occupancy", 2)])
    assert [r.seq for r in ob.peek(100)] == [2, 4, 5]
    assert ob.pending_drops() == [DropReport.run(1, 1), DropReport.run(3, 3)]
    # a long interleaved stream under pressure, heartbeats (one per pending run) between
    kinds = ["occupancy", "line_crossing", "occupancy", "alarm", "occupancy", "line_crossing", "line_crossing"]
    for i in range(60):
        em.emit([_obs(kinds[i % len(kinds)], i)])
        if i % 5 == 4:
            em.emit(health.tick(float(i)))
    ob.set_limits(0, 0)  # room again: every pending run gets reported
    for t in (100.0, 101.0, 102.0, 103.0):
        em.emit(health.tick(t))
    assert ob.pending_drops() == []
    stored = {r.seq for r in ob.peek(10_000)}
    last_seq = ob.stats().last_seq
    runs = [(v["dropped_events"], v["dropped_seq_first"], v["dropped_seq_last"])
            for v in (b["values"] for b in beats if b["type"] == "heartbeat") if v["dropped_events"]]
    assert len(runs) >= 5
    reported: set[int] = set()
    for count, first, last in runs:
        assert count == last - first + 1, f"run {first}..{last} reported as {count}"
        span = set(range(first, last + 1))
        assert not span & stored, f"run {first}..{last} names seqs still in the outbox: {sorted(span & stored)}"
        reported |= span
    dropped = set(range(1, last_seq + 1)) - stored  # nothing was acked, so every missing seq was dropped
    assert reported == dropped and len(dropped) == ob.stats().dropped, "every drop reported, nothing else"
    # the ingest's contiguous mark, stepping over the reported runs, never passes a seq still to deliver
    mark = skip_dropped(0, [(f, la) for _, f, la in runs])
    assert mark + 1 in stored or mark == last_seq


def test_a_crash_before_the_heartbeat_is_stored_re_reports_rather_than_loses(tmp_path: Path) -> None:
    key, ob, em = _rig(tmp_path / "o.db", max_rows=3)
    em.emit([_obs("occupancy", i) for i in range(6)])  # three dropped
    (beat,) = Health(ob, HealthConfig(), beat_at_start=True).tick(0.0)
    assert beat.values["dropped_events"] == 3
    assert ob.pending_drops() == [DropReport.run(1, 3)], "building a heartbeat settles nothing"
    # the process dies here: the heartbeat was never stored, nothing settled
    ob.close()
    ob = Outbox(tmp_path / "o.db", max_rows=3)
    (beat,) = Health(ob, HealthConfig(), beat_at_start=True).tick(0.0)
    assert beat.values["dropped_events"] == 3
    assert (beat.values["dropped_seq_first"], beat.values["dropped_seq_last"]) == (1, 3)


def test_cached_counters_stay_exact_with_appends_and_acks_in_two_threads(tmp_path: Path) -> None:
    """The frame loop appends while the sender acks: rows/bytes are applied under the outbox lock."""
    import sys
    import threading

    ob = Outbox(tmp_path / "o.db")
    ob.db.execute("PRAGMA synchronous=OFF")  # speed only: durability is not what this test is about
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to open any window between them
    done = threading.Event()

    def acker() -> None:
        after = 0
        while not done.is_set() or ob.peek(1, after):
            rows = ob.peek(7, after)
            if rows:
                ob.ack([r.seq for r in rows])
                after = rows[-1].seq

    t = threading.Thread(target=acker)
    t.start()
    try:
        for _ in range(3000):
            ob.append(lambda s: ("t", b"x" * (1 + s % 13)))
    finally:
        done.set()
        t.join(30)
        sys.setswitchinterval(old)
    s = ob.stats()
    assert (ob.rows, ob.size_bytes) == (s.rows, s.size_bytes) == (0, 0)


def test_an_outbox_from_before_exact_runs_keeps_an_exact_old_report_and_never_a_wide_one(tmp_path: Path) -> None:
    import sqlite3

    for (pending, first, last), want in (((3, 4, 6), [DropReport.run(4, 6)]), ((2, 1, 3), [])):
        path = tmp_path / f"o{pending}.db"
        Outbox(path).close()
        db = sqlite3.connect(path)
        db.executemany("INSERT INTO meta VALUES (?, ?)",
                       [("drop_pending", pending), ("drop_first", first), ("drop_last", last), ("report_open", 1)])
        db.commit()
        db.close()
        ob = Outbox(path)
        assert ob.pending_drops() == want, "1-3 holding 2 drops is not exact: not reported as a range"
        left = ob.db.execute("SELECT COUNT(*) FROM meta WHERE key LIKE 'drop%' OR key LIKE 'report%'").fetchone()
        assert left == (0,)
        ob.close()
