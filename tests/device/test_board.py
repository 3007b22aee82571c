"""Board profiles: detection from a fake device tree and fake accelerators, the config key, the data itself."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from tests.helpers import cli

from agent import config
from agent.device import board
from agent.errors import ConfigError
from agent.detect.catalogue import default_model, model


def fake_hw(
    tmp: Path, model_name: str | None, usb: tuple[str, str] | None = None, apex: bool = False
) -> dict[str, Path]:
    """A device tree folder, a /dev folder and a /sys/bus/usb/devices folder as a board would have them."""
    dt, dev, usb_dir = tmp / "device-tree", tmp / "dev", tmp / "usb"
    for d in (dt, dev, usb_dir):
        d.mkdir(parents=True, exist_ok=True)
    if model_name is not None:
        (dt / "model").write_bytes(model_name.encode() + b"\0")  # the kernel's string ends in NUL
    (usb_dir / "1-1").mkdir(exist_ok=True)  # a keyboard, say
    (usb_dir / "1-1" / "idVendor").write_text("046d\n")
    (usb_dir / "1-1" / "idProduct").write_text("c31c\n")
    if usb:
        (usb_dir / "2-1").mkdir(exist_ok=True)
        (usb_dir / "2-1" / "idVendor").write_text(usb[0] + "\n")
        (usb_dir / "2-1" / "idProduct").write_text(usb[1] + "\n")
    if apex:
        (dev / "apex_0").write_text("")
    return {"device_tree": dt, "dev": dev, "usb": usb_dir}


@pytest.mark.parametrize(
    ("model_name", "usb", "apex", "expected"),
    [
        ("Raspberry Pi 4 Model B Rev 1.4", None, False, "pi4"),
        ("Raspberry Pi 4 Model B Rev 1.4", ("1a6e", "089a"), False, "pi4-coral-usb"),  # before its firmware
        ("Raspberry Pi 4 Model B Rev 1.4", ("18d1", "9302"), False, "pi4-coral-usb"),  # after
        ("Raspberry Pi Compute Module 4 Rev 1.0", None, True, "pi4-coral-m2"),
        ("Raspberry Pi 5 Model B Rev 1.0", None, False, "pi5"),
        ("Raspberry Pi 5 Model B Rev 1.0", ("18d1", "9302"), False, "pi5-coral-usb"),
        ("Raspberry Pi 5 Model B Rev 1.0", ("18d1", "9302"), True, "pi5-coral-m2"),  # PCIe wins
        ("Raspberry Pi Zero 2 W Rev 1.0", None, False, "zero2w"),
        ("Raspberry Pi Zero 2 W Rev 1.0", ("1a6e", "089a"), False, "zero2w-coral-usb"),
        ("Raspberry Pi 3 Model B Plus Rev 1.3", None, False, "generic"),  # not a supported board
        (None, None, False, "generic"),  # an x86 PC: no device tree
    ],
)
def test_detects_board_and_accelerator(tmp_path: Path, model_name: str | None, usb: tuple[str, str] | None,
                                       apex: bool, expected: str) -> None:
    hw = board.probe(**fake_hw(tmp_path, model_name, usb, apex))
    assert board.choose(hw).id == expected


def test_cli_says_which_profile_and_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = fake_hw(tmp_path, "Raspberry Pi 5 Model B Rev 1.0", ("18d1", "9302"))
    for key, path in paths.items():
        monkeypatch.setenv(board.ENV[key], str(path))
    r = cli("profile")
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith("board profile: pi5-coral-usb")
    assert "Raspberry Pi 5 Model B Rev 1.0" in first and "Coral USB found" in first
    # the config key overrides the detection
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[device]\nprofile = "zero2w"\n')
    r = cli("profile", "--config", str(cfg))
    assert r.stdout.startswith("board profile: zero2w") and "set by device.profile" in r.stdout


def test_profile_is_laid_under_the_config(tmp_path: Path) -> None:
    hw = board.probe(**fake_hw(tmp_path, "Raspberry Pi Zero 2 W Rev 1.0"))
    table, choice = board.apply({"detector": {"threads": 1}}, hw)
    cfg = config.parse(table)
    assert choice.profile is not None and choice.profile.id == "zero2w"
    assert cfg.detector.threads == 1  # the operator's value wins
    assert cfg.outbox.max_rows == choice.profile.table["outbox"]["max_rows"]  # the profile fills the rest
    assert (cfg.source.width, cfg.source.height) == choice.profile.input
    table, choice = board.apply({"device": {"profile": "none"}}, hw)
    assert choice.profile is None and config.parse(table) == config.Config(device=config.DeviceConfig(profile="none"))


def test_unknown_profile_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'pi4-corral-usb' is not a board profile; did you mean 'pi4-coral-usb'"):
        board.apply({"device": {"profile": "pi4-corral-usb"}})
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[device]\nprofile = "pi9"\n')
    r = cli("run", "--config", str(cfg))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("edge-agent: error: device.profile 'pi9'")


def test_generic_profile_changes_nothing() -> None:
    """A development machine runs exactly the built-in defaults, so tests and `make demo` are unaffected."""
    table, _ = board.apply({"device": {"profile": "generic"}})
    assert config.parse(table) == config.Config(device=config.DeviceConfig(profile="generic"))
    assert "model" not in board.profiles()["generic"].table.get("detector", {})  # the manifest's default
    assert config.Config().detector.model == default_model()


@pytest.mark.parametrize("profile_id", sorted(board.profiles()))
def test_every_profile_is_valid_data(profile_id: str) -> None:
    p = board.profiles()[profile_id]
    cfg = config.parse(board.apply({"device": {"profile": profile_id}})[0])  # every key is a real config key
    spec = model(cfg.detector.model)  # the model id is one the manifest knows
    if p.id != "generic":
        assert p.input == spec.input, "the profile's input size must be its model's"
        lores, (iw, ih) = (cfg.source.width, cfg.source.height), spec.input
        if spec.resize == "letterbox":  # the lores stream is the picture letterboxing leaves: it only pads
            assert lores[0] <= iw and lores[1] <= ih and (lores[0] == iw or lores[1] == ih), lores
            main_aspect = cfg.source.main_width / cfg.source.main_height
            assert abs(lores[0] / lores[1] - main_aspect) < 0.01, "the lores stream keeps the main aspect"
        else:
            assert lores == spec.input, "the lores stream is the model's input"
        assert cfg.source.main_width >= cfg.source.width and cfg.source.main_height >= cfg.source.height
        assert p.camera == "picamera2"
        assert any(p.id.startswith(b) for b in ("pi4", "pi5", "zero2w"))
    if p.accelerator != "none":
        assert spec.is_edgetpu and spec.cpu_twin, "an accelerator profile runs an Edge TPU model with a CPU twin"
    else:
        assert not spec.is_edgetpu


def test_profiles_cover_every_board_and_accelerator() -> None:
    ids = set(board.profiles())
    for b in ("pi4", "pi5", "zero2w"):
        assert {b, f"{b}-coral-usb"} <= ids
    assert {"pi4-coral-m2", "pi5-coral-m2", "generic"} <= ids  # a Zero 2 W has no PCIe for an M.2 card


def test_profiles_ship_in_the_wheel() -> None:
    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert tomllib.loads(text)["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]["hw/profiles"] == \
        "agent/_profiles"


def test_agent_toml_from_the_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, path in fake_hw(tmp_path, "Raspberry Pi 4 Model B Rev 1.5", ("1a6e", "089a")).items():
        monkeypatch.setenv(board.ENV[key], str(path))
    r = cli("profile", "--agent-toml", "--device-id", "cam-7", "--site", "depot")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "agent.toml"
    out.write_text(r.stdout)
    cfg = config.load(out)  # what install.sh writes is a valid config
    got = (cfg.device.id, cfg.device.site, cfg.device.profile, cfg.source.kind)
    assert got == ("cam-7", "depot", "auto", "picamera2")
    assert "# board profile: pi4-coral-usb" in r.stdout
    r = cli("profile", "--config", str(out), "--models")
    assert r.stdout.split() == ["ssd_mobilenet_v2_coco_quant_edgetpu", "ssd_mobilenet_v2_coco_quant"]
