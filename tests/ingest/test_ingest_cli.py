"""`edge-agent ingest` mistakes are one line and exit code 2; the [ingest] config section."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import config as device_config
from agent.central import config
from agent.errors import ConfigError
from agent.protocol.enrolment import keygen
from tests.fixtures.mosquitto import free_port
from tests.helpers import cli


def one_line(r) -> str:  # type: ignore[no-untyped-def]
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "ingest.toml"
    p.write_text("[ingest]\n" + body)
    return p


def test_ingest_section_defaults_and_values(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, 'broker = "mqtts://broker.example:8883"\ngroup = "g2"\n'))
    assert (cfg.host, cfg.port, cfg.tls, cfg.group) == ("broker.example", 8883, True, "g2")
    assert config.IngestConfig().database.startswith("sqlite:///")
    # the device's loader leaves [ingest] to the ingest (it only checks that it is a table)
    assert device_config.load(write(tmp_path, 'grup = "x"\n')).device.id
    for bad, needle in [('broker = "tcp://x"', "ingest.broker"), ('database = "mysql://x"', "ingest.database"),
                        ('group = "a/b"', "ingest.group"), ("batch_size = 0", "ingest.batch_size"),
                        ("grup = 'x'", "did you mean 'group'")]:
        with pytest.raises(ConfigError, match=needle):
            config.load(write(tmp_path, bad + "\n"))


def test_worker_mistakes_are_one_line(tmp_path: Path) -> None:
    keygen(tmp_path / "k", "ingest", "central")
    reg = tmp_path / "registry.json"
    reg.write_text('{"devices": []}')
    db = f"sqlite:///{tmp_path / 'i.db'}"
    key = tmp_path / "k" / "device.key"
    base = f'registry = "{reg}"\ndatabase = "{db}"\n'
    assert "ingest.key is not set" in one_line(cli("ingest", "--config", str(write(tmp_path, base))))
    line = one_line(cli("ingest", "--config", str(write(tmp_path, base.replace(str(reg), str(tmp_path / "no.json"))
                                                         + f'key = "{key}"\n'))))
    assert "no.json" in line and "not found" in line
    port = free_port()  # nothing listens there
    line = one_line(cli("ingest", "--config", str(write(tmp_path, base + f'key = "{key}"\n'
                                                         f'broker = "mqtt://127.0.0.1:{port}"\n'))))
    assert "cannot reach the MQTT broker" in line
    line = one_line(cli("ingest", "stats", "--database", f"postgresql://nobody@127.0.0.1:{port}/x"))
    assert "cannot connect to PostgreSQL" in line


def test_ingest_imports_no_capture_detect_or_array_code() -> None:
    import subprocess
    import sys

    code = ("import sys, agent.central.ingest.worker, agent.central.ingest.stats\n"
            "import agent.commands.ingest, agent.central.registry\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('numpy', 'cv2', 'ai_edge_litert', "
            "'tflite_runtime') or m.startswith(('agent.capture', 'agent.detect'))]\n"
            "print(bad)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", (r.stdout, r.stderr)
