"""The first-boot unit passes `systemd-analyze verify` and runs once: with the key present, a second
boot skips it (its condition fails) and the command itself changes nothing either."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.provision.provsite import ROOT, Site

UNIT = ROOT / "hw" / "edge-agent-firstboot.service"


def unit_values(key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in UNIT.read_text().splitlines() if line.startswith(key + "=")]


def test_firstboot_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system" / UNIT.name)
    shutil.copy(ROOT / "hw" / "edge-agent.service", root / "etc/systemd/system/edge-agent.service")
    verify = ["systemd-analyze", "verify", f"--root={root}", UNIT.name]
    r = subprocess.run(verify, capture_output=True, text=True, check=False)
    assert r.returncode != 0 and "edge-agent is not executable" in r.stderr  # the check can fail
    exe = root / "opt/edge-agent/venv/bin/edge-agent"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    r = subprocess.run(verify, capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert unit_values("Type") == ["oneshot"] and unit_values("Before") == ["edge-agent.service"]


def condition_holds(condition: str) -> bool:
    r = subprocess.run(["systemd-analyze", "condition", condition], capture_output=True, text=True, check=False)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode == 0


@pytest.mark.slow
def test_the_unit_runs_once(tmp_path: Path) -> None:
    """Boot twice in a temporary root: the unit's own condition (evaluated by systemd) and ExecStart
    (its arguments moved into the root), as systemd would run them."""
    [condition] = unit_values("ConditionPathExists")
    [exec_start] = unit_values("ExecStart")
    argv = shlex.split(exec_start)
    etc = argv[argv.index("--etc") + 1]
    assert condition == f"!{etc}/device.key"  # the unit watches the key the command makes
    site = Site(tmp_path)
    site.operator_setup("mqtts://127.0.0.1:8883")
    dev = site.device("dev", "10000000beef0001")
    site.cli("provision", "write", site.op / "bundle.dsse", "--trust", site.op / "provisioning.pub.json",
             "--to", dev.boot, "--style", "bookworm")

    def boot() -> str | None:
        """One boot: None when systemd skips the unit, else what the unit printed."""
        if not condition_holds(f"ConditionPathExists=!{dev.etc}/device.key"):
            return None
        args = argv[1:]
        args[args.index("--etc") + 1] = str(dev.etc)
        args.remove("--owner")
        args.remove("edge-agent")
        return site.cli(*args, "--boot", dev.boot, "--stick", dev.stick, "--device-tree", dev.dt,
                        "--nm-dir", dev.nm, "--no-publish").stdout

    first = boot()
    assert first is not None and "key" in first and (dev.etc / "device.key").is_file()
    snapshot = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in dev.root.rglob("*") if p.is_file()}
    assert boot() is None  # second boot: the condition fails, systemd skips the unit
    # and if it were started anyway (by hand), it would do nothing
    again = site.cli("firstboot", *dev.args()).stdout
    assert "nothing to do" in again
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in dev.root.rglob("*") if p.is_file()} == snapshot


def test_a_first_boot_cut_short_runs_again_in_full(tmp_path: Path) -> None:
    """The device key is written last: a power cut before it leaves the unit's condition true, and
    the next boot replaces the half-made TLS key instead of stopping at it."""
    from agent.protocol.enrolment import KEY_FILE
    from agent.provision.device import TLS_KEY_FILE, DevicePaths, firstboot

    site = Site(tmp_path)
    site.operator_setup("mqtts://127.0.0.1:8883")
    dev = site.device("dev", "10000000beef0002")
    site.cli("provision", "write", site.op / "bundle.dsse", "--trust", site.op / "provisioning.pub.json",
             "--to", dev.boot, "--style", "bookworm")
    paths = DevicePaths(etc=dev.etc, boot=(dev.boot,), media=(), device_tree=dev.dt, nm_dir=dev.nm)
    (dev.etc / TLS_KEY_FILE).write_bytes(b"half-made\n")  # the cut-short boot
    lines: list[str] = []
    assert firstboot(paths, lines.append, publish=False) == 0
    assert (dev.etc / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert (dev.etc / TLS_KEY_FILE).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert any("fingerprint to read to the operator" in line for line in lines)
