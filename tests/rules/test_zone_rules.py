"""Occupancy, counting, loitering, gathering and unattended objects on synthetic tracks."""

from __future__ import annotations

from agent.config import ZoneConfig
from agent.rules.counting import Counting
from agent.rules.gathering import Gathering
from agent.rules.loitering import Loitering, dwell_bucket
from agent.rules.occupancy import Occupancy
from agent.rules.unattended import Unattended
from agent.rules.zone import ZoneView
from tests.synthtracks import person, run, thing, timeline, types

ROOM = ((0.3, 0.3), (0.7, 0.3), (0.7, 0.9), (0.3, 0.9))


def zone(**kw) -> ZoneConfig:  # type: ignore[no-untyped-def]
    return ZoneConfig(id="room", polygon=ROOM, **kw)


def inside(tid: int, **kw):  # type: ignore[no-untyped-def]
    return person(tid, 0.5, 0.6, **kw)


def outside(tid: int):  # type: ignore[no-untyped-def]
    return person(tid, 0.1, 0.6)


# ---------------------------------------------------------------- occupancy


def test_occupancy_reports_changes_once_settled() -> None:
    frames = [[] for _ in range(5)] + [[inside(1)]] * 10 + [[inside(1), inside(2)]] * 10 + [[]] * 20
    obs = run([Occupancy(ZoneView(zone()), report_every_s=0)], timeline(frames))
    assert [o.values["count"] for o in obs] == [1, 2, 0]
    assert all(o.type == "occupancy" and o.rule == "room" and o.label == "person" for o in obs)


def test_occupancy_ignores_flicker_unconfirmed_and_outside_tracks() -> None:
    frames = [[inside(1)]] * 10 + [[]] + [[inside(1)]] * 10  # one frame without the track
    frames += [[inside(1), inside(9, confirmed=False), outside(3)]] * 10
    obs = run([Occupancy(ZoneView(zone()), report_every_s=0)], timeline(frames))
    assert [o.values["count"] for o in obs] == [1]


def test_occupancy_repeats_periodically() -> None:
    frames = [[inside(1)]] * 250  # 25 s at 10 fps
    obs = run([Occupancy(ZoneView(zone()), report_every_s=10)], timeline(frames))
    assert [o.values["count"] for o in obs] == [1, 1, 1]


# ---------------------------------------------------------------- counting


def test_counting_entries_and_exits_per_interval_with_edge_jitter_once() -> None:
    z = zone(hysteresis=0.02)
    edge = [person(1, 0.3 + (0.01 if k % 2 else -0.01), 0.6) for k in range(30)]  # on the west edge
    frames = [[outside(1)]] * 5 + [[p] for p in edge] + [[inside(1)]] * 20 + [[outside(1)]] * 5
    frames += [[inside(2)]] * 30 + [[]] * 20
    obs = run([Counting(ZoneView(z), every_s=5)], timeline(frames))
    assert {o.type for o in obs} == {"count"}
    assert sum(o.values["entries"] for o in obs) == 2
    assert sum(o.values["exits"] for o in obs) == 2
    assert all(o.values["interval_s"] == 5 for o in obs)


# ---------------------------------------------------------------- loitering


def test_loitering_one_start_and_one_end_per_visit_with_dwell_bucket() -> None:
    frames = [[inside(1)]] * 120 + [[outside(1)]] * 5  # 12 s inside
    obs = run([Loitering(ZoneView(zone(loiter_after_s=8)), 8)], timeline(frames))
    assert types(obs) == ["loitering_start", "loitering_end"]
    assert abs(obs[0].t_s - 8.0) < 0.11
    assert (obs[1].values["dwell_s_min"], obs[1].values["dwell_s_max"]) == (10, 30)


def test_loitering_survives_flicker_and_occlusion_but_not_short_visits() -> None:
    frames = [[inside(1)]] * 40 + [[]] * 3 + [[inside(1, misses=k) for k in (1,)]] * 10 + [[inside(1)]] * 50
    frames += [[]] * 10 + [[inside(2)]] * 50 + [[]] * 10  # 5 s visit: below 8 s
    obs = run([Loitering(ZoneView(zone(loiter_after_s=8)), 8)], timeline(frames))
    assert types(obs) == ["loitering_start", "loitering_end"]


def test_loitering_end_at_close_and_buckets() -> None:
    view = ZoneView(zone(loiter_after_s=2))
    rule = Loitering(view, 2)
    obs = run([rule], timeline([[inside(1)]] * 50))
    obs += rule.close(5.0)
    assert types(obs) == ["loitering_start", "loitering_end"]
    assert dwell_bucket(0) == (0, 10) and dwell_bucket(45) == (30, 60) and dwell_bucket(7200) == (3600, -1)


# ---------------------------------------------------------------- gathering


def crowd(n: int) -> list:
    return [person(i, 0.35 + 0.04 * i, 0.6) for i in range(n)]


