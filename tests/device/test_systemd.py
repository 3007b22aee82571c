"""Supervision: READY after the first frame, WATCHDOG only while the frame loop and sender progress,
STATUS lines; the unit as installed passes `systemd-analyze verify`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.helpers import ROOT, stop_by_pid

from agent.device.systemd import Notifier, Supervisor, Watchdog, watchdog_interval_s

UNIT = ROOT / "hw" / "edge-agent.service"
WATCHDOG_S = 0.8  # the WatchdogSec the test plays systemd with: pings every 0.2 s, stall after 0.4 s


class Listener:
    """The systemd side of the notify protocol: a datagram socket the agent writes to."""

    def __init__(self, address: str, family_path: str | None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(family_path if family_path else "\0" + address[1:])
        self.address = address
        self.messages: list[tuple[float, list[str]]] = []

    def next(self, timeout: float) -> list[str] | None:
        """The next datagram's lines, or None when none came within timeout seconds."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return None
        lines = data.decode().split("\n")
        self.messages.append((time.monotonic(), lines))
        return lines

    def wait_for(self, predicate, timeout: float) -> list[str]:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            lines = self.next(left)
            if lines is not None and predicate(lines):
                return lines
        raise AssertionError(f"no such notification within {timeout} s; got {self.messages[-5:]}")

    def close(self) -> None:
        self.sock.close()


def start_agent(tmp_path: Path, model_dir: Path, notify: str, stall_after: int) -> subprocess.Popen[str]:
    state = tmp_path / "state"
    keys = subprocess.run([sys.executable, "-m", "agent", "keygen", "--out", str(tmp_path / "keys"),
                           "--device-id", "cam-1", "--site", "lab"],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert keys.returncode == 0, keys.stderr
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        f'[device]\nstate_dir = "{state}"\nkey = "{tmp_path / "keys" / "device.key"}"\nprofile = "generic"\n'
        f'[detector]\nmodel_dir = "{model_dir}"\n'
        f'[source]\nkind = "synthetic"\nstall_after = {stall_after}\n'
    )
    env = dict(os.environ, NOTIFY_SOCKET=notify, WATCHDOG_USEC=str(int(WATCHDOG_S * 1e6)))
    return subprocess.Popen([sys.executable, "-m", "agent", "run", "--config", str(cfg)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("abstract", [True, False], ids=["abstract", "path"])
def test_ready_watchdog_status_and_pings_stop_when_the_frame_loop_hangs(
    tmp_path: Path, model_dir: Path, abstract: bool
) -> None:
    path = None if abstract else str(tmp_path / "notify.sock")
    address = f"@edge-agent-test-{os.getpid()}-{tmp_path.name}" if abstract else str(path)
    listener = Listener(address, path)
    proc = start_agent(tmp_path, model_dir, address, stall_after=60)
    try:
        ready = listener.wait_for(lambda lines: "READY=1" in lines, timeout=120)
        assert any(line.startswith("STATUS=") for line in ready)
        pings = 0
        while pings < 3:  # regular pings while frames flow
            lines = listener.wait_for(lambda lines: "WATCHDOG=1" in lines, timeout=WATCHDOG_S)
            assert any(line.startswith("STATUS=") and "frames/s" in line and "outbox" in line for line in lines)
            pings += 1
        # After frame 60 the scripted camera blocks: the status says which part stalled, pings stop
        stalled = listener.wait_for(lambda lines: any("no progress: frame loop" in x for x in lines), timeout=120)
        assert "WATCHDOG=1" not in stalled
        quiet_until = time.monotonic() + 3 * WATCHDOG_S  # systemd would have killed us long before
        while (left := quiet_until - time.monotonic()) > 0:
            lines = listener.next(left)
            assert lines is None or "WATCHDOG=1" not in lines, "a ping after the frame loop hung"
        assert proc.poll() is None  # still hanging: only the watchdog notices
    finally:
        stop_by_pid(proc, grace_s=2)
        listener.close()
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert "board profile: generic" in err
    assert "no progress in the frame loop" in err


def test_watchdog_needs_both_the_frame_loop_and_the_sender() -> None:
    now = [0.0]
    counters = {"frame loop": 0, "sender": 0}
    dog = Watchdog({k: (lambda k=k: counters[k]) for k in counters}, stall_s=1.0, clock=lambda: now[0])
    for _ in range(5):  # both move
        now[0] += 0.5
        counters["frame loop"] += 1
        counters["sender"] += 1
        assert dog.stalled() == []
    for _ in range(2):  # the sender wedges: frames alone are not enough
        now[0] += 0.5
        counters["frame loop"] += 1
        dog.stalled()
    assert dog.stalled() == ["sender"]
    now[0] += 0.5
    counters["sender"] += 1
    assert dog.stalled() == []  # it recovered


def test_supervisor_sends_ready_once_after_the_first_frame(tmp_path: Path) -> None:
    path = str(tmp_path / "n.sock")
    listener = Listener(path, path)
    frames = [0]
    sup = Supervisor(Notifier(path), lambda: frames[0], lambda: 7, None, interval_s=None)
    try:
        sup.probe.tick(0.0)  # a camera-lost beat: no frame yet
        assert listener.next(0.05) is None
        frames[0] = 1
        sup.probe.tick(0.1)
        sup.probe.tick(0.2)
        first = listener.next(1.0)
        assert first is not None and first[0] == "READY=1" and "outbox 7 envelopes" in first[1]
        assert listener.next(0.05) is None  # once
    finally:
        sup.stop()
        assert listener.next(1.0) == ["STOPPING=1"]
        listener.close()


def test_notify_environment() -> None:
    assert not Notifier(None).enabled and not Notifier("relative").enabled
    assert watchdog_interval_s({"WATCHDOG_USEC": "60000000"}) == 60.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}, pid=2) is None  # not ours
    assert watchdog_interval_s({}) is None
    assert Supervisor.from_env(lambda: 0, lambda: 0, None, env={}) is None  # not under systemd: nothing runs


def fake_root(tmp_path: Path) -> Path:
    """A root as install.sh leaves it: systemd's own units, ours, and the ExecStart it names."""
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system/edge-agent.service")
    return root


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    exe = root / "opt/edge-agent/venv/bin/edge-agent"
    verify = ["systemd-analyze", "verify", f"--root={root}", "edge-agent.service"]
    r = subprocess.run(verify, capture_output=True, text=True, check=False)
    assert r.returncode != 0 and "edge-agent is not executable" in r.stderr  # the check can fail
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    r = subprocess.run(verify, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "ProtectSystem=strict", "NoNewPrivileges=true", "PrivateTmp=true",
                 "StateDirectoryMode=0700", "LoadCredential=device.key:/etc/edge-agent/device.key"):
        assert line in text
