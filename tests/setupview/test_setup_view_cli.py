"""`edge-agent setup-view` refuses the wildcard, public addresses and more than ten minutes: one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import cli

from agent.commands.setup_view import check_bind
from agent.errors import UsageError


@pytest.mark.parametrize("args, message", [
    (["--bind", "0.0.0.0"], "every interface"),
    (["--bind", "::"], "every interface"),
    (["--bind", "8.8.8.8"], "not a local-network address"),
    (["--bind", "camera.example"], "not an IP address"),
    (["--minutes", "11"], "at most 10"),
    (["--minutes", "0"], "at most 10"),
])
def test_refused_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text("")
    r = cli("setup-view", "--config", str(cfg), "--state", str(tmp_path / "state"), *args)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and message in r.stderr and "Traceback" not in r.stderr


def test_without_a_config_file() -> None:
    r = cli("setup-view")
    assert r.returncode == 2 and "needs --config FILE" in r.stderr


def test_lan_and_loopback_addresses_are_accepted() -> None:
    assert check_bind("localhost") == "127.0.0.1"
    for addr in ("127.0.0.1", "192.168.1.20", "10.0.0.5", "172.16.3.4", "169.254.1.1", "fd00::1", "::1"):
        assert check_bind(addr) == addr
    with pytest.raises(UsageError):
        check_bind("224.0.0.1")
