"""Helpers for the delivery tests: certificates, a persistent-session subscriber, a stand-in ingest."""

from __future__ import annotations

import datetime
import ipaddress
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path


from tests import helpers
from agent.protocol.enrolment import Enrolment, enrolment
from agent.protocol.dsse import SigningKey
from agent.protocol.acks import ack_envelope
from agent.protocol.topics import DEFAULT_PREFIX, ack_topic, all_events_filter, parse_topic
from agent.central.verify import Verifier


def make_pki(folder: Path, clients: list[str]) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost and one client certificate per CN."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    out: dict[str, Path] = {}

    def write(name: str, key, cert) -> None:  # type: ignore[no-untyped-def]
        (folder / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        (folder / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out[f"{name}.key"], out[f"{name}.crt"] = folder / f"{name}.key", folder / f"{name}.crt"

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edge-test-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    write("ca", ca_key, ca)

    def leaf(cn: str, server: bool):  # type: ignore[no-untyped-def]
        key = ec.generate_private_key(ec.SECP256R1())
        b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
             .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
        if server:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return key, b.sign(ca_key, hashes.SHA256())

    write("server", *leaf("localhost", True))
    for cn in clients:
        write(cn, *leaf(cn, False))
    return out


@dataclass
class Subscriber(helpers.Subscriber):
    """The verifier-side subscriber of these tests: a persistent session, so a broker restart
    (with persistence on) loses nothing at the subscriber."""

    client_id: str = "verifier"
    persistent: bool = True


class StandInIngest:
    """Verifies every event it receives and acks the highest contiguous seq, signed, like issue 7's ingest."""

    def __init__(self, host: str, port: int, device: Enrolment, key: SigningKey, prefix: str = DEFAULT_PREFIX) -> None:
        self.verifier = Verifier([device])
        self.key = key
        self.device = device
        self.prefix = prefix
        self.ack_topic = ack_topic(prefix, device.site, device.device_id)
        self.order: list[int] = []  # seqs in the order they were first accepted
        self.lock = threading.Lock()
        self.sub = Subscriber(host, port, all_events_filter(prefix, device.site, device.device_id),
                              client_id="stand-in-ingest", on_payload=self._on)

    def _on(self, topic: str, payload: bytes) -> None:
        parsed = parse_topic(self.prefix, topic)
        assert parsed is not None, topic
        event, new = self.verifier.check(payload, parsed.device)
        with self.lock:
            if new:
                self.order.append(int(event["seq"]))
            upto = self.verifier.progress[self.device.device_id].contiguous
        now_ms = int(time.time() * 1000)
        ack = ack_envelope(self.key, self.device.device_id, self.device.site, upto, now_ms)
        self.sub.client.publish(self.ack_topic, ack, qos=1)

    def contiguous(self) -> int:
        prog = self.verifier.progress.get(self.device.device_id)
        return prog.contiguous if prog else 0

    def close(self) -> None:
        self.sub.close()


def ingest_key_file(folder: Path, key: SigningKey) -> Path:
    path = folder / "ingest.pub.json"  # the ingest's enrolment record, as its keygen writes it
    path.write_text(json.dumps(enrolment(key, "ingest", "central").to_json()))
    return path
