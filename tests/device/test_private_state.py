"""The state folder is 0700 and everything in it 0600 whatever the umask: outbox (and SQLite's -wal/-shm),
counters, keys, models."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from agent.detect import catalogue

from tests.helpers import ROOT


def agent(*args: str, umask: int = 0o022) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
        preexec_fn=lambda: os.umask(umask), check=False,
    )


def modes(folder: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(folder.stat().st_mode)}
    for p in folder.rglob("*"):
        out[str(p.relative_to(folder))] = stat.S_IMODE(p.lstat().st_mode)
    return out


def test_state_is_private_under_umask_022(tmp_path: Path, assets: Path, clip: Path) -> None:
    state = tmp_path / "state"
    spec = catalogue.model(catalogue.default_model())
    r = agent("models", "fetch", spec.id, "--from", str(assets / "models"), "--offline",
              "--state", str(state))
    assert r.returncode == 0, r.stderr
    r = agent("keygen", "--out", str(tmp_path / "keys"), "--device-id", "d1", "--site", "s1")
    assert r.returncode == 0, r.stderr
    r = agent("replay", str(clip), "--state", str(state), "--max-frames", "20")
    assert r.returncode == 0, r.stderr
    found = modes(state)
    assert {"outbox.db", f"models/{spec.file}", "device.key", "device.pub.json"} <= set(found)
    # the outbox is still open while WAL mode is on, so both side files existed during the run; on
    # close SQLite may remove them: check whichever are left, and check them directly below as well
    for name, mode in found.items():
        is_dir = (state / name).is_dir()
        assert mode == (0o700 if is_dir else 0o600), f"{name} is {oct(mode)}"
    assert modes(tmp_path / "keys") == {".": 0o700, "device.key": 0o600, "device.pub.json": 0o600}


def test_wal_and_shm_files_are_private_while_open(tmp_path: Path) -> None:
    """SQLite creates -wal and -shm with the database's mode; an old world-readable outbox is tightened."""
    from agent.delivery.outbox import Outbox
    from agent.device.private import private_umask

    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    old = state / "outbox.db"
    old.write_bytes(b"")
    old.chmod(0o644)
    previous = os.umask(0o022)
    try:
        box = Outbox(old)
        try:
            box.append(lambda seq: ("t", b"envelope %d" % seq))
            names = {p.name: stat.S_IMODE(p.stat().st_mode) for p in state.iterdir()}
        finally:
            box.close()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert names["outbox.db"] == 0o600
    assert names.get("outbox.db-wal") == 0o600 and names.get("outbox.db-shm") == 0o600, names
    with private_umask():
        assert os.umask(0o077) == 0o077  # inside: 077
    assert os.umask(0o022) == 0o022  # restored after
