"""Line crossing: direction, hysteresis, confirmation, displacement, and the known failure modes.

The line is vertical at x = 0.5, drawn top to bottom, so side A (left of a->b on screen) is
x > 0.5 and a walk from right to left is "in"; left to right is "out".
"""

from __future__ import annotations

from agent.config import LineConfig
from agent.rules.line import LineCrossing
from tests.synthtracks import lerp, person, run, timeline

LINE = LineConfig(id="door", points=((0.5, 0.0), (0.5, 1.0)), hysteresis=0.02, min_displacement=0.05,
                  confirm_frames=2)


def walk(tid: int, xs: list[float], y: float = 0.6, **kw) -> list[list]:  # type: ignore[no-untyped-def]
    return [[person(tid, x, y, **kw)] for x in xs]


def xs_between(a: float, b: float, n: int) -> list[float]:
    return [lerp((a, 0), (b, 0), k, n)[0] for k in range(n)]


def crossings(frames) -> list[str]:  # type: ignore[no-untyped-def]
    return [o.direction for o in run([LineCrossing(LINE)], timeline(frames)) if o.type == "line_crossing"]


def test_a_walk_across_counts_once_with_its_direction() -> None:
    assert crossings(walk(1, xs_between(0.2, 0.8, 20))) == ["out"]
    assert crossings(walk(1, xs_between(0.8, 0.2, 20))) == ["in"]


def test_standing_on_the_line_with_jitter_counts_once_opendatacam_204() -> None:
    """Stop-and-go on the line: OpenDataCam #204 counted one car 15 times."""
    jitter = [0.5 + (0.015 if k % 2 else -0.015) for k in range(60)]  # inside the +-0.02 band
    frames = walk(1, xs_between(0.2, 0.49, 10) + jitter + xs_between(0.51, 0.8, 10))
    assert crossings(frames) == ["out"]


def test_id_switches_while_hovering_at_the_line_do_not_recount_opendatacam_204() -> None:
    """The tracker loses the stopped car and gives it new ids next to the line: still one count."""
    frames = walk(1, xs_between(0.2, 0.56, 15))
    for tid in range(2, 8):  # each new id is born already past the line, then jitters there
        frames += walk(tid, [0.53, 0.56, 0.54, 0.57, 0.55])
    assert crossings(frames) == ["out"]


def test_a_real_crossing_back_counts_again() -> None:
    frames = walk(1, xs_between(0.2, 0.8, 15) + xs_between(0.8, 0.2, 15) + xs_between(0.2, 0.8, 15))
    assert crossings(frames) == ["out", "in", "out"]


def test_one_frame_flicker_to_the_other_side_counts_nothing_supervision_2598() -> None:
    """supervision #2598: A,A,A,B,A,A,A counted a crossing into A; three flickers counted three."""
    sides = [0.3, 0.3, 0.3, 0.7, 0.3, 0.3, 0.3] + [0.3, 0.7, 0.3, 0.3, 0.7, 0.3, 0.3]
    assert crossings(walk(1, sides)) == []


def test_unconfirmed_tracks_never_count_supervision_2578() -> None:
    """supervision #2578: unconfirmed tracks sharing id -1 on both sides inflated counts to 97."""
    frames = [[person(-1, x, 0.6, confirmed=False)] for x in [0.2, 0.8] * 6]
    frames += [[person(7, x, 0.6, confirmed=False)] for x in xs_between(0.2, 0.8, 20)]
    assert crossings(frames) == []


def test_a_track_confirmed_after_crossing_is_not_counted_for_it() -> None:
    frames = walk(1, xs_between(0.2, 0.6, 8), confirmed=False) + walk(1, xs_between(0.6, 0.9, 8))
    assert crossings(frames) == []


def test_small_travel_across_the_band_is_not_a_crossing() -> None:
    line = LineConfig(id="door", points=((0.5, 0.0), (0.5, 1.0)), hysteresis=0.02, min_displacement=0.1)
    frames = walk(1, [0.47] * 5 + [0.53] * 5)  # 0.06 of travel < 0.1
    assert [o for o in run([LineCrossing(line)], timeline(frames))] == []


def test_passing_beyond_the_end_of_the_segment_is_not_a_crossing() -> None:
    short = LineConfig(id="gate", points=((0.5, 0.0), (0.5, 0.4)))
    frames = walk(1, xs_between(0.2, 0.8, 20), y=0.7)  # below the gate's lower end
    assert run([LineCrossing(short)], timeline(frames)) == []
    frames = walk(1, xs_between(0.2, 0.8, 20), y=0.3)
    assert len(run([LineCrossing(short)], timeline(frames))) == 1


def test_occlusion_mid_crossing_keeps_the_track_and_counts_once() -> None:
    frames = walk(1, xs_between(0.2, 0.45, 8))
    frames += [[person(1, 0.45, 0.6, misses=k)] for k in range(1, 4)]  # coasting, no new position
    frames += [[] for _ in range(2)]  # and gone from the list for 0.2 s
    frames += walk(1, xs_between(0.6, 0.8, 8))
    assert crossings(frames) == ["out"]


def test_other_classes_are_ignored() -> None:
    frames = [[person(1, x, 0.6, label="car")] for x in xs_between(0.2, 0.8, 20)]
    assert crossings(frames) == []


def test_a_crossing_leaves_a_grid_cell_only_when_privacy_grid_is_set() -> None:
    """Review finding: privacy.grid was advertised but no rule gave a position to coarsen."""
    from agent.privacy.anonymizer import Anonymizer, Identity

    (obs,) = [o for o in run([LineCrossing(LINE)], timeline(walk(1, xs_between(0.2, 0.8, 20))))
              if o.type == "line_crossing"]
    assert obs.position is not None and abs(obs.position[0] - 0.5) < 0.1
    ident = Identity("cam", "site", 1, "m", "0" * 64)
    coarse = Anonymizer(ident, ("person",), grid=4).event(obs, 1, 0)
    assert coarse is not None and coarse.cell is not None
    assert coarse.cell == int(obs.position[1] * 4) * 4 + int(obs.position[0] * 4)  # row-major, 4 x 4
    assert "cell" not in Anonymizer(ident, ("person",)).event(obs, 2, 0).to_dict()  # type: ignore[union-attr]
