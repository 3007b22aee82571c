"""`edge-agent doctor`: every failure it knows gives its line (with the fix) and the exit code."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest
from tests.helpers import cli, wait_until

from agent import config
from agent.device import sysinfo
from agent.config import Config
from agent.doctor.checks import diagnose
from agent.doctor.report import FAIL, PASS, SKIP, WARN, Result, exit_code
from agent.protocol.enrolment import keygen


def _fake_sys(root: Path, throttled: str | None = None, temp: str | None = None) -> sysinfo.SysRoot:
    if throttled is not None:
        p = root / sysinfo.THROTTLED_PATH
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(throttled + "\n")
    if temp is not None:
        p = root / sysinfo.THERMAL_PATH
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(temp + "\n")
    return sysinfo.SysRoot(root)


def healthy_readers(tmp_path: Path, **changes: object) -> sysinfo.Readers:
    """A healthy Pi: no throttling, 50 degrees C, clock synced, 10 GB free, the service active with a watchdog."""
    base = sysinfo.Readers(
        sys=_fake_sys(tmp_path / "sysfs", "0x0", "50000"),
        clock_synced=lambda: True,
        disk=lambda path: sysinfo.DiskUsage(32 * 2**30, 10 * 2**30),
        service=lambda: sysinfo.ServiceState("active", 30_000_000),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def device(tmp_path: Path, model_dir: Path, clip: Path) -> Config:
    """A device that passes every check: its key enrolled, the default model, the real clip as camera."""
    state = tmp_path / "state"
    shutil.copytree(model_dir, state / "models")
    keygen(state, "cam-1", "lab")
    return config.replace(Config(), device={"id": "cam-1", "site": "lab", "state_dir": str(state)},
                          source={"kind": "replay", "path": str(clip)}, detector={"delegate": "cpu"})


def by_name(results: list[Result]) -> dict[str, Result]:
    return {r.name: r for r in results}


def test_a_healthy_device_passes_every_check(device: Config, tmp_path: Path) -> None:
    start = time.monotonic()
    results = diagnose(device, healthy_readers(tmp_path))
    elapsed = time.monotonic() - start
    got = by_name(results)
    assert exit_code(results) == 0, [r.line() for r in results]
    for name in ("key", "enrolment", "accelerator", "model", "camera", "detector", "clock", "disk", "outbox",
                 "power", "temperature", "service", "watchdog"):
        assert got[name].status == PASS, got[name].line()
    assert got["broker"].status == SKIP  # no [mqtt]
    assert "person" in got["detector"].message and "ms" in got["detector"].message
    assert elapsed < 5.0, f"doctor took {elapsed:.1f} s"


def test_no_key(device: Config, tmp_path: Path) -> None:
    (device.state_dir / "device.key").unlink()
    results = diagnose(device, healthy_readers(tmp_path))
    key = by_name(results)["key"]
    assert key.status == FAIL and "no device key" in key.message and "edge-agent keygen" in key.fix
    assert exit_code(results) == 2


def test_key_readable_by_others(device: Config, tmp_path: Path) -> None:
    path = device.state_dir / "device.key"
    os.chmod(path, 0o644)
    results = diagnose(device, healthy_readers(tmp_path))
    key = by_name(results)["key"]
    assert key.status == FAIL and "mode 0644" in key.message and key.fix == f"`chmod 600 {path}`"
    assert exit_code(results) == 2


def test_enrolment_for_another_device(device: Config, tmp_path: Path) -> None:
    other = config.replace(device, device={"id": "cam-2"})
    got = by_name(diagnose(other, healthy_readers(tmp_path)))["enrolment"]
    assert got.status == FAIL and "enrolled as cam-1@lab" in got.message and "cam-2@lab" in got.message


def test_model_with_the_wrong_hash(device: Config, tmp_path: Path) -> None:
    model = next((device.state_dir / "models").glob("*.tflite"))
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    results = diagnose(device, healthy_readers(tmp_path))
    got = by_name(results)
    assert got["model"].status == FAIL and "SHA-256" in got["model"].message
    assert "models fetch" in got["model"].fix
    assert got["detector"].status == SKIP  # a model that fails its pin is never loaded
    assert exit_code(results) == 2


def test_no_camera(device: Config, tmp_path: Path) -> None:
    cfg = config.replace(device, source={"kind": "v4l2", "path": str(tmp_path / "video99")})
    results = diagnose(cfg, healthy_readers(tmp_path))
    got = by_name(results)
    assert got["camera"].status == FAIL and "cannot be opened" in got["camera"].message
    assert "v4l2-ctl --list-devices" in got["camera"].fix
    assert got["detector"].status == SKIP
    assert exit_code(results) == 2


def test_full_disk(device: Config, tmp_path: Path) -> None:
    full = healthy_readers(tmp_path, disk=lambda path: sysinfo.DiskUsage(32 * 2**30, 10 * 2**20))
    results = diagnose(device, full)
    disk = by_name(results)["disk"]
    assert disk.status == FAIL and "10 MB free" in disk.message and "free space" in disk.fix
    assert exit_code(results) == 2


def test_clock_not_synchronised_warns(device: Config, tmp_path: Path) -> None:
    results = diagnose(device, healthy_readers(tmp_path, clock_synced=lambda: False))
    clock = by_name(results)["clock"]
    assert clock.status == WARN and "not synchronised" in clock.message and "timedatectl set-ntp true" in clock.fix
    assert exit_code(results) == 1


@pytest.mark.parametrize(("word", "status", "needle", "code"), [
    ("0x50005", FAIL, "now: under-voltage, throttled", 2),  # under-voltage now and since boot
    ("0x50000", WARN, "since boot: under-voltage, throttled", 1),
    ("80008", FAIL, "now: soft temperature limit", 2),  # sysfs prints the word without 0x
])
def test_throttled_bits_from_a_fake_sysfs(device: Config, tmp_path: Path, word: str, status: str, needle: str,
                                          code: int) -> None:
    readers = healthy_readers(tmp_path, sys=_fake_sys(tmp_path / f"sys-{word}", word, "50000"))
    results = diagnose(device, readers)
    power = by_name(results)["power"]
    assert power.status == status and needle in power.message, power.line()
    assert ("power supply" in power.fix) == bool(int(word, 16) & 0x10001)
    assert exit_code(results) == code


def test_hot_soc_and_no_watchdog(device: Config, tmp_path: Path) -> None:
    readers = healthy_readers(tmp_path, sys=_fake_sys(tmp_path / "hot", "0", "83500"),
                              service=lambda: sysinfo.ServiceState("active", 0))
    got = by_name(diagnose(device, readers))
    assert got["temperature"].status == FAIL and "83.5 degrees C" in got["temperature"].message
    assert got["watchdog"].status == WARN and "WatchdogSec=" in got["watchdog"].fix


def test_broker_down(device: Config, tmp_path: Path) -> None:
    from tests.fixtures.mosquitto import free_port

    cfg = config.replace(device, mqtt={"host": "127.0.0.1", "port": free_port()})
    results = diagnose(cfg, healthy_readers(tmp_path))
    broker = by_name(results)["broker"]
    assert broker.status == FAIL and "cannot reach the broker" in broker.message and "mqtt.host" in broker.fix
    assert exit_code(results) == 2


def test_something_that_is_not_a_broker(device: Config, tmp_path: Path) -> None:
    """A real socket that takes the connection and never answers (a wrong port, a web server): said
    as such, not as an unreachable address."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as silent:
        cfg = config.replace(device, mqtt={"host": "127.0.0.1", "port": silent.getsockname()[1]})
        broker = by_name(diagnose(cfg, healthy_readers(tmp_path)))["broker"]
    assert broker.status == FAIL and "sent no CONNACK in 2 s" in broker.message
    assert "[mqtt] tls matches it" in broker.message


