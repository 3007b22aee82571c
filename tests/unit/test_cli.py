"""The command line: version, help, and user mistakes as one line with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import __version__
from tests.helpers import cli


def one_clear_line(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_version() -> None:
    r = cli("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"edge-agent {__version__}"


def test_help_lists_commands() -> None:
    r = cli("--help")
    assert r.returncode == 0
    for command in ("run", "replay", "keygen", "verify", "models", "bench"):
        assert command in r.stdout


def test_missing_video_file(tmp_path: Path) -> None:
    line = one_clear_line(cli("replay", str(tmp_path / "nope.mp4"), "--state", str(tmp_path)))
    assert "nope.mp4" in line and "not found" in line


def test_missing_config_file(tmp_path: Path) -> None:
    line = one_clear_line(cli("run", "--config", str(tmp_path / "absent.toml")))
    assert "absent.toml" in line and "not found" in line


def test_unknown_config_key_names_the_closest(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[detector]\nthresold = 0.4\n')
    line = one_clear_line(cli("run", "--config", str(cfg)))
    assert "detector.thresold" in line


@pytest.mark.parametrize(
    "toml, needle",
    [
        ("[detector]\nthreads = 'two'\n", "detector.threads"),
        ("[detector]\ndelegate = 'gpu'\n", "detector.delegate"),
        ("[source]\nkind = 'webcam'\n", "source.kind"),
        ("[[zones]]\nid = 'a'\npolygon = [[0, 0], [2, 0], [1, 1]]\n", "outside [0, 1]"),
        ("[device]\nid = 'cam/1'\n", "device.id"),
        ("not toml at all [", "not valid TOML"),
    ],
)
def test_bad_config_values(tmp_path: Path, toml: str, needle: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    assert needle in one_clear_line(cli("run", "--config", str(cfg)))


def test_bad_argument_is_one_line() -> None:
    line = one_clear_line(cli("replay"))
    assert "error" in line


def test_model_not_installed(tmp_path: Path, clip: Path) -> None:
    line = one_clear_line(cli("replay", str(clip), "--state", str(tmp_path)))
    assert "models fetch" in line


def test_corrupt_model_refused(tmp_path: Path, clip: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "yolox_nano_ti_lite_0510_full_integer_quant.tflite").write_bytes(b"\0" * 1000)  # the default
    line = one_clear_line(cli("replay", str(clip), "--state", str(tmp_path)))
    assert "SHA-256" in line and "refusing" in line


def test_run_without_a_device_key_refuses(tmp_path: Path, model_dir: Path) -> None:
    """Only replay may invent a throwaway identity; a real run must be given its key."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[source]\nkind = "synthetic"\nmax_frames = 3\n[detector]\nmodel_dir = "{model_dir}"\n')
    line = one_clear_line(cli("run", "--config", str(cfg), "--state", str(tmp_path / "s")))
    assert "no device key" in line and "keygen" in line
    assert not (tmp_path / "s" / "device.key").exists()
    ok = cli("keygen", "--out", str(tmp_path / "s"), "--device-id", "edge-demo", "--site", "demo-site")
    assert ok.returncode == 0
    r = cli("run", "--config", str(cfg), "--state", str(tmp_path / "s"))
    assert r.returncode == 0, r.stderr
    assert "frames: 3" in r.stdout


def test_run_refuses_the_throwaway_key_replay_made(tmp_path: Path, model_dir: Path, clip: Path) -> None:
    """Review finding: a later `run` silently adopted replay's throwaway key and would have
    signed live events with it."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[source]\nkind = "synthetic"\nmax_frames = 3\n[detector]\nmodel_dir = "{model_dir}"\n')
    r = cli("replay", str(clip), "--config", str(cfg), "--state", str(tmp_path / "s"), "--max-frames", "3")
    assert r.returncode == 0, r.stderr
    assert "throwaway" in r.stderr
    line = one_clear_line(cli("run", "--config", str(cfg), "--state", str(tmp_path / "s")))
    assert "throwaway identity" in line and "keygen" in line
    # replay may go on using it
    assert cli("replay", str(clip), "--config", str(cfg), "--state", str(tmp_path / "s"),
               "--max-frames", "3").returncode == 0


@pytest.mark.parametrize(
    "toml, needle",
    [
        ("[health]\nheartbeat_s = nan\n", "finite"),
        ("[source]\nfps = inf\n", "finite"),
        ("[source]\nkind = 'synthetic'\nwidth = -5\n", "source.width"),
        ("[source]\nmax_frames = -1\n", "source.max_frames"),
        ("[mqtt]\nhost = ''\n", "mqtt.host"),
        ("[mqtt]\nkeepalive_s = -5\n", "mqtt.keepalive_s"),
    ],
)
def test_values_that_used_to_pass_silently(tmp_path: Path, toml: str, needle: str) -> None:
    """Review findings: NaN, negative sizes and an empty host were accepted (or crashed later)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    assert needle in one_clear_line(cli("run", "--config", str(cfg)))


def test_paths_that_used_to_traceback(tmp_path: Path, model_dir: Path, clip: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[detector]\nmodel_dir = "{model_dir}"\n')
    a_file = tmp_path / "file"
    a_file.write_text("x")
    line = one_clear_line(cli("replay", str(clip), "--config", str(cfg), "--state", str(a_file)))
    assert "is a file" in line
    line = one_clear_line(cli("replay", str(clip), "--config", str(cfg), "--state", str(tmp_path / "s"),
                              "--events-out", str(tmp_path)))
    assert "--events-out" in line
    assert "--max-frames" in one_clear_line(cli("run", "--max-frames", "-1"))


def test_an_option_a_command_lacks_names_that_commands_help() -> None:
    line = one_clear_line(cli("replay", "x.mp4", "--frames", "10"))
    assert line.startswith("edge-agent replay: error: unrecognized arguments: --frames 10")
    assert "(see `edge-agent replay --help`)" in line
    line = one_clear_line(cli("models", "fetch", "x", "--bogus"))
    assert "(see `edge-agent models fetch --help`)" in line
    assert "(see `edge-agent --help`)" in one_clear_line(cli("--bogus"))
    assert "(see `edge-agent bench detect --help`)" in one_clear_line(cli("bench", "detect", "--bogus"))


def test_a_device_given_as_a_picture(tmp_path: Path) -> None:
    line = one_clear_line(cli("detect", "/dev/zero", "--state", str(tmp_path)))
    assert "is not a picture file" in line and "not found" not in line


def test_ingest_without_a_config_and_an_unknown_pin() -> None:
    assert "give --config FILE with an [ingest] section" in one_clear_line(cli("ingest"))
    line = one_clear_line(cli("profile", "--agent-toml", "--pin", "pi9"))
    assert line.startswith("edge-agent: error: --pin 'pi9' is not a board profile") and "pi5" in line
