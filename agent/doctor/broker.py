"""The doctor's broker probe: connect as the device, read the broker certificate's expiry, test-publish.

The probe uses its own client id (the device's id + "-doctor"), so a running agent is not pushed
off, sets no Last Will and publishes nothing retained: one empty, non-retained QoS 1 message on the
device's own status topic, whose PUBACK code shows a missing ACL (0x87 not authorized).
"""

from __future__ import annotations

from typing import Any

import ssl
import threading
import time
from dataclasses import dataclass

from agent.config import MqttConfig
from agent.errors import AgentError
from agent.protocol import topics


@dataclass(frozen=True)
class Probe:
    """What the probe saw. error: why it could not connect (empty when it did)."""

    error: str = ""
    cert_not_after_s: float | None = None  # the broker certificate's notAfter (Unix seconds), TLS only
    puback_code: int | None = None  # None: no PUBACK within the time limit
    elapsed_s: float = 0.0


def probe(cfg: MqttConfig, device: str, site: str, timeout_s: float = 2.0) -> Probe:
    """Connect, test-publish on the status topic, disconnect; never raises for a network failure."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from agent.delivery.mqtt import no_connack, read_password

    start = time.monotonic()
    connected = threading.Event()
    acked = threading.Event()
    state: dict[str, object] = {}

    def on_connect(client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            state["refused"] = f"{reason_code} (0x{reason_code.value:02x})"
        connected.set()

    def on_publish(client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        state["code"] = int(reason_code.value) if reason_code is not None else 0
        acked.set()

    where = f"{cfg.host}:{cfg.port}"
    try:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{device}-doctor", protocol=mqtt.MQTTv5)
        c.username_pw_set(device, read_password(cfg.credentials_file))
        if cfg.tls:
            c.tls_set(ca_certs=cfg.ca_file or None, certfile=cfg.cert_file or None, keyfile=cfg.key_file or None,
                      cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    except AgentError as exc:
        return Probe(error=str(exc), elapsed_s=time.monotonic() - start)
    except (ssl.SSLError, OSError, ValueError) as exc:
        return Probe(error=f"cannot use the TLS files in [mqtt]: {exc}", elapsed_s=time.monotonic() - start)
    c.on_connect = on_connect
    c.on_publish = on_publish
    c.connect_timeout = timeout_s
    try:
        c.connect(cfg.host, cfg.port, keepalive=max(5, cfg.keepalive_s))
    except ssl.SSLError as exc:
        return Probe(error=f"TLS with the broker at {where} failed: {exc.reason or exc}",
                     elapsed_s=time.monotonic() - start)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
        return Probe(error=f"cannot reach the broker at {where} ({reason})", elapsed_s=time.monotonic() - start)
    c.loop_start()
    try:
        if not connected.wait(timeout_s):
            return Probe(error=no_connack(where, timeout_s), elapsed_s=time.monotonic() - start)
        if "refused" in state:
            return Probe(error=f"the broker at {where} refused the connection: {state['refused']}",
                         elapsed_s=time.monotonic() - start)
        not_after: float | None = None
        sock = c.socket()
        if isinstance(sock, ssl.SSLSocket):
            cert = sock.getpeercert()
            if cert and isinstance(cert.get("notAfter"), str):
                not_after = float(ssl.cert_time_to_seconds(str(cert["notAfter"])))
        c.publish(topics.status_topic(cfg.topic_prefix, site, device), b"", qos=1, retain=False)
        acked.wait(timeout_s)
        code = state.get("code")
        return Probe(cert_not_after_s=not_after, puback_code=int(code) if isinstance(code, int) else None,
                     elapsed_s=time.monotonic() - start)
    finally:
        try:
            c.disconnect()
        except (OSError, RuntimeError, ValueError):
            pass
        c.loop_stop()
