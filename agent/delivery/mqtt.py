"""One MQTT 5 session on paho-mqtt 2.x: TLS / mutual TLS, Last Will, QoS 1 publishes, PUBACK codes.

The session never decides what to send or delete: it turns the network into a queue of events
(agent.delivery.session: Connected, Disconnected, PubAck, Received) that the sender consumes. A lost
connection is never resumed: the sender opens a new Session, so paho's in-memory state (which
does not survive a power cut anyway) never re-sends behind the outbox's back.
"""

from __future__ import annotations

import logging
import ssl
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.config import MqttConfig
from agent.delivery.session import Connected, Disconnected, Events, PubAck, Received
from agent.errors import BrokerError, ConfigError
from agent.protocol import topics

log = logging.getLogger(__name__)

NOT_AUTHORIZED = 0x87


def read_password(path: str) -> str | None:
    if not path:
        return None
    try:
        return Path(path).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise BrokerError(f"cannot read mqtt.credentials_file {path!r}: {exc.strerror}") from None


def no_connack(where: str, timeout_s: float) -> str:
    """No CONNACK came. Whether anything answered cannot be told reliably from here (a gateway may
    take every connection and drop it; a TLS-only port hangs up on plain text), so the message
    names every usual cause: wrong address or port, [mqtt] tls not matching, the network."""
    return (f"the MQTT broker at {where} sent no CONNACK in {timeout_s:g} s: check that an MQTT broker listens at "
            f"that address and port, that [mqtt] tls matches it (TLS on one side only looks like this), and the "
            f"network/firewall")


def check_files(cfg: MqttConfig) -> None:
    """Fail early, with one line, on [mqtt] files that do not exist (a user mistake, not an outage)."""
    names = ["credentials_file"] + (["ca_file", "cert_file", "key_file"] if cfg.tls else [])
    for what in names:
        value = getattr(cfg, what)
        if value and not Path(value).expanduser().is_file():
            raise ConfigError(f"mqtt.{what} {value!r} not found")