def test_acl_denial_on_the_status_topic(device: Config, tmp_path: Path) -> None:
    """A real Mosquitto whose ACL gives cam-1 another device's topics only: the test publish is refused."""
    from tests.fixtures.mosquitto import start_mosquitto
    from tests.helpers import Subscriber

    acl = tmp_path / "acl"
    acl.write_text("user cam-1\ntopic readwrite edge/v1/lab/cam-9/#\n\nuser observer\ntopic readwrite edge/#\n")
    extra = [f"acl_file {acl}"] + (["user root"] if os.geteuid() == 0 else [])
    broker = start_mosquitto(tmp_path / "mq", extra)
    try:
        cfg = config.replace(device, mqtt={"host": "127.0.0.1", "port": broker.port})
        results = diagnose(cfg, healthy_readers(tmp_path))
        got = by_name(results)
        assert got["broker"].status == PASS
        assert got["publish"].status == FAIL and "not authorized (0x87)" in got["publish"].message
        assert "edge/v1/lab/cam-1/#" in got["publish"].fix
        assert exit_code(results) == 2
        # with the right ACL the same probe passes, and leaves nothing retained on the status topic
        acl.write_text("pattern readwrite edge/v1/+/%u/#\n\nuser observer\ntopic readwrite edge/#\n")
        broker.restart()
        ok = by_name(diagnose(cfg, healthy_readers(tmp_path)))
        assert ok["publish"].status == PASS, ok["publish"].line()
        sub = Subscriber("127.0.0.1", broker.port, "edge/v1/lab/cam-1/status", client_id="obs", username="observer")
        try:
            # a retained message arrives before anything published after the SUBACK: send a marker
            sub.client.publish("edge/v1/lab/cam-1/status", b"marker", qos=1)
            assert wait_until(lambda: sub.payloads() != [])
            assert sub.payloads() == [b"marker"]
        finally:
            sub.close()
    finally:
        broker.stop()


