"""Issue 13 items 6-9 and 11: first-hour mistakes get a message that says what to do, one bad
input does not cancel the rest, what cannot work is refused, short input is said, and
--events-out loses nothing when the run is killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers import ROOT, cli, wait_until


def one_clear_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def state_with_model(tmp_path: Path, model_dir: Path) -> Path:
    st = tmp_path / "st"
    shutil.copytree(model_dir, st / "models")
    return st


# ------------------------------------------------------------------ 6 and 7: detect and models


def test_detect_a_folder_detects_every_image_in_it(
    tmp_path: Path, model_dir: Path, assets: Path
) -> None:
    st = state_with_model(tmp_path, model_dir)
    pics = tmp_path / "pics"
    pics.mkdir()
    for name in ("bus.jpg", "zidane.jpg"):
        shutil.copy(assets / "images" / name, pics / name)
    r = cli("detect", str(pics), "--state", str(st), "--json")
    assert r.returncode == 0, r.stderr
    assert [Path(json.loads(line)["image"]).name for line in r.stdout.splitlines()] == [
        "bus.jpg",
        "zidane.jpg",
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no images" in one_clear_line(cli("detect", str(empty), "--state", str(st)))


def test_one_bad_image_does_not_cancel_the_rest(
    tmp_path: Path, model_dir: Path, assets: Path
) -> None:
    st = state_with_model(tmp_path, model_dir)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes((assets / "images" / "bus.jpg").read_bytes()[:200])
    r = cli(
        "detect",
        str(assets / "images" / "bus.jpg"),
        str(corrupt),
        str(assets / "images" / "zidane.jpg"),
        "--state",
        str(st),
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "bus.jpg:" in r.stdout and "zidane.jpg:" in r.stdout  # both good images reported
    assert "corrupt.jpg" in r.stderr and "1 of 3 image(s)" in r.stderr


def test_model_messages_name_the_fix(
    tmp_path: Path, model_dir: Path, assets: Path, clip: Path
) -> None:
    from agent.detect import catalogue

    spec = catalogue.model(catalogue.default_model())
    st = tmp_path / "st"
    line = one_clear_line(cli("models", "import", str(assets / "models"), "--state", str(st)))
    assert "is a folder" in line
    truncated = tmp_path / "copy.tflite"
    truncated.write_bytes((model_dir / spec.file).read_bytes()[:-5000])
    line = one_clear_line(cli("models", "import", str(truncated), "--state", str(st)))
    assert "a copy of a known model is damaged (fetch it again" in line and "not a model in the manifest" not in line
    # not installed: the hint keeps --state
    line = one_clear_line(cli("replay", str(clip), "--state", str(st)))
    assert f"--state {st}" in line and "models fetch" in line
    # installed with the wrong bytes: list says so, loading names the fix
    (st / "models").mkdir(parents=True)
    shutil.copy(truncated, st / "models" / spec.file)
    listing = cli("models", "list", "--state", str(st)).stdout
    row = next(ln for ln in listing.splitlines() if ln.startswith(spec.id))
    assert "DAMAGED" in row and " installed" not in row
    line = one_clear_line(cli("replay", str(clip), "--state", str(st)))
    assert (
        "install it again" in line
        and f"models fetch {spec.id} --state {st}" in line
    )


def test_models_verify_with_nothing_installed_is_not_a_success(tmp_path: Path) -> None:
    line = one_clear_line(cli("models", "verify", "--state", str(tmp_path / "st")))
    assert "no model is installed" in line and "models fetch" in line


# ------------------------------------------------------------------ 6: config and run messages


def test_run_without_a_config_asks_for_a_camera_not_a_video(tmp_path: Path) -> None:
    line = one_clear_line(cli("run", "--state", str(tmp_path / "st")))
    assert "VIDEO argument" not in line and "[source]" in line and "replay VIDEO" in line


@pytest.mark.parametrize(
    "toml, needle",
    [
        ('[zones]\nid = "a"\npolygon = [[0, 0], [1, 0], [1, 1]]\n', "[[zones]]"),
        ('[lines]\nid = "a"\npoints = [[0, 0], [1, 1]]\n', "[[lines]]"),
        ('[mqtt]\nhost = "mqtt://broker:1883"\n', "mqtt.port"),
        ('[mqtt]\nhost = "broker:1883"\n', "mqtt.port"),
        ('[detector]\nclasses = ["persn"]\n', "'persn' is not in yolox_nano_ti_lite_416_int8's labels"),
    ],
)
def test_config_mistakes_get_the_hint(tmp_path: Path, toml: str, needle: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    assert needle in one_clear_line(
        cli("privacy-report", "--config", str(cfg), "--state", str(tmp_path))
    )


def test_an_ipv6_broker_address_is_still_a_host() -> None:
    from agent.config import parse

    assert parse({"mqtt": {"host": "::1"}}).mqtt.host == "::1"  # type: ignore[union-attr]


def test_an_unreachable_rtsp_camera_is_named_without_its_password(
    tmp_path: Path, model_dir: Path
) -> None:
    st = state_with_model(tmp_path, model_dir)
    assert cli("keygen", "--out", str(st), "--device-id", "cam-1", "--site", "s").returncode == 0
    cfg = tmp_path / "c.toml"
    cfg.write_text('[source]\nkind = "rtsp"\npath = "rtsp://admin:s3cret@127.0.0.1:9/stream1"\n')
    line = one_clear_line(cli("run", "--config", str(cfg), "--state", str(st), timeout=120))
    assert "rtsp://***@127.0.0.1:9/stream1" in line and "s3cret" not in line


def test_damaged_video_warnings_of_ffmpeg_do_not_print(
    tmp_path: Path, model_dir: Path, clip: Path
) -> None:
    st = state_with_model(tmp_path, model_dir)
    broken = tmp_path / "tail.mp4"
    broken.write_bytes(clip.read_bytes()[-300_000:])  # no header: FFmpeg complains on stderr
    line = one_clear_line(cli("replay", str(broken), "--state", str(st)))
    assert "is not a video" in line


# ------------------------------------------------------------------ 8: refuse what cannot work


@pytest.mark.parametrize(
    "polygon, needle",
    [
        ([[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]], "crosses itself"),
        ([[0.1, 0.1], [0.5, 0.5], [0.9, 0.9]], "no area"),
        ([[0.1, 0.1], [0.1, 0.1], [0.1, 0.1]], "no area"),
    ],
)
def test_self_crossing_and_zero_area_polygons_are_refused(
    tmp_path: Path, polygon: list, needle: str
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[[zones]]\nid = "z"\npolygon = {polygon}\n')
    assert needle in one_clear_line(
        cli("privacy-report", "--config", str(cfg), "--state", str(tmp_path))
    )
    cfg.write_text(f"[privacy]\nmasks = [{polygon}]\n")
    assert needle in one_clear_line(
        cli("privacy-report", "--config", str(cfg), "--state", str(tmp_path))
    )


def test_privacy_report_applies_the_checks_of_replay(tmp_path: Path, model_dir: Path) -> None:
    st = state_with_model(tmp_path, model_dir)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[zones]]\nid = "z"\npolygon = [[0, 0], [1, 0], [1, 1]]\nclasses = ["car"]\n')
    assert "detector.classes" in one_clear_line(
        cli("privacy-report", "--config", str(cfg), "--state", str(st))
    )


def test_events_out_into_a_missing_folder_is_refused(
    tmp_path: Path, model_dir: Path, clip: Path
) -> None:
    st = state_with_model(tmp_path, model_dir)
    target = tmp_path / "no" / "such" / "events.jsonl"
    line = one_clear_line(cli("replay", str(clip), "--state", str(st), "--events-out", str(target)))
    assert "does not exist" in line and not (tmp_path / "no").exists()


# ------------------------------------------------------------------ 9: short or empty input


def test_a_truncated_video_is_said(tmp_path: Path, model_dir: Path, clip: Path) -> None:
    st = state_with_model(tmp_path, model_dir)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[:300_000])
    r = cli("replay", str(cut), "--state", str(st))
    assert r.returncode == 2 and "frames:" in r.stdout  # the summary, then the one line
    assert "truncated or damaged" in r.stderr.splitlines()[-1] and "of the 1394 frames" in r.stderr
    assert "Traceback" not in r.stderr and "[h264" not in r.stderr and "[mov" not in r.stderr


def test_verify_of_an_empty_file_is_not_a_success(tmp_path: Path) -> None:
    assert (
        cli("keygen", "--out", str(tmp_path / "k"), "--device-id", "d", "--site", "s").returncode
        == 0
    )
    empty = tmp_path / "events.jsonl"
    empty.write_text("")
    line = one_clear_line(
        cli("verify", str(empty), "--registry", str(tmp_path / "k" / "device.pub.json"))
    )
    assert "holds no envelope" in line


# ------------------------------------------------------------------ 11: --events-out and SIGKILL


def outbox_seq(path: Path) -> int:
    """The last seq another process's outbox holds; 0 while it is not there or not yet set up (the
    writer creates the file a moment before its table)."""
    from agent.delivery.outbox import Outbox
    from agent.errors import StateError

    if not path.exists():
        return 0
    try:
        ob = Outbox(path, readonly=True)
    except StateError:
        return 0
    try:
        return ob.stats().last_seq
    finally:
        ob.close()


@pytest.mark.slow
def test_events_out_holds_every_line_the_outbox_holds_after_sigkill(
    tmp_path: Path, model_dir: Path, clip: Path
) -> None:
    from agent.delivery.outbox import Outbox

    st = state_with_model(tmp_path, model_dir)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[health]\nheartbeat_s = 0.2\n")  # a signed event every few frames
    out = tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent",
            "replay",
            str(clip),
            "--config",
            str(cfg),
            "--state",
            str(st),
            "--events-out",
            str(out),
            "--realtime",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # a few envelopes in, as the outbox sees them (a buffered file would still be empty here)
        assert wait_until(lambda: outbox_seq(st / "outbox.db") >= 3, timeout=60)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    ob = Outbox(st / "outbox.db")
    try:
        in_outbox = ob.stats().last_seq
    finally:
        ob.close()
    lines = out.read_bytes().splitlines()
    assert len(lines) >= in_outbox >= 3  # nothing the outbox holds is missing from the file


def test_offline_fetches_name_the_fix_for_what_they_fetch(tmp_path: Path) -> None:
    sample = one_clear_line(cli("samples", "fetch", "--offline", "--from", str(tmp_path / "nowhere"),
                                "--dest", str(tmp_path / "clips")))
    assert "(no such folder)" in sample and "give --from FOLDER" in sample and "models import" not in sample
    model = one_clear_line(cli("models", "fetch", "yolox_nano_ti_lite_416_int8", "--offline",
                               "--state", str(tmp_path / "st")))
    assert "no --from folder was given" in model and "`edge-agent models import FILE`" in model


def test_models_verify_checks_the_notice_and_fails_with_2(tmp_path: Path, assets: Path) -> None:
    from agent.detect import catalogue

    st, spec = tmp_path / "st", catalogue.model(catalogue.default_model())
    got = cli("models", "fetch", spec.id, "--from", str(assets / "models"), "--offline", "--state", str(st))
    assert got.returncode == 0, got.stderr
    ok = cli("models", "verify", "--state", str(st))
    assert ok.returncode == 0 and f"{spec.id}: ok" in ok.stdout
    (st / "models" / f"{spec.file}.{spec.notice}").unlink()
    bad = cli("models", "verify", "--state", str(st))
    assert bad.returncode == 2 and "licence notice" in bad.stdout and "missing or changed" in bad.stdout


def test_importing_another_tflite_model_is_not_called_corrupt(tmp_path: Path, assets: Path) -> None:
    other = next((assets / "models" / "blazeface").glob("*.tflite"))  # a sound model, not in the manifest
    line = one_clear_line(cli("models", "import", str(other), "--state", str(tmp_path / "st")))
    assert "no model in the manifest matches" in line and "--model-file" in line


def test_keygen_over_replays_throwaway_identity_says_what_it_is(tmp_path: Path) -> None:
    st, script = tmp_path / "st", tmp_path / "none.jsonl"
    script.write_text("")
    pictures = tmp_path / "pics"
    pictures.mkdir()
    import cv2
    import numpy as np

    cv2.imwrite(str(pictures / "a.png"), np.zeros((48, 64, 3), np.uint8))
    made = cli("replay", str(pictures), "--state", str(st), "--detections", str(script))
    assert made.returncode == 0 and "throwaway device identity" in made.stderr, made.stderr
    line = one_clear_line(cli("keygen", "--out", str(st), "--device-id", "cam-1", "--site", "lab"))
    assert "throwaway identity `replay` made" in line and "keygen --out /etc/edge-agent" in line