class Session:
    """One MQTT connection (the session port's real backend). Events land in `events`."""

    def __init__(
        self,
        cfg: MqttConfig,
        device: str,
        site: str,
        events: Events,
        manifest: bytes | None = None,
        subscribe_acks: bool = False,
        birth: bytes | None = None,
        ha: Any = None,
        subscribe_cmd: bool = False,
    ) -> None:
        self.cfg = cfg
        self.events = events
        self.status_topic = topics.status_topic(cfg.topic_prefix, site, device)
        self.manifest_topic = topics.manifest_topic(cfg.topic_prefix, site, device)
        self.ack_topic = topics.ack_topic(cfg.topic_prefix, site, device)
        self.birth_topic = topics.birth_topic(cfg.topic_prefix, site, device)
        self.cmd_topic = topics.cmd_topic(cfg.topic_prefix, site, device)
        self.manifest = manifest
        self.birth = birth  # retained on connect: agent version, model, manifest hash
        self.ha = ha  # agent.device.homeassistant.Discovery when discovery is on
        self.subscribe_acks = subscribe_acks
        self.subscribe_cmd = subscribe_cmd
        self._connack = threading.Event()
        self._refused: str | None = None
        self.control_mids: set[int] = set()
        self.window = cfg.max_inflight
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device, protocol=mqtt.MQTTv5)
        c.username_pw_set(device, read_password(cfg.credentials_file))
        if cfg.tls:
            self._tls(c)
        c.will_set(self.status_topic, b"offline", qos=1, retain=True)
        c.max_inflight_messages_set(cfg.max_inflight)
        c.max_queued_messages_set(0)
        c.connect_timeout = cfg.connect_timeout_s
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        self.client = c

    def _tls(self, c: mqtt.Client) -> None:
        for what in ("ca_file", "cert_file", "key_file"):
            value = getattr(self.cfg, what)
            if value and not Path(value).expanduser().is_file():
                raise BrokerError(f"mqtt.{what} {value!r} not found")
        try:
            c.tls_set(
                ca_certs=self.cfg.ca_file or None,
                certfile=self.cfg.cert_file or None,
                keyfile=self.cfg.key_file or None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise BrokerError(f"cannot use the TLS files in [mqtt]: {exc}") from None

    # -- paho callbacks (network thread): translate, never decide

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if reason_code.is_failure:
            self._refused = f"{reason_code} (0x{reason_code.value:02x})"
            self._connack.set()
            return
        # The broker's Receive Maximum caps our unacknowledged publishes (exceeding it is a
        # protocol error); the status, manifest and birth publishes below take up to three of them.
        rmax = getattr(properties, "ReceiveMaximum", None) if properties is not None else None
        inflight = min(self.cfg.max_inflight, int(rmax)) if rmax else self.cfg.max_inflight
        self.window = max(1, inflight - 3)
        self._publish_control(client, self.manifest, self.birth)
        if self.subscribe_acks:
            client.subscribe(self.ack_topic, qos=1)
        if self.ha is not None:
            self.ha.reconnected()
            client.subscribe(self.ha.status_topic, qos=0)
        if self.subscribe_cmd:  # the retained latest change comes with the subscription
            client.subscribe(self.cmd_topic, qos=1)
        self.events.put(Connected(inflight))
        self._connack.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        self.events.put(Disconnected(str(reason_code)))

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: Any,
                    properties: Any) -> None:
        code = int(reason_code.value) if reason_code is not None else 0
        if mid in self.control_mids:
            self.control_mids.discard(mid)
            if code >= 0x80:
                log.warning("broker refused a retained status/manifest publish: 0x%02x", code)
            return
        self.events.put(PubAck(mid, code))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self.ha is not None and self.ha.on_message(msg.topic, bytes(msg.payload)):
            return  # Home Assistant's birth: the sender re-announces discovery
        self.events.put(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))

    def _publish_control(self, client: mqtt.Client, manifest: bytes | None, birth: bytes | None) -> None:
        """Status online, the signed manifest and the birth, retained (QoS 1, outside the window)."""
        for topic, body in ((self.status_topic, b"online"), (self.manifest_topic, manifest),
                            (self.birth_topic, birth)):
            if body is not None:
                self.control_mids.add(client.publish(topic, body, qos=1, retain=True).mid)

    # -- used by the sender thread

    def connect(self) -> None:
        """Connect and wait for the CONNACK; BrokerError (one line) when that fails."""
        where = f"{self.cfg.host}:{self.cfg.port}"
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho: unannotated
        props.SessionExpiryInterval = 0
        try:
            self.client.connect(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s,
                                clean_start=True, properties=props)
        except ssl.SSLError as exc:
            raise BrokerError(f"TLS with the MQTT broker at {where} failed: {exc.reason or exc}") from None
        except (OSError, ValueError) as exc:
            raise BrokerError(f"cannot reach the MQTT broker at {where} ({exc})") from None
        self.client.loop_start()
        if not self._connack.wait(self.cfg.connect_timeout_s):
            self.close()
            raise BrokerError(no_connack(where, self.cfg.connect_timeout_s))
        if self._refused is not None:
            self.close()
            raise BrokerError(f"the MQTT broker at {where} refused the connection: {self._refused}")

    def publish(self, topic: str, payload: bytes) -> int | None:
        """Queue a QoS 1 publish; the packet id, or None when the connection is gone."""
        info = self.client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return None
        return int(info.mid)

    def publish_retained(self, topic: str, payload: bytes) -> None:
        """A retained QoS 0 publish outside the outbox (Home Assistant discovery and state)."""
        self.client.publish(topic, payload, qos=0, retain=True)

    def announce(self, manifest: bytes | None, birth: bytes | None) -> None:
        """Publish status, the manifest and the birth again, retained (a new manifest, or asked)."""
        self.manifest, self.birth = manifest, birth
        self._publish_control(self.client, manifest, birth)

    def close(self, graceful: bool = False) -> None:
        """Stop the network thread. graceful: publish 'offline' first (a clean stop sends no Will)."""
        try:
            if graceful and self.client.is_connected():
                info = self.client.publish(self.status_topic, b"offline", qos=1, retain=True)
                info.wait_for_publish(2.0)
            self.client.disconnect()
        except (OSError, RuntimeError, ValueError):
            pass
        self.client.loop_stop()
