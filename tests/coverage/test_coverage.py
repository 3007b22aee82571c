"""Coverage accounting: a replay with a covered segment reports those seconds blind, with the reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.helpers import cli

from agent.central.verify import Verifier
from agent.device.coverage import KEYS, REASONS, Coverage, CoveredCounts, apportion
from agent.protocol.enrolment import load_registry
from agent.types import Observation

BLIND_KEYS = [KEYS[r] for r in REASONS]


def covered_clip(src: Path, dest: Path, first: int, last: int, frames: int) -> float:
    """The real clip's first `frames` frames with frames first..last blacked out (a covered lens)."""
    import cv2

    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    out = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    try:
        for i in range(frames):
            ok, bgr = cap.read()
            assert ok, f"the clip ended at frame {i}"
            out.write(np.zeros_like(bgr) if first <= i <= last else bgr)
    finally:
        cap.release()
        out.release()
    return float(fps)


def count_events(tmp_path: Path, video: Path, model_dir: Path) -> list[dict]:  # type: ignore[type-arg]
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[detector]\nmodel_dir = "{model_dir}"\n'
                   '[[zones]]\nid = "room"\npolygon = [[0, 0], [1, 0], [1, 1], [0, 1]]\ncount_every_s = 10\n')
    out = tmp_path / "events.jsonl"
    state = tmp_path / "s"
    r = cli("replay", str(video), "--config", str(cfg), "--state", str(state), "--events-out", str(out))
    assert r.returncode == 0, r.stderr
    verifier = Verifier(load_registry(state / "device.pub.json"))
    events = [verifier.check(line)[0] for line in out.read_bytes().splitlines()]
    return [e for e in events if e["type"] == "count"]


@pytest.mark.slow
def test_a_covered_segment_is_blind_with_its_reason(tmp_path: Path, model_dir: Path, clip: Path) -> None:
    video = tmp_path / "covered.mp4"
    fps = covered_clip(clip, video, 100, 199, 300)
    assert fps == pytest.approx(10, abs=0.5)  # frames 100-199 are 10 s of media time
    counts = count_events(tmp_path, video, model_dir)
    assert len(counts) == 3, counts
    for e in counts:
        v = e["values"]
        blind = sum(v[k] for k in BLIND_KEYS)
        assert abs(v["observed_s"] + blind - v["interval_s"]) <= 1, v
        assert v["blind_camera_lost_s"] == v["blind_low_fps_s"] == v["blind_overload_s"] == 0
        assert v["blind_not_running_s"] == 0  # a replay never charges the time between boots
    covered = [e["values"]["blind_covered_s"] for e in counts]
    assert covered == [0, 10, 0], counts  # the second interval (10-20 s) is the covered one
    assert sum(e["values"]["observed_s"] for e in counts) == pytest.approx(20, abs=1)


def test_ledger_reasons_and_exact_apportioning() -> None:
    dropped = [0]
    cov = Coverage(min_fps=2.0, dropped=lambda: dropped[0])
    lit = np.random.default_rng(0).integers(40, 220, (64, 64, 3), dtype=np.uint8)  # a scene with contrast
    dark = np.full((64, 64, 3), 5, np.uint8)
    t = 0.0
    for _ in range(11):  # 2.5 s observed at 4 frames/s
        cov.frame(t, lit)
        t += 1.0 / 4
    t -= 0.25
    for k in range(1, 9):  # 2 s covered
        cov.frame(t + k * 0.25, dark)
    t += 2.0
    for k in range(1, 4):  # 3 s lost
        cov.lost(t + k)
    t += 3.0
    cov.frame(t + 1.0, lit)  # the first frame back: its gap is still the outage
    t += 1.0
    cov.frame(t + 1.0, lit)  # 1 s gap, slower than 2 fps: low_fps
    dropped[0] = 5
    cov.frame(t + 2.0, lit)  # 1 s gap with frames skipped: overload
    cov.setup_view = True  # the installer's setup view opened (ConfigWatch sets this at a frame boundary)
    cov.frame(t + 2.5, lit)
    cov.frame(t + 3.0, lit)
    cov.setup_view = False
    totals = cov.snapshot()
    assert totals == pytest.approx({"observed": 2.5, "covered": 2.0, "camera_lost": 4.0, "low_fps": 1.0,
                                    "overload": 1.0, "not_running": 0.0, "setup_view": 1.0})
    split = apportion(totals, 12)
    assert sum(split.values()) == 12 and split["camera_lost"] == 4 and split["setup_view"] == 1


def test_covered_counts_adds_the_split_and_downtime_to_the_first_interval() -> None:
    class Rule:
        def update(self, tracks: object, now_s: float) -> list[Observation]:
            if now_s >= 60:
                return [Observation("count", "z", "person", now_s, {"entries": 1, "exits": 0, "interval_s": 60})]
            return []

    cov = Coverage()
    cov.add_downtime(30.4)
    wrapped = CoveredCounts(Rule(), cov)
    lit = np.tile(np.arange(64, dtype=np.uint8)[:, None, None] * 3, (1, 64, 3))
    for t in range(61):
        cov.frame(float(t), lit)
        out = wrapped.update([], float(t))
    v = out[0].values
    assert v["interval_s"] == 90 and v["blind_not_running_s"] == 30 and v["observed_s"] == 60
    assert v["observed_s"] + sum(v[k] for k in BLIND_KEYS) == v["interval_s"]


def test_the_alive_mark_gives_the_next_boot_its_downtime(tmp_path: Path) -> None:
    from agent.device.coverage import ALIVE_FILE, downtime_s

    class Rule:
        def update(self, tracks: object, now_s: float) -> list[Observation]:
            return [Observation("count", "z", "person", now_s, {"entries": 0, "exits": 0, "interval_s": 60})]

    alive = tmp_path / ALIVE_FILE
    assert downtime_s(alive, 1_000_000) == 0.0  # first boot: nothing to charge
    wrapped = CoveredCounts(Rule(), Coverage(), alive, wall_ms=lambda: 1_000_000)
    wrapped.update([], 60.0)  # a count interval closed at wall time 1000 s
    assert downtime_s(alive, 1_090_500) == pytest.approx(90.5)  # the next boot starts 90.5 s later
