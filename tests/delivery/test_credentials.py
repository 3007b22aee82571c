"""Username = device id with the password from mqtt.credentials_file; a wrong one is one clear line."""

from __future__ import annotations

import os
import queue
import subprocess
from pathlib import Path

import pytest

from agent import config
from agent.config import MqttConfig
from agent.errors import BrokerError, ConfigError
from agent.delivery.mqtt import Session
from tests.fixtures.mosquitto import start_mosquitto


def test_password_file_login_and_refusal(tmp_path: Path) -> None:
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "cam-1", "s3cret"], check=True, capture_output=True)
    lines = ["allow_anonymous false", f"password_file {pw}"]
    if os.geteuid() == 0:
        lines.append("user root")
    broker = start_mosquitto(tmp_path / "mq", lines)
    try:
        good, bad = tmp_path / "good", tmp_path / "bad"
        good.write_text("s3cret\n")
        bad.write_text("guess\n")
        ok = Session(MqttConfig(port=broker.port, credentials_file=str(good)), "cam-1", "lab", queue.SimpleQueue())
        ok.connect()
        assert ok.client.is_connected()
        ok.close(graceful=True)
        refused = Session(MqttConfig(port=broker.port, credentials_file=str(bad)), "cam-1", "lab",
                          queue.SimpleQueue())
        with pytest.raises(BrokerError, match="refused the connection") as err:
            refused.connect()
        assert "\n" not in str(err.value)
        with pytest.raises(BrokerError, match="credentials_file"):
            Session(MqttConfig(port=broker.port, credentials_file=str(tmp_path / "missing")), "cam-1", "lab",
                    queue.SimpleQueue())
    finally:
        broker.stop()


def test_delivery_config_checks() -> None:
    cfg = config.parse({"outbox": {"ack": "ingest", "ingest_keys": "k.json", "max_rows": 10},
                        "mqtt": {"tls": True, "cert_file": "c", "key_file": "k"}, "health": {"heartbeat_s": 5}})
    assert cfg.outbox.ingest_keys == "k.json" and cfg.mqtt is not None and cfg.mqtt.max_inflight == 1000
    with pytest.raises(ConfigError, match="key_file"):
        config.parse({"mqtt": {"tls": True, "cert_file": "c"}})
    with pytest.raises(ConfigError, match="did you mean 'ingest_keys'"):
        config.parse({"outbox": {"ingest_key": "k"}})
    with pytest.raises(ConfigError, match="max_rows"):
        config.parse({"outbox": {"max_rows": -1}})


def test_missing_tls_file_in_run_config_is_one_line_exit_2(tmp_path: Path, model_dir: Path, clip: Path) -> None:
    from tests.helpers import cli

    cfg = tmp_path / "a.toml"
    cfg.write_text(f'[detector]\nmodel_dir = "{model_dir}"\n[mqtt]\ntls = true\nca_file = "{tmp_path / "nope.crt"}"\n')
    r = cli("replay", str(clip), "--config", str(cfg), "--state", str(tmp_path / "s"), "--max-frames", "1")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("edge-agent: error: mqtt.ca_file")
    assert "Traceback" not in r.stderr
