"""Issue 13 item 2: a state folder this user cannot write is one line naming the folder and the fix.

As root (CI), a read-only tmpfs or a read-only bind mount stands in for a folder without write
permission (root ignores modes); as another user, chmod does."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import cli

ROOT_USER = os.geteuid() == 0


def _mount(*args: str) -> None:
    r = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.fail(f"this test needs `mount` as root for a read-only folder: {r.stderr.strip()}")


@contextlib.contextmanager
def read_only_copy(tmp_path: Path) -> Iterator[Path]:
    """A folder holding tmp_path/'seed' (if any) that this user cannot write."""
    seed, folder = tmp_path / "seed", tmp_path / "ro"
    folder.mkdir()
    if ROOT_USER:
        if seed.exists():
            _mount("--bind", str(seed), str(folder))
            _mount("-o", "remount,ro,bind", str(folder))
        else:
            _mount("-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder))
        try:
            yield folder
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    else:
        if seed.exists():
            folder.rmdir()
            shutil.copytree(seed, folder)
        for p in [folder, *folder.rglob("*")]:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield folder
        finally:
            for p in [folder, *folder.rglob("*")]:
                p.chmod(0o755 if p.is_dir() else 0o644)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    with read_only_copy(tmp_path) as folder:
        yield folder


def one_line_naming(r: subprocess.CompletedProcess[str], folder: Path) -> str:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    # the fix for the cause: as root the folder is a read-only mount, otherwise a permission
    assert str(folder) in r.stderr and ("remount it read-write" if ROOT_USER else "chown") in r.stderr, r.stderr
    return r.stderr


def test_model_and_sample_commands_on_a_read_only_state(read_only: Path, assets: Path) -> None:
    one_line_naming(
        cli(
            "models",
            "fetch",
            "ssd_mobilenet_v1_coco_quant",
            "--from",
            str(assets / "models"),
            "--offline",
            "--state",
            str(read_only),
        ),
        read_only,
    )
    model = assets / "models" / "ssd_mobilenet_v1_coco_quant" / "detect.tflite"  # a known model
    one_line_naming(cli("models", "import", str(model), "--state", str(read_only)), read_only)
    one_line_naming(
        cli(
            "samples",
            "fetch",
            "--from",
            str(assets / "video"),
            "--offline",
            "--dest",
            str(read_only / "samples"),
        ),
        read_only,
    )


def test_replay_and_run_on_a_read_only_state(read_only: Path, tmp_path: Path, clip: Path) -> None:
    one_line_naming(cli("replay", str(clip), "--state", str(read_only)), read_only)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[source]\nkind = "synthetic"\nmax_frames = 3\n')
    one_line_naming(cli("run", "--config", str(cfg), "--state", str(read_only)), read_only)


def test_outbox_stats_on_a_read_only_state(tmp_path: Path) -> None:
    from agent.delivery.outbox import Outbox

    seed = tmp_path / "seed"
    seed.mkdir()
    Outbox(seed / "outbox.db").close()
    assert cli("outbox", "stats", "--state", str(seed)).returncode == 0
    with read_only_copy(tmp_path) as folder:
        one_line_naming(cli("outbox", "stats", "--state", str(folder)), folder)


def test_a_folder_that_cannot_exist_is_not_sent_to_chown(clip: Path) -> None:
    # /proc takes no new folders, whoever asks: the fix is another folder, not an owner
    r = cli("replay", str(clip), "--state", "/proc/edge-agent-state")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "cannot be made there" in r.stderr and "chown" not in r.stderr
