"""A full outbox drops by the policy (periodic first, alarms last, oldest first) and the next heartbeat counts it."""

from __future__ import annotations

from pathlib import Path

from agent.config import HealthConfig
from agent.emit import Emitter
from agent.health import Health
from agent.identity import enrolment
from agent.outbox import DropReport, PRIORITY_ALARM, PRIORITY_EVENT, PRIORITY_PERIODIC, Outbox
from agent.privacy import Anonymizer, Identity
from agent.sign import SigningKey
from agent.types import Observation
from agent.verify import Verifier


def _rig(path: Path, max_rows: int = 0, max_bytes: int = 0):  # type: ignore[no-untyped-def]
    key = SigningKey.generate()
    ob = Outbox(path, max_rows=max_rows, max_bytes=max_bytes)
    boot = ob.start_boot()
    anon = Anonymizer(Identity("cam-1", "lab", boot, "m", "0" * 64), ("person",))
    return key, ob, Emitter(anon, key, ob)


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
    assert (ob2.rows, ob2.bytes) == (ob2.stats().rows, ob2.stats().bytes) == (10, ob2.stats().bytes)
    assert ob2.append(lambda s: ("t", b"x")) == 19


def test_byte_bound_applies_too(tmp_path: Path) -> None:
    _, ob, em = _rig(tmp_path / "o.db", max_bytes=5000)
    em.emit([_obs("occupancy", i) for i in range(30)])
    assert 0 < ob.bytes <= 5000 and ob.bytes == ob.stats().bytes
    assert ob.stats().dropped == 30 - ob.rows


def _latest(ob: Outbox, verifier: Verifier) -> dict:  # type: ignore[type-arg]
    return verifier.verify(max(ob.peek(1000), key=lambda r: r.seq).envelope)


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
    assert not health.tick(30.0), "no heartbeat before heartbeat_s"
    (hb_seq,) = em.emit(health.tick(61.0))  # seq 10; storing it drops seq 6
    hb = _latest(ob, verifier)
    assert hb["type"] == "heartbeat" and hb["seq"] == hb_seq == 10
    v = hb["values"]
    assert (v["dropped_events"], v["dropped_seq_first"], v["dropped_seq_last"]) == (3, 1, 5)
    assert v["outbox_rows"] == 6 and v["outbox_bytes"] > 0
    # the gap in seq is explained: every seq below the heartbeat is stored or in the reported range
    assert all(s in kept or v["dropped_seq_first"] <= s <= v["dropped_seq_last"] for s in range(1, 10) if s != 6)
    # the drop its own storing caused (seq 6) is reported by the next one, and only that
    em.emit(health.tick(122.0))  # seq 11; storing it drops seq 7, left for the heartbeat after
    v2 = _latest(ob, verifier)["values"]
    assert (v2["dropped_events"], v2["dropped_seq_first"], v2["dropped_seq_last"]) == (1, 6, 6)
    assert ob.stats().dropped == 5 and ob.drop_report() == DropReport(1, 7, 7)


def test_a_dropped_heartbeat_hands_its_report_to_the_next(tmp_path: Path) -> None:
    key, ob, em = _rig(tmp_path / "o.db", max_rows=3)
    health = Health(ob, HealthConfig(heartbeat_s=1.0), beat_at_start=True)
    verifier = Verifier([enrolment(key, "cam-1", "lab")])
    em.emit([_obs("occupancy", i) for i in range(5)])  # seqs 1-5: 1 and 2 dropped
    em.emit(health.tick(0.0))  # heartbeat 6 reports (2, 1-2); storing it drops the count 3
    em.emit([_obs("line_crossing") for _ in range(3)])  # 7-9 push out counts 4, 5 and heartbeat 6
    assert {r.seq for r in ob.peek(100)} == {7, 8, 9}
    assert ob.drop_report() == DropReport(6, 1, 6), "heartbeat 6's report is pending again, with 3-6"
    em.emit(health.tick(5.0))  # heartbeat 10 in an outbox full of events: dropped at once
    assert {r.seq for r in ob.peek(100)} == {7, 8, 9}
    ob.ack([7, 8])  # the broker comes back for a moment
    (seq,) = em.emit(health.tick(10.0))
    hb = _latest(ob, verifier)
    assert hb["seq"] == seq == 11
    v = hb["values"]
    assert (v["dropped_events"], v["dropped_seq_first"], v["dropped_seq_last"]) == (7, 1, 10)
    assert ob.stats().dropped == 7
    assert ob.drop_report().count == 0


def test_a_crash_before_the_heartbeat_is_stored_re_reports_rather_than_loses(tmp_path: Path) -> None:
    key, ob, em = _rig(tmp_path / "o.db", max_rows=3)
    em.emit([_obs("occupancy", i) for i in range(6)])  # three dropped
    (beat,) = Health(ob, HealthConfig(), beat_at_start=True).tick(0.0)
    assert beat.values["dropped_events"] == 3
    # the process dies here: the heartbeat was never stored, nothing settled
    ob.close()
    ob = Outbox(tmp_path / "o.db", max_rows=3)
    (beat,) = Health(ob, HealthConfig(), beat_at_start=True).tick(0.0)
    assert beat.values["dropped_events"] == 3
    assert (beat.values["dropped_seq_first"], beat.values["dropped_seq_last"]) == (1, 3)
