"""A provisioning site in temporary roots: PKI, operator and ingest keys, a TLS broker with an
enrolment listener and a per-device ACL, CLI runs logged to files, devices with fake device trees."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.delivery.dhelpers import make_pki
from tests.fixtures.mosquitto import Mosquitto, free_port

ROOT = Path(__file__).resolve().parents[2]

SITE = "depot-3"
ENROL_USER, ENROL_PASSWORD = "enrol", "enrol-only-pw"


@dataclass
class Run:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Site:
    root: Path
    runs: list[Run] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.logs = self.root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.op = self.root / "operator"
        self.pki = make_pki(self.root / "pki", [])
        self.central = self.root / "central"
        self.central.mkdir()
        self.registry = self.central / "registry.json"

    def cli(self, *args: str | Path, ok: bool = True) -> Run:
        """`edge-agent ARGS` as a person would run it; stdout and stderr kept in logs/."""
        argv = [sys.executable, "-m", "agent", *map(str, args)]
        p = subprocess.run(argv, check=False, cwd=ROOT, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONUNBUFFERED": "1"})
        run = Run([str(a) for a in args], p.returncode, p.stdout, p.stderr)
        self.runs.append(run)
        n = len(self.runs)
        (self.logs / f"cli-{n:02d}.out").write_text(f"$ edge-agent {' '.join(run.args)}\n{p.stdout}\n{p.stderr}")
        if ok:
            assert p.returncode == 0, f"edge-agent {' '.join(run.args)}: {p.stderr}"
        return run

    def refused(self, *args: str | Path) -> str:
        """A command that must be refused with exit 2 and exactly one line on stderr; that line."""
        run = self.cli(*args, ok=False)
        assert run.returncode == 2, (run.stdout, run.stderr)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("edge-agent: error: "), run.stderr
        assert "Traceback" not in run.stderr
        return lines[0]

    # -- the operator's one-time setup

    def operator_setup(self, broker: str, enrol_broker: str = "", ingest_keys: Path | None = None) -> Path:
        self.cli("provision", "keygen", "--out", self.op)
        if ingest_keys is None:
            self.cli("keygen", "--out", self.central / "ingest-key", "--device-id", "ingest", "--site", "central")
            ingest_keys = self.central / "ingest-key" / "device.pub.json"
        pw = self.op / "enrol.password"
        pw.write_text(ENROL_PASSWORD + "\n")
        settings = self.op / "site.toml"
        settings.write_text('[health]\nheartbeat_s = 30.0\n\n[outbox]\nresend_s = 2.0\n')
        enrol = (["--enrol-broker", enrol_broker, "--enrol-user", ENROL_USER, "--enrol-password-file", pw]
                 if enrol_broker else [])
        self.cli("provision", "bundle", "--key", self.op / "provisioning.key", "--site", SITE, "--broker", broker,
                 "--ca", self.pki["ca.crt"], "--ingest-keys", ingest_keys,
                 *enrol, "--settings", settings, "--wifi-ssid", "Depot", "--wifi-psk-file", self.op / "enrol.password",
                 "--out", self.op / "bundle.dsse")
        return self.op / "bundle.dsse"

    def device(self, name: str, serial: str) -> Device:
        d = Device(self.root / name, serial)
        d.etc.mkdir(parents=True)
        (d.etc / "provisioning.pub.json").write_bytes((self.op / "provisioning.pub.json").read_bytes())
        return d


@dataclass
class Device:
    root: Path
    serial: str

    def __post_init__(self) -> None:
        self.etc, self.boot, self.stick = self.root / "etc", self.root / "boot", self.root / "stick"
        self.dt, self.state, self.nm = self.root / "device-tree", self.root / "state", self.root / "nm"
        for d in (self.boot, self.stick, self.dt):
            d.mkdir(parents=True, exist_ok=True)
        (self.dt / "serial-number").write_bytes(self.serial.encode() + b"\0")
        (self.dt / "model").write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\0")

    @property
    def id(self) -> str:
        return f"pi-{self.serial}"

    def args(self) -> list[str | Path]:
        """firstboot's and stick's folders."""
        return ["--etc", self.etc, "--boot", self.boot, "--stick", self.stick, "--device-tree", self.dt,
                "--nm-dir", self.nm]

    def rotate_args(self) -> list[str | Path]:
        """rotate-key's: the key folder, the stick, the state folder whose outbox counts the seq."""
        return ["--etc", self.etc, "--stick", self.stick, "--state", self.state]


def tls_broker(site: Site) -> tuple[Mosquitto, dict[str, int]]:
    """Events listener (mutual TLS, CN = user, own topics only), enrolment listener (server TLS,
    password, publish requests / read approvals only) and a plain loopback one for the ingest."""
    pki = site.pki
    folder = site.root / "mq"
    folder.mkdir()
    ports = {"events": free_port(), "enrol": free_port(), "plain": free_port()}
    (folder / "acl-events").write_text("pattern readwrite edge/v1/+/%u/#\n")
    (folder / "acl-enrol").write_text(f"user {ENROL_USER}\n"
                                      "topic write edge/v1/+/+/enrol\ntopic read edge/v1/+/+/enrolled\n")
    pw = folder / "passwords"
    pw.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(pw), ENROL_USER, ENROL_PASSWORD], check=True, capture_output=True)
    tls = [f"cafile {pki['ca.crt']}", f"certfile {pki['server.crt']}", f"keyfile {pki['server.key']}"]
    lines = [
        "per_listener_settings true", "persistence false", "log_dest stdout", "log_type error", "log_type warning",
        "log_type notice",
        f"listener {ports['events']} 127.0.0.1", *tls, "require_certificate true", "use_identity_as_username true",
        "allow_anonymous false", f"acl_file {folder / 'acl-events'}",
        f"listener {ports['enrol']} 127.0.0.1", *tls, "allow_anonymous false", f"password_file {pw}",
        f"acl_file {folder / 'acl-enrol'}",
        f"listener {ports['plain']} 127.0.0.1", "allow_anonymous true",
    ]
    if os.geteuid() == 0:  # as root mosquitto drops to its own user, which cannot read pytest's tmp folder
        lines.append("user root")
    broker = Mosquitto("127.0.0.1", ports["plain"], folder, lines)
    broker.start()
    return broker, ports
