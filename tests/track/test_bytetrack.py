"""The tracker on synthetic detections: ids survive crossings, flicker and short occlusions."""

from __future__ import annotations

from agent.config import TrackerConfig
from agent.track import ByteTracker
from agent.types import Box, Detection

FPS = 10.0


def det(
    x: float, y: float = 0.3, score: float = 0.9, label: str = "person", w: float = 0.08, h: float = 0.3
) -> Detection:
    return Detection(label, score, Box(x - w / 2, y, x + w / 2, y + h))


def feed(tracker: ByteTracker, frames: list[list[Detection]]) -> list[list]:
    return [tracker.update(dets, k / FPS) for k, dets in enumerate(frames)]


def confirmed_ids(history: list[list]) -> set[int]:
    return {t.track_id for tracks in history for t in tracks if t.confirmed}


def test_a_walking_person_gets_one_confirmed_id_after_min_hits() -> None:
    hist = feed(ByteTracker(), [[det(0.1 + 0.02 * k)] for k in range(30)])
    assert [t[0].confirmed for t in hist[:3]] == [False, False, True]
    assert confirmed_ids(hist) == {1}
    assert abs(hist[-1][0].box.centre[0] - (0.1 + 0.02 * 29)) < 0.01


def test_two_people_crossing_keep_their_ids() -> None:
    frames = [[det(0.2 + 0.02 * k, y=0.30), det(0.8 - 0.02 * k, y=0.35)] for k in range(30)]
    hist = feed(ByteTracker(), frames)
    assert confirmed_ids(hist) == {1, 2}
    last = sorted(hist[-1], key=lambda t: t.box.x0)
    assert [t.track_id for t in last] == [2, 1]  # they swapped places, not ids


def test_missed_detections_and_short_occlusion_keep_the_id() -> None:
    frames = [[det(0.1 + 0.01 * k)] for k in range(20)]
    frames += [[] for _ in range(6)]  # 0.6 s hidden
    frames += [[det(0.1 + 0.01 * k)] for k in range(26, 40)]
    hist = feed(ByteTracker(), frames)
    assert confirmed_ids(hist) == {1}
    coasting = hist[22][0]
    assert coasting.misses == 3 and coasting.confirmed


def test_a_lost_track_ends_after_max_lost_s() -> None:
    tr = ByteTracker(TrackerConfig(max_lost_s=1.0))
    feed(tr, [[det(0.5)] for _ in range(10)])
    assert tr.update([], 1.5) and tr.update([], 1.85)  # last seen at 0.9 s
    assert tr.update([], 2.0) == []


def test_one_frame_false_positive_never_confirms() -> None:
    frames = [[det(0.5)] if k % 5 == 0 else [] for k in range(30)]
    hist = feed(ByteTracker(), frames)
    assert confirmed_ids(hist) == set()


def test_low_score_detections_extend_but_never_start_tracks() -> None:
    tr = ByteTracker(TrackerConfig(high_score=0.6, new_track_score=0.6, low_score=0.1))
    hist = feed(tr, [[det(0.3 + 0.01 * k)] for k in range(10)] + [[det(0.4 + 0.01 * k, score=0.3)] for k in range(10)])
    assert confirmed_ids(hist) == {1} and all(t[0].misses == 0 for t in hist[10:])
    hist = feed(ByteTracker(TrackerConfig(high_score=0.6, new_track_score=0.6)), [[det(0.5, score=0.3)]] * 10)
    assert all(t == [] for t in hist)


def test_classes_are_never_mixed_and_duplicates_do_not_spawn_tracks() -> None:
    frames = [[det(0.5), det(0.5, label="backpack", w=0.07, h=0.28)] for _ in range(10)]
    hist = feed(ByteTracker(), frames)
    assert sorted(t.label for t in hist[-1]) == ["backpack", "person"]
    dup = [[det(0.5, w=0.12), det(0.52, w=0.08)] for _ in range(10)]  # one person, two boxes
    assert len(confirmed_ids(feed(ByteTracker(), dup))) == 1


