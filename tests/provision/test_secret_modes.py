"""The device's copy of the site bundle (Wi-Fi key, enrolment password) and the NetworkManager
connection are 0600 whatever the umask, also when an older version left them readable."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.protocol.dsse import SigningKey
from agent.protocol.provisioning import Bundle, key_record
from agent.provision.device import NM_FILE, DevicePaths, write_site_files
from agent.provision.files import BUNDLE_FILE, write_public, write_secret

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o000, 0o022], ids=["umask-000", "umask-022"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def site_bundle(op: SigningKey) -> tuple[Bundle, bytes]:
    bundle = Bundle("depot-3", "mqtts://broker:8883", CA, (key_record(SigningKey.generate().public_key),),
                    key_record(op.public_key), 1700000000, enrol_broker="mqtts://broker:8884",
                    enrol_username="enrol", enrol_password="enrol-only-pw",
                    wifi={"ssid": "Depot", "psk": "wifi-secret-psk"})
    return bundle, bundle.sign(op)


def test_the_bundle_and_the_wifi_connection_are_root_only(tmp_path: Path, umask: int) -> None:
    paths = DevicePaths(etc=tmp_path / "etc", nm_dir=tmp_path / "nm", boot=(), media=())
    bundle, envelope = site_bundle(SigningKey.generate())
    changed = write_site_files(paths, bundle, envelope, "pi-1")
    assert BUNDLE_FILE in changed and NM_FILE in changed
    assert mode(paths.etc / BUNDLE_FILE) == 0o600
    assert mode(paths.nm_dir / NM_FILE) == 0o600
    assert "psk=wifi-secret-psk" in (paths.nm_dir / NM_FILE).read_text()
    # the public files keep their modes: the service reads the config (group) and the CA
    assert mode(paths.etc / "agent.toml") == 0o640 and mode(paths.etc / "ca.crt") == 0o644
    assert not list(paths.etc.glob("*.tmp")) and not list(paths.nm_dir.glob("*.tmp"))


def test_a_bundle_an_older_version_left_readable_is_tightened(tmp_path: Path, umask: int) -> None:
    paths = DevicePaths(etc=tmp_path / "etc", nm_dir=tmp_path / "nm", boot=(), media=())
    bundle, envelope = site_bundle(SigningKey.generate())
    paths.etc.mkdir()
    (paths.etc / BUNDLE_FILE).write_bytes(envelope)  # the same bundle, 0644 as before this fix
    (paths.etc / BUNDLE_FILE).chmod(0o644)
    changed = write_site_files(paths, bundle, envelope, "pi-1")
    assert BUNDLE_FILE not in changed  # the content did not change ...
    assert mode(paths.etc / BUNDLE_FILE) == 0o600  # ... its mode did


def test_a_readable_leftover_tmp_is_not_reused_for_a_secret(tmp_path: Path, umask: int) -> None:
    target = tmp_path / "secret.dsse"
    leftover = tmp_path / "secret.dsse.tmp"  # a write cut short, world-readable and writable
    leftover.write_bytes(b"old")
    leftover.chmod(0o666)
    assert write_secret(target, b"psk")
    assert mode(target) == 0o600 and target.read_bytes() == b"psk" and not leftover.exists()
    assert not write_secret(target, b"psk")  # unchanged content: no write
    assert write_public(tmp_path / "public.json", b"{}") and mode(tmp_path / "public.json") == 0o644
