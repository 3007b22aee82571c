"""Review findings at the trust and file boundaries: hostile JSON, untrusted key ids, duplicate
registry keys, and OS errors as one line with exit 2 (in-process main(), so a traceback fails)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from agent.cli import main
from agent.errors import SignatureError, UsageError
from agent.protocol.enrolment import keygen, load_registry, save_registry
from agent.protocol.dsse import EVENT_PAYLOAD_TYPE, SigningKey, strict_json, verify_envelope
from tests.helpers import cli

HUGE = b"9" * 5000


def one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)  # anything but an AgentError propagates here and fails the test
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1, (code, err)
    return lines[0]


def test_huge_integers_are_malformed_not_a_crash() -> None:
    for text in (HUGE, b'{"a":' + HUGE + b"}", b'{"a":-' + b"1" * 21 + b"}"):
        with pytest.raises(SignatureError) as exc:
            strict_json(text)
        assert exc.value.reason == "malformed"
    assert strict_json(b'{"a":-9223372036854775808}') == {"a": -9223372036854775808}
    # an envelope whose outer JSON holds one: rejected before any signature work
    key = SigningKey.generate()
    with pytest.raises(SignatureError) as exc:
        verify_envelope(b'{"payloadType":"x","payload":"","signatures":' + HUGE + b"}", {key.keyid: key.public_key})
    assert exc.value.reason == "malformed"


def test_verify_cli_one_line_per_hostile_envelope(tmp_path: Path) -> None:
    rec = keygen(tmp_path / "k", "cam-1", "lab")
    registry = tmp_path / "registry.json"
    save_registry(registry, [rec])
    ansi = json.dumps({"payloadType": EVENT_PAYLOAD_TYPE, "payload": base64.b64encode(b"{}").decode(),
                       "signatures": [{"keyid": "\x1b[31mEVIL\x1b[0m", "sig": base64.b64encode(bytes(64)).decode()}]})
    lines = [b'{"payloadType":' + HUGE + b"}", b"[" + HUGE + b"]", ansi.encode()]
    r = cli("verify", "-", "--registry", str(registry), stdin=b"\n".join(lines) + b"\n")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    out = r.stdout.splitlines()
    assert out[0].startswith("line 1: BAD malformed") and out[1].startswith("line 2: BAD malformed")
    assert out[2].startswith("line 3: BAD unknown-key") and "\x1b" not in r.stdout
    assert "'\\x1b[31mEVIL" in out[2]
    assert out[-1] == "verified: 0 ok, 3 bad, 0 duplicates, 0 gaps"


def test_registry_with_a_duplicate_keyid_is_refused(tmp_path: Path) -> None:
    rec = keygen(tmp_path / "k", "cam-1", "lab")
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"devices": [rec.to_json(), rec.to_json() | {"status": "revoked"}]}))
    with pytest.raises(UsageError, match="records 1 and 2 have the same keyid"):
        load_registry(path)


def test_os_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keygen(tmp_path / "k", "cam-1", "lab")
    pub = str(tmp_path / "k" / "device.pub.json")
    env = tmp_path / "e.jsonl"
    env.write_text("")
    folder = str(tmp_path)
    assert "cannot read registry" in one_line(capsys, ["verify", str(env), "--registry", folder])
    assert "cannot read registry" in one_line(capsys, ["registry", "list", "--registry", folder])
    assert "cannot read registry" in one_line(capsys, ["registry", "add", pub, "--registry", folder])
    assert "does not exist" in one_line(capsys, ["registry", "list", "--registry", str(tmp_path / "typo.json")])
    assert "cannot write registry" in one_line(capsys, ["registry", "add", pub, "--registry", "/proc/reg.json"])
    assert "is a file" in one_line(capsys, ["keygen", "--out", pub, "--device-id", "d", "--site", "s"])
    assert "cannot write the key" in one_line(capsys, ["keygen", "--out", "/proc/x", "--device-id", "d", "--site", "s"])
    assert "no ingest database" in one_line(capsys, ["ingest", "stats", "--database", "sqlite:////proc/x/y.db"])


def test_stats_without_a_config_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert "no ingest database" in one_line(capsys, ["ingest", "stats"])
    assert list(tmp_path.iterdir()) == []


def test_store_folder_that_does_not_exist_is_a_state_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # never made on the operator's behalf: a typo would start a second, empty database unnoticed
    from agent.errors import StateError
    from agent.central.store import open_store

    with pytest.raises(StateError, match="'/proc/x' for the ingest database does not exist"):
        open_store("sqlite:////proc/x/y.db")
    with pytest.raises(StateError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path}/typo/ingest.db")
    # three slashes make a relative path (SQLAlchemy's convention): the hint names the four
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StateError, match=r"write four slashes: sqlite:////tmp/"):
        open_store("sqlite:///tmp/ingest-elsewhere/ingest.db")
    assert list(tmp_path.iterdir()) == []


def test_a_running_ingest_keeps_its_registry_when_the_file_becomes_unreadable(tmp_path: Path) -> None:
    from agent.central.ingest.worker import RegistryWatch

    path = tmp_path / "registry.json"
    save_registry(path, [keygen(tmp_path / "k", "cam-1", "lab")])
    watch = RegistryWatch(path)
    path.unlink()
    path.mkdir()  # an operator's mistake: now a folder (IsADirectoryError)
    assert watch.poll(force=True) is None and [r.device_id for r in watch.records] == ["cam-1"]
    path.rmdir()
    path.write_text(json.dumps({"devices": [watch.records[0].to_json()] * 2}))  # a duplicate keyid
    assert watch.poll(force=True) is None and len(watch.records) == 1


def test_operator_typos_are_said_not_started_afresh(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keygen(tmp_path / "dev", "cam-1", "lab")
    pub = tmp_path / "dev" / "device.pub.json"
    # a registry in a folder that does not exist: refused, nothing made
    line = one_line(capsys, ["registry", "add", str(pub), "--registry", str(tmp_path / "typo" / "registry.json")])
    assert "for the registry does not exist" in line and not (tmp_path / "typo").exists()
    # a new registry file is said
    reg = tmp_path / "registry.json"
    assert main(["registry", "add", str(pub), "--registry", str(reg)]) == 0
    assert f"new registry file {reg}" in capsys.readouterr().out
    # approving a device that is enrolled and asked for nothing: said as such
    op = tmp_path / "op"
    keygen(op, "ingest", "central")
    line = one_line(capsys, ["registry", "approve", "cam-1", "--fingerprint", "0000-0000", "--registry", str(reg),
                             "--key", str(op / "device.key")])
    assert "'cam-1' is already enrolled" in line


def test_clear_conflict_of_a_device_the_ingest_never_saw(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from agent.central.store import open_store

    db = tmp_path / "ingest.db"
    open_store(f"sqlite:///{db}").close()
    line = one_line(capsys, ["ingest", "clear-conflict", "cam-nope", "--database", f"sqlite:///{db}"])
    assert "stored nothing of device 'cam-nope'" in line
