"""Frame sources: replay speeds, newest frame wins, a lost camera is retried, a missing one is one line.

The OpenCV camera backend is exercised with a real video file as its device (OpenCV opens
files and /dev/video* through the same VideoCapture), so no camera is needed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent.capture import open_source
from agent.capture.replay import ReplaySource
from agent.config import SourceConfig
from agent.errors import SourceError
from tests.helpers import cli, wait_until


def test_replay_as_fast_as_possible_gives_every_frame_with_media_time(clip: Path) -> None:
    src = open_source(SourceConfig(kind="replay", path=str(clip), max_frames=25))
    frames = list(src.frames())
    src.close()
    assert [f.index for f in frames] == list(range(25))
    assert frames[-1].t_s == pytest.approx(2.4)
    assert frames[0].image.shape == (432, 768, 3) and frames[0].image.dtype.name == "uint8"
    assert src.dropped_frames == 0


def test_replay_decodes_on_one_thread_unless_told(clip: Path) -> None:
    """FFmpeg's own pool would run on the interpreter's cores; the frame loop gives decoding a thread."""
    import cv2

    for asked, used in ((0, 1), (2, 2)):
        src = ReplaySource(SourceConfig(kind="replay", path=str(clip), max_frames=3, decode_threads=asked))
        assert src._cap is not None and src._cap.get(cv2.CAP_PROP_N_THREADS) == used
        assert [f.index for f in src.frames()] == [0, 1, 2]
        src.close()
    with pytest.raises(ValueError, match="decode_threads"):
        SourceConfig(kind="replay", path=str(clip), decode_threads=-1)


def test_realtime_replay_skips_late_frames_newest_wins(clip: Path) -> None:
    now = [0.0]  # a manual clock: the replay's pacing and the consumer's work both move it

    def advance(seconds: float) -> None:
        now[0] += seconds

    src = ReplaySource(SourceConfig(kind="replay", path=str(clip), max_frames=6, realtime=True),
                       clock=lambda: now[0], sleep=advance)
    indices = []
    for f in src.frames():
        indices.append(f.index)
        advance(0.25)  # inference slower than the 10 fps recording
    src.close()
    assert indices[0] == 0 and len(indices) == 6
    gaps = [b - a for a, b in zip(indices, indices[1:])]
    assert all(g >= 2 for g in gaps), indices  # late frames were skipped, not queued
    assert src.dropped_frames == indices[-1] - 5


def test_replay_of_an_image_folder_loops(tmp_path: Path, assets: Path) -> None:
    for name in ("bus.jpg", "zidane.jpg"):
        shutil.copy(assets / "images" / name, tmp_path / name)
    src = open_source(SourceConfig(kind="replay", path=str(tmp_path), loop=True, max_frames=5, fps=5))
    frames = list(src.frames())
    assert [f.t_s for f in frames] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    assert frames[0].image.shape == frames[2].image.shape != frames[1].image.shape


def test_camera_slower_consumer_gets_the_newest_frame(clip: Path) -> None:
    src = open_source(SourceConfig(kind="v4l2", path=str(clip), max_frames=8))
    try:
        got = []
        for f in src.frames():
            assert f is not None
            got.append(f)
            # a slow consumer: it holds the frame while the grabber reads on
            held = src.dropped_frames
            wait_until(lambda held=held: src.dropped_frames > held, 5, every=0.005)
    finally:
        src.close()
    assert [f.index for f in got] == list(range(8))
    assert all(b.t_s > a.t_s for a, b in zip(got, got[1:]))
    assert src.dropped_frames > 0  # the grabber read on and kept only the latest


def test_lost_camera_is_retried_with_a_health_observation_not_a_crash(tmp_path: Path, clip: Path) -> None:
    device = tmp_path / "cam.mp4"
    shutil.copy(clip, device)
    src = open_source(SourceConfig(kind="v4l2", path=str(device)))
    src.grabber.backoff_s = 0.05
    health = []
    it = src.frames()
    try:
        assert next(it) is not None
        device.rename(tmp_path / "unplugged.mp4")  # the camera goes away; the file's end is its loss
        idle = 0

        def reported() -> bool:
            nonlocal idle
            idle += next(it) is None  # the generator yields None while the camera is lost
            health.extend(src.tick(src.now_s()))  # as the pipeline ticks its periodic stages
            return bool(health) and idle >= 2

        wait_until(reported, 60, every=0)
        assert health, "no health observation after the camera was lost"
        assert len(health) == 1  # one per outage, not one per retry
        obs = health[0]
        assert obs.type == "alarm" and obs.rule == "camera" and obs.values["camera_errors"] >= 1
        assert obs.reason == "camera_lost"
        (tmp_path / "unplugged.mp4").rename(device)  # plugged back in
        frame = next(f for f in it if f is not None)  # frames flow again; nothing raised
        assert frame.image.shape == (432, 768, 3)
        assert src.camera_errors >= 1 and src.grabber.connected
    finally:
        src.close()


def test_missing_camera_at_start_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot be opened"):
        open_source(SourceConfig(kind="v4l2", path=str(tmp_path / "video99")))
    with pytest.raises(SourceError, match="needs source.path"):
        open_source(SourceConfig(kind="rtsp"))


def test_picamera2_without_the_library_is_one_clear_line() -> None:
    try:
        import picamera2  # type: ignore[import-not-found]  # noqa: F401

        pytest.skip("picamera2 is installed: this is a Pi")
    except ImportError:
        pass
    with pytest.raises(SourceError, match="python3-picamera2"):
        open_source(SourceConfig(kind="picamera2"))


def test_run_with_a_missing_camera_exits_2_with_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "cam.toml"
    cfg.write_text(f'[source]\nkind = "v4l2"\npath = "{tmp_path / "video42"}"\n')
    r = cli("run", "--config", str(cfg), "--state", str(tmp_path / "s"))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "cannot be opened" in r.stderr


def test_synthetic_source(tmp_path: Path) -> None:
    src = open_source(SourceConfig(kind="synthetic", max_frames=3, width=64, height=48))
    frames = list(src.frames())
    assert len(frames) == 3 and frames[0].image.shape == (48, 64, 3)


def test_the_pi_camera_lores_stream_becomes_the_scene_in_b_g_r() -> None:
    """libcamera's YUV420 is I420 (U plane before V): the frame handed over must be the scene in
    B, G, R, not chroma-swapped (OpenCV's "YUV420p" codes mean YV12)."""
    import cv2
    import numpy as np

    from agent.capture.picam import _PiDevice

    scene = np.zeros((48, 64, 3), np.uint8)  # B, G, R
    scene[:, :32] = (30, 40, 220)  # red
    scene[:, 32:] = (200, 120, 20)  # blue

    class LoresOnly:
        def capture_array(self, stream: str) -> np.ndarray:
            assert stream == "lores"
            return cv2.cvtColor(scene, cv2.COLOR_BGR2YUV_I420)

    frame = _PiDevice(LoresOnly(), cv2).read()
    assert frame.shape == scene.shape
    assert np.abs(frame.astype(int) - scene.astype(int)).max() <= 3