def test_gathering_by_rise_starts_once_and_ends_with_hysteresis() -> None:
    counts = [1] * 30 + [2] * 5 + [3] * 5 + [4] * 40 + [3, 4] * 20 + [2] * 40 + [1] * 30
    frames = [crowd(n) for n in counts]
    obs = run([Gathering(ZoneView(zone()), rise=3, window_s=3)], timeline(frames))
    assert types(obs) == ["gathering_start", "gathering_end"]
    start, end = obs
    assert start.values == {"count": 4, "rise": 3, "window_s": 3}
    assert end.values["count"] <= 2


def test_slow_growth_is_not_a_sudden_gathering_but_a_threshold_is() -> None:
    counts = [n for n in range(1, 6) for _ in range(60)]  # +1 every 6 s
    frames = [crowd(n) for n in counts]
    assert run([Gathering(ZoneView(zone()), rise=3, window_s=5)], timeline(frames)) == []
    obs = run([Gathering(ZoneView(zone()), threshold=5)], timeline(frames))
    assert types(obs) == ["gathering_start"]


def test_a_gathering_still_open_at_the_end_of_the_stream_is_closed() -> None:
    """Issue 13 item 10: a replay that ends mid-gathering used to leave it without gathering_end."""
    from agent.rules import close_rules

    frames = [crowd(1)] * 30 + [crowd(5)] * 30
    rules = [Gathering(ZoneView(zone()), threshold=5)]
    obs = run(rules, timeline(frames))
    assert types(obs) == ["gathering_start"]
    end = close_rules(rules, 6.0)
    assert types(end) == ["gathering_end"] and end[0].values["count"] == 5 and end[0].rule == "room"
    assert close_rules(rules, 7.0) == []  # closed once


# ---------------------------------------------------------------- unattended object

UZ = dict(unattended_after_s=10, unattended_radius=0.15, classes=("person",))


def test_a_bag_left_behind_gives_one_event() -> None:
    frames = [[person(1, 0.5, 0.6), thing(7, 0.52, 0.6)]] * 20  # owner next to it, 2 s
    frames += [[person(1, 0.5 + 0.02 * k, 0.6), thing(7, 0.52, 0.6)] for k in range(1, 20)]  # walks off
    frames += [[thing(7, 0.52 + (0.005 if k % 2 else 0), 0.6)] for k in range(150)]  # alone, box jitter
    obs = run([Unattended(zone(**UZ))], timeline(frames))
    assert types(obs) == ["unattended_object"]
    assert obs[0].label == "backpack" and obs[0].values["stationary_s"] >= 10


def test_a_carried_or_attended_bag_is_never_reported() -> None:
    frames = [[person(1, 0.35 + 0.002 * k, 0.6), thing(7, 0.37 + 0.002 * k, 0.6)] for k in range(150)]
    frames += [[person(2, 0.5, 0.6), thing(8, 0.55, 0.6)]] * 150
    assert run([Unattended(zone(**UZ))], timeline(frames)) == []


def test_owner_passing_by_does_not_rearm_the_event() -> None:
    alone = [[thing(7, 0.5, 0.6)]] * 120
    visit = [[person(1, 0.5, 0.6), thing(7, 0.5, 0.6)]] * 10
    obs = run([Unattended(zone(**UZ))], timeline(alone + visit + alone))
    assert types(obs) == ["unattended_object"]


def test_a_departure_on_the_last_frame_is_not_counted_again_at_close() -> None:
    """Review finding: close() handed back update()'s last frame, so its exits counted twice."""
    z = zone(hysteresis=0.0)
    view = ZoneView(z)
    rule = Counting(view, every_s=60)
    frames = [[inside(1)]] * 20 + [[outside(1)]]
    obs = run([rule], timeline(frames))
    last_t = timeline(frames)[-1][0]
    obs += rule.close(last_t)
    assert sum(o.values["entries"] for o in obs) == 1
    assert sum(o.values["exits"] for o in obs) == 1


def test_a_gathering_in_a_zone_of_several_classes_is_a_gathering_of_persons() -> None:
    """Review finding: a zone watching two classes gave gatherings an empty label, which the
    privacy allow-list (rightly) refused, so they were lost without a trace."""
    from agent.privacy.anonymizer import Anonymizer, Identity

    bikes = [thing(100 + i, 0.4 + 0.05 * i, 0.5, label="bicycle") for i in range(5)]
    g = Gathering(ZoneView(zone(classes=("person", "bicycle"))), threshold=3)
    obs = run([g], timeline([bikes] * 20 + [crowd(4) + bikes] * 30))
    start = [o for o in obs if o.type == "gathering_start"]
    assert len(start) == 1 and start[0].label == "person" and start[0].values["count"] == 4
    anon = Anonymizer(Identity("cam", "site", 1, "m", "0" * 64), ("person", "bicycle"))
    event = anon.event(start[0], 1, 0)
    assert event is not None and event.label == "person"


def test_a_crowd_present_from_the_start_is_one_gathering_until_it_thins() -> None:
    """Review finding: with baseline == peak the end level equalled the count, so a standing
    crowd ended and restarted every hold_s."""
    g = Gathering(ZoneView(zone()), threshold=3)
    frames = [crowd(4)] * 100 + [crowd(2)] * 40
    obs = run([g], timeline(frames))
    assert types(obs) == ["gathering_start", "gathering_end"]
    assert obs[1].t_s >= timeline(frames)[100][0]
