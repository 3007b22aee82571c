"""`edge-agent track VIDEO` with the default model on real street footage, scored against MOT15 ground truth.

PETS09-S2L1 (480x360 here; the ground truth is in 768x576 pixels, so boxes are scaled by 1.6),
frames 1-400 only: frames 401-795 are held out and never looked at. Rows of the ground truth whose
7th column is 0 are ignored, as the MOT15 evaluation does (py-motmetrics' min_confidence=1).
Matching at IoU 0.5, motmetrics' default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import cli

if not hasattr(np, "asfarray"):  # motmetrics 1.4.0 still calls np.asfarray, removed in numpy 2
    np.asfarray = lambda a, dtype=float: np.asarray(a, dtype=dtype)  # type: ignore[attr-defined]

import motmetrics as mm

FRAMES = 400  # the ground truth we have; the rest of the sequence is held out
SCALE = 768 / 480


@dataclass(frozen=True)
class Scored:
    rows: list[list[str]]
    mota: float
    idf1: float
    switches: int
    stdout: str


@pytest.fixture(scope="module")
def pets(assets: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Scored:
    """The video through `edge-agent track` once per module (about 30 s), then scored."""
    tmp = tmp_path_factory.mktemp("pets")
    out = tmp / "tracks.txt"
    r = cli("track", str(assets / "video" / "pets09_s2l1_vtest.mp4"), "--out", str(out), "--model-dir",
            str(model_dir), "--max-frames", str(FRAMES), "--state", str(tmp / "state"))
    assert r.returncode == 0, r.stderr
    gt = mm.io.loadtxt(assets / "mot" / "PETS09-S2L1" / "gt.txt", fmt="mot15-2D", min_confidence=1)
    hyp = mm.io.loadtxt(out, fmt="mot15-2D")
    for column in ("X", "Y", "Width", "Height"):
        hyp[column] *= SCALE
    gt = gt[gt.index.get_level_values(0) <= FRAMES]
    acc = mm.utils.compare_to_groundtruth(gt, hyp, "iou", distth=0.5)
    s = mm.metrics.create().compute(acc, metrics=["mota", "idf1", "num_switches"], name="pets").iloc[0]
    rows = [line.split(",") for line in out.read_text().splitlines()]
    return Scored(rows, float(s.mota), float(s.idf1), int(s.num_switches), r.stdout)


@pytest.mark.slow
def test_default_model_tracks_pets09_people(pets: Scored) -> None:
    assert pets.mota >= 0.72, f"MOTA {pets.mota:.3f} < 0.72"
    assert pets.idf1 >= 0.62, f"IDF1 {pets.idf1:.3f} < 0.62"


@pytest.mark.slow
def test_track_rows_are_mot_rows_in_video_pixels(pets: Scored) -> None:
    assert f"frames: {FRAMES}" in pets.stdout
    assert pets.rows and all(len(row) == 10 for row in pets.rows)
    frames = [int(row[0]) for row in pets.rows]
    assert min(frames) >= 1 and max(frames) <= FRAMES  # 1-based, never past what was read
    for row in pets.rows:
        x, y, w, h, score = (float(v) for v in row[2:7])
        assert -1 <= x and x + w <= 481 and -1 <= y and y + h <= 361 and w > 0 and h > 0  # pixels of the video
        assert 0.0 < score <= 1.0 and row[7:] == ["-1", "-1", "-1"]
    ids_per_frame: dict[int, list[str]] = {}
    for row in pets.rows:
        ids_per_frame.setdefault(int(row[0]), []).append(row[1])
    assert all(len(ids) == len(set(ids)) for ids in ids_per_frame.values())  # one row per track and frame


def test_track_needs_a_video_or_detections(tmp_path: Path) -> None:
    r = cli("track", "--out", str(tmp_path / "o.txt"))
    assert r.returncode == 2 and "VIDEO or --mot-det" in r.stderr and "Traceback" not in r.stderr


def test_track_missing_video_is_one_line(tmp_path: Path) -> None:
    r = cli("track", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o.txt"))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "not found" in r.stderr


def test_track_never_opens_a_live_camera(tmp_path: Path) -> None:
    r = cli("track", "/dev/null", "--out", str(tmp_path / "o.txt"))  # a device, as /dev/video0 would be
    assert r.returncode == 2 and "files only" in r.stderr and r.stderr.strip().count("\n") == 0