def test_cli_json_and_exit_code_with_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[health]\nheartbeat_z = 1\n")
    r = cli("doctor", "--config", str(bad), "--json")
    assert r.returncode == 2, r.stderr
    doc = json.loads(r.stdout)
    assert doc["exit"] == 2 and doc["checks"][0]["name"] == "config" and doc["checks"][0]["status"] == FAIL
    assert "heartbeat_s" in doc["checks"][0]["message"] and "Traceback" not in r.stderr


def test_cli_lines_with_a_fake_sysfs(device: Config, tmp_path: Path) -> None:
    sysroot = tmp_path / "sysfs"
    _fake_sys(sysroot, "0x50005", "45000")
    toml = tmp_path / "device.toml"
    toml.write_text(
        f'[device]\nid = "cam-1"\nsite = "lab"\nstate_dir = "{device.state_dir}"\n'
        f'[source]\nkind = "replay"\npath = "{device.source.path}"\n[detector]\ndelegate = "cpu"\n')
    r = cli("doctor", "--config", str(toml), "--sys-root", str(sysroot))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "FAIL power: now: under-voltage, throttled (throttled=0x50005); fix: use the official power supply" \
        in r.stdout
    assert "ok   temperature: SoC at 45.0 degrees C" in r.stdout
    assert r.stdout.rstrip().splitlines()[-1].endswith("not applicable")


def test_a_state_folder_nothing_can_use(device: Config, tmp_path: Path) -> None:
    # under /proc no folder can be made: the fix is another folder, and no disk or outbox line
    # describes a place that cannot exist
    cfg = config.replace(device, device={"state_dir": "/proc/edge-agent-state"})
    got = by_name(diagnose(cfg, healthy_readers(tmp_path)))
    assert got["state"].status == FAIL and "cannot be made there" in got["state"].fix
    assert "disk" not in got and "outbox" not in got
    fresh = config.replace(device, device={"state_dir": str(tmp_path / "not-yet")})
    state = by_name(diagnose(fresh, healthy_readers(tmp_path)))["state"]
    assert state.status == PASS and "will be made on the first run" in state.message
    assert not (tmp_path / "not-yet").exists()  # the doctor creates nothing


def test_ack_ingest_without_its_key_file(device: Config, tmp_path: Path) -> None:
    cfg = config.replace(device, outbox={"ack": "ingest", "ingest_keys": str(tmp_path / "missing.json")},
                         mqtt={"host": "127.0.0.1", "port": 1})
    got = by_name(diagnose(cfg, healthy_readers(tmp_path)))
    keys = got["ingest keys"]
    assert keys.status == FAIL and "missing.json" in keys.message and "outbox.ingest_keys" in keys.fix
    assert got["broker"].status == FAIL and "cannot reach" in got["broker"].message  # still probed


def test_no_config_names_the_missing_camera(device: Config, tmp_path: Path) -> None:
    cfg = config.replace(device, source={"kind": "replay", "path": ""})
    camera = by_name(diagnose(cfg, healthy_readers(tmp_path)))["camera"]
    assert camera.status == FAIL and "no camera configured" in camera.message and "--config" in camera.fix
