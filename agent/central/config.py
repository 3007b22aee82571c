"""The central ingest's settings: the [ingest] section of a TOML config file, frozen."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import Config, check_id, read_toml, section
from agent.config import described as _help
from agent.errors import ConfigError
from agent.protocol.topics import DEFAULT_PREFIX, MAX_EVENT_BYTES, MAX_MANIFEST_BYTES


@dataclass(frozen=True)
class IngestConfig:
    broker: str = _help("Broker URL: mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS.", "mqtt://127.0.0.1:1883")
    ca_file: str = _help("CA certificate (PEM) that signed the broker's certificate (mqtts).", "")
    cert_file: str = _help("Client certificate (PEM) for mutual TLS.", "")
    key_file: str = _help("Client private key (PEM) for mutual TLS.", "")
    username: str = _help("MQTT user name (empty: none).", "")
    password_file: str = _help("File holding the MQTT password.", "")
    topic_prefix: str = _help("Topic prefix the devices publish under.", DEFAULT_PREFIX)
    group: str = _help("Shared-subscription group: workers with the same group split the load.", "edge-ingest")
    client_id: str = _help("MQTT client id (empty: ingest-HOST-PID).", "")
    registry: str = _help("Registry file of enrolment records (edge-agent registry add).", "registry.json")
    database: str = _help("sqlite:///PATH (embedded default) or postgresql://...", "sqlite:///ingest.db")
    key: str = _help("The ingest's Ed25519 key that signs acks (edge-agent keygen ... device.key).", "")
    max_message_bytes: int = _help("Messages larger than this are quarantined as oversized, unparsed.",
                                   MAX_EVENT_BYTES)
    max_manifest_bytes: int = _help("The same for a device's signed privacy manifest (it lists zones, lines "
                                    "and rules, so it is larger than an event).", MAX_MANIFEST_BYTES)
    quarantine_raw_bytes: int = _help("At most this many raw bytes of a rejected message are kept.", 4096)
    batch_size: int = _help("Most messages stored in one transaction.", 500)
    batch_ms: int = _help("Longest wait to fill a batch, in milliseconds.", 50)
    inbox_max: int = _help("Messages waiting between the network thread and the database (QoS 0 "
                           "beyond it are dropped and counted; QoS 1 wait, unacknowledged).", 10_000)
    ack_interval_ms: int = _help("At most one ack per device per this many milliseconds.", 200)
    keepalive_s: int = _help("MQTT keep-alive.", 30)

    def __post_init__(self) -> None:
        scheme, _, rest = self.broker.partition("://")
        host, _, port = rest.rpartition(":")
        if scheme not in ("mqtt", "mqtts") or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"ingest.broker {self.broker!r} must look like mqtt://HOST:PORT or mqtts://HOST:PORT")
        if not self.database.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError(f"ingest.database {self.database!r} must start with sqlite:/// or postgresql://")
        check_id(self.group, "ingest.group")
        for name in ("max_message_bytes", "max_manifest_bytes", "quarantine_raw_bytes", "batch_size", "batch_ms",
                     "keepalive_s", "inbox_max"):
            if getattr(self, name) < 1:
                raise ValueError(f"ingest.{name} must be >= 1")
        if self.ack_interval_ms < 0:
            raise ValueError("ingest.ack_interval_ms must be >= 0")

    @property
    def host(self) -> str:
        return self.broker.partition("://")[2].rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.broker.rpartition(":")[2])

    @property
    def tls(self) -> bool:
        return self.broker.startswith("mqtts://")


def parse(table: dict[str, Any]) -> IngestConfig:
    """The [ingest] section of a parsed TOML table (defaults when it is absent)."""
    cfg: IngestConfig = section(IngestConfig, table, "ingest")
    return cfg


def load(path: str | Path | None) -> IngestConfig:
    """The [ingest] section of a TOML config file; None gives the defaults. Other sections are the
    device's (agent.config) and are not read here."""
    if path is None:
        return IngestConfig()
    table = read_toml(path)
    # a file may hold a device's sections too; anything else is a typo that would leave [ingest] unset
    known = {"ingest", *Config.__dataclass_fields__}
    for name in table:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean [{close[0]}]?" if close else "; the ingest reads [ingest]"
            raise ConfigError(f"{path}: unknown section [{name}]{hint}")
    return parse(table)


def replace(cfg: IngestConfig, **values: Any) -> IngestConfig:
    """A copy of cfg with some fields replaced (a command-line override), checked like the file."""
    try:
        return dataclasses.replace(cfg, **values)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
