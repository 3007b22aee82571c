"""A technician's likely mix-ups with replay and track: one line, exit 2, never `frames: 0`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import cli


def test_a_picture_is_not_a_video(assets: Path, tmp_path: Path) -> None:
    script = tmp_path / "none.jsonl"
    script.write_text("")
    picture = str(assets / "images" / "zidane.jpg")
    for args in (["replay", picture, "--state", str(tmp_path / "s"), "--detections", str(script)],
                 ["track", picture, "--out", str(tmp_path / "t.txt")]):
        r = cli(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr and "frames: 0" not in r.stdout, r
        assert "is a picture, not a video" in r.stderr and f"edge-agent detect {picture}" in r.stderr


def test_track_refuses_a_stream_or_a_camera_by_name(tmp_path: Path) -> None:
    for given in ("rtsp://127.0.0.1:1/x", "/dev/video0"):
        r = cli("track", given, "--out", str(tmp_path / "t.txt"))
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert f"{given!r} is a camera or a stream" in r.stderr  # the URL as given, not path-mangled
    assert not (tmp_path / "t.txt").exists()


def test_a_video_file_under_dev_shm_is_a_file(clip: Path, tmp_path: Path, model_dir: Path) -> None:
    # a Pi keeps files off the SD card in /dev/shm: that is a file, not a camera
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.fail("this test needs /dev/shm (every Linux has it)")
    copy = shm / f"edge-agent-test-{tmp_path.name}.mp4"
    shutil.copy(clip, copy)
    try:
        r = cli("track", str(copy), "--out", str(tmp_path / "t.txt"), "--max-frames", "2",
                "--model-dir", str(model_dir))
        assert r.returncode == 0 and "frames: 2" in r.stdout, r.stderr
    finally:
        copy.unlink()