def test_variable_frame_rate_predicts_further_when_frames_are_dropped() -> None:
    tr = ByteTracker()
    for k in range(10):
        tr.update([det(0.1 + 0.02 * k)], k / FPS)
    # 0.5 s later (4 frames dropped by the newest-frame-wins capture), the person walked on
    out = tr.update([det(0.1 + 0.02 * 14)], 1.4)
    assert [t.track_id for t in out] == [1] and out[0].misses == 0


def test_bench_scene_workload_tracks_every_object() -> None:
    """The `bench scene` workload is sound (its speed is measured by the benchmark, not here)."""
    from agent.bench.scene import tracker_rules_ms

    _, _, observations, confirmed = tracker_rules_ms(20, 40)
    assert confirmed == 20 and observations > 0


# ---------------------------------------------------------------- false-positive control


def test_a_high_scoring_flicker_among_low_scores_never_confirms() -> None:
    """One 0.9 among 0.5s: the median of the track's scores, not its best one, decides."""
    cfg = TrackerConfig(confirm_score=0.6, high_score=0.5, new_track_score=0.5)
    frames = [[det(0.5, score=0.9 if k == 0 else 0.52)] for k in range(30)]
    assert confirmed_ids(feed(ByteTracker(cfg), frames)) == set()
    # the same box scoring like a person is confirmed after min_hits
    hist = feed(ByteTracker(cfg), [[det(0.5, score=0.8)] for _ in range(5)])
    assert [t[0].confirmed for t in hist[:3]] == [False, False, True]


def test_once_confirmed_a_person_whose_score_dips_keeps_the_id() -> None:
    cfg = TrackerConfig(confirm_score=0.6)
    frames = [[det(0.1 + 0.01 * k, score=0.85 if k < 15 else 0.55)] for k in range(40)]
    hist = feed(ByteTracker(cfg), frames)
    assert confirmed_ids(hist) == {1} and hist[-1][0].confirmed


def test_boxes_outside_the_class_limits_never_become_tracks() -> None:
    tiny = [[det(0.5, w=0.02, h=0.05)] for _ in range(20)]  # 0.1 % of the picture
    whole = [[Detection("person", 0.9, Box(0.0, 0.0, 1.0, 0.95))] for _ in range(20)]  # the scene itself
    wide = [[det(0.5, w=0.5, h=0.2)] for _ in range(20)]  # 2.5 times as wide as tall
    for frames in (tiny, whole, wide):
        assert confirmed_ids(feed(ByteTracker(), frames)) == set()
    # another class has no limits unless configured
    assert confirmed_ids(feed(ByteTracker(), [[det(0.5, w=0.02, h=0.05, label="car")] for _ in range(5)])) == {1}
    # and limits are per class: turning the person's off lets the tiny box through
    free = TrackerConfig(limits=())
    assert confirmed_ids(feed(ByteTracker(free), tiny)) == {1}


def test_limits_are_checked_when_the_config_is_read() -> None:
    import pytest

    from agent.config import parse
    from agent.errors import ConfigError

    cfg = parse({"tracker": {"limits": [{"label": "person", "min_area": 0.01}, {"label": "car", "max_area": 0.5}]}})
    assert [lim.label for lim in cfg.tracker.limits] == ["person", "car"]
    for bad, words in (({"label": "person", "min_area": 2.0}, "min_area"),
                       ({"label": "person", "min_area": 0.2, "max_area": 0.1}, "max_area is below"),
                       ({"label": "person", "min_aspct": 0.2}, "did you mean 'min_aspect'")):
        with pytest.raises(ConfigError, match=words):
            parse({"tracker": {"limits": [bad]}})
    with pytest.raises(ConfigError, match="listed twice"):
        parse({"tracker": {"limits": [{"label": "person"}, {"label": "person"}]}})
    with pytest.raises(ConfigError, match="confirm_score"):
        parse({"tracker": {"confirm_score": 1.5}})
