"""Provisioning documents both sides sign and check: site bundle, enrolment request, approval, key rotation.

Each is a DSSE envelope (agent.protocol.dsse) with its own payload type; every check verifies the
signature before the body is parsed, and every refusal is a SignatureError whose message is one
line for the technician. No document ever carries a private key: they hold public keys, the site
CA certificate, broker addresses and (optionally) Wi-Fi settings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from agent.errors import SignatureError
from agent.protocol.canonical import canonical_json
from agent.protocol.dsse import (
    SigningKey,
    key_id,
    open_envelope,
    pae,
    show_keyid,
    strict_json,
    verify_envelope,
    verify_raw,
)
from agent.protocol.enrolment import Enrolment

BUNDLE_PAYLOAD_TYPE = "application/vnd.edge-agent.site-bundle+json; version=1"
REQUEST_PAYLOAD_TYPE = "application/vnd.edge-agent.enrolment-request+json; version=1"
APPROVAL_PAYLOAD_TYPE = "application/vnd.edge-agent.enrolment-approval+json; version=1"
ROTATION_PAYLOAD_TYPE = "application/vnd.edge-agent.key-rotation+json; version=1"

# Markers of private key material: none of them may appear in any document built here.
PRIVATE_MARKERS = ("PRIVATE KEY", "private_key")


def fingerprint(keyid: str) -> str:
    """The first 80 bits of a key id in five groups of four hex digits, to read aloud."""
    return "-".join(keyid[i:i + 4] for i in range(0, 20, 4)).upper()


def document_id(body: bytes) -> str:
    """A document's id: SHA-256 of its payload bytes, 16 hex digits (bundle id, request id)."""
    return hashlib.sha256(body).hexdigest()[:16]


def key_record(public_key: bytes) -> dict[str, str]:
    return {"keyid": key_id(public_key), "public_key": base64.b64encode(public_key).decode()}


def public_key_of(record: object, where: str) -> tuple[str, bytes]:
    """(keyid, raw key) of a {keyid, public_key} record whose keyid matches its key."""
    if not isinstance(record, dict) or not isinstance(record.get("public_key"), str):
        raise SignatureError("malformed", f"{where} is not a {{keyid, public_key}} record")
    try:
        raw = base64.b64decode(record["public_key"], validate=True)
    except binascii.Error:
        raise SignatureError("malformed", f"{where}: public_key is not base64") from None
    if len(raw) != 32 or record.get("keyid") != key_id(raw):
        raise SignatureError("malformed", f"{where}: keyid does not match the public key")
    return key_id(raw), raw


def multi_envelope(keys: list[SigningKey], payload_type: str, body: bytes) -> bytes:
    """A DSSE envelope signed by each key in turn (a rotation is signed by the old and the new key)."""
    message = pae(payload_type, body)
    sigs = [{"keyid": k.keyid, "sig": base64.b64encode(k.sign_raw(message)).decode()} for k in keys]
    return json.dumps({"payloadType": payload_type, "payload": base64.b64encode(body).decode(),
                       "signatures": sigs}, separators=(",", ":")).encode()


def _object(body: bytes, what: str, required: tuple[str, ...]) -> dict[str, Any]:
    doc = strict_json(body)
    if not isinstance(doc, dict):
        raise SignatureError("malformed", f"{what} is not a JSON object")
    missing = [k for k in required if k not in doc]
    if missing:
        raise SignatureError("malformed", f"{what} has no {missing[0]!r}")
    return doc


def _str(doc: dict[str, Any], key: str, what: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise SignatureError("malformed", f"{what}: {key} is not a string")
    return value


def _int(doc: dict[str, Any], key: str, what: str) -> int:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SignatureError("malformed", f"{what}: {key} is not a whole number")
    return value


def _signed(data: bytes, trusted: dict[str, bytes], payload_type: str, what: str) -> tuple[bytes, str]:
    """verify_envelope with the refusal worded for `what` ("site bundle", "approval")."""
    try:
        v = verify_envelope(data, trusted, payload_type)
    except SignatureError as exc:
        if exc.reason == "unknown-key":
            raise SignatureError("unknown-key", f"{what} is signed by a key not trusted here "
                                 f"({str(exc).split('keyid ')[-1].split(' ')[0]}); "
                                 f"trusted: {', '.join(show_keyid(k) for k in trusted) or 'none'}") from None
        if exc.reason == "bad-signature":
            raise SignatureError("bad-signature", f"{what} was changed after it was signed "
                                 "(its signature does not match)") from None
        if exc.reason == "unknown-payload-type":
            raise SignatureError("unknown-payload-type", f"this is not a {what} ({exc})") from None
        raise SignatureError(exc.reason, f"{what} is not a valid envelope: {exc}") from None
    return v.body, v.keyid


# ------------------------------------------------------------------ site bundle


@dataclass(frozen=True)
class Bundle:
    """What a device needs to join a site. Signed by the operator's provisioning key."""

    site: str
    broker: str  # mqtts://HOST:PORT: the events listener (mutual TLS, client certificate)
    ca_pem: str  # the site CA that signed the broker's certificate and issues device certificates
    ingest_keys: tuple[dict[str, str], ...]  # {keyid, public_key}: who may sign acks
    operator_key: dict[str, str]  # {keyid, public_key}: who signs configuration for this site
    issued: int  # seconds since the epoch; a device takes only a newer bundle than its own
    topic_prefix: str = "edge/v1"
    enrol_broker: str = ""  # mqtts://HOST:PORT: the enrolment listener (server TLS + password)
    enrol_username: str = ""
    enrol_password: str = ""  # a broker account that may only publish enrolment requests
    settings: dict[str, Any] = field(default_factory=dict)  # config sections laid under the device's
    wifi: dict[str, str] = field(default_factory=dict)  # {ssid, psk, country}; {} for wired
    network_config: str = ""  # a cloud-init network-config (YAML) taken as it is, instead of wifi

    def body(self) -> bytes:
        doc: dict[str, Any] = {
            "v": 1, "site": self.site, "broker": self.broker, "ca_pem": self.ca_pem,
            "ingest_keys": list(self.ingest_keys), "operator_key": self.operator_key,
            "issued": self.issued, "topic_prefix": self.topic_prefix,
            "enrol": {"broker": self.enrol_broker, "username": self.enrol_username,
                      "password": self.enrol_password},
            "settings": self.settings, "wifi": self.wifi, "network_config": self.network_config,
        }
        return canonical_json(doc)

    def sign(self, key: SigningKey) -> bytes:
        body = self.body()
        for marker in PRIVATE_MARKERS:
            if marker in body.decode("ascii"):
                raise SignatureError("malformed", f"a site bundle may not hold {marker!r}")
        return key.envelope(BUNDLE_PAYLOAD_TYPE, body)

    @property
    def id(self) -> str:
        return document_id(self.body())


def open_bundle(data: bytes, trusted: dict[str, bytes]) -> Bundle:
    """A site bundle signed by one of the trusted provisioning keys, checked field by field."""
    body, _ = _signed(data, trusted, BUNDLE_PAYLOAD_TYPE, "site bundle")
    what = "site bundle"
    doc = _object(body, what, ("v", "site", "broker", "ca_pem", "ingest_keys", "operator_key", "issued"))
    if doc["v"] != 1:
        raise SignatureError("malformed", f"{what} version {doc['v']!r} is not 1; update edge-agent")
    keys = doc["ingest_keys"]
    if not isinstance(keys, list) or not keys:
        raise SignatureError("malformed", f"{what} names no ingest key")
    for i, k in enumerate(keys):
        public_key_of(k, f"{what} ingest key {i + 1}")
    public_key_of(doc["operator_key"], f"{what} operator key")
    enrol = doc.get("enrol", {})
    settings, wifi = doc.get("settings", {}), doc.get("wifi", {})
    if not isinstance(enrol, dict) or not isinstance(settings, dict) or not isinstance(wifi, dict):
        raise SignatureError("malformed", f"{what}: enrol, settings and wifi must be objects")
    if not all(isinstance(v, str) for v in [*enrol.values(), *wifi.values()]):
        raise SignatureError("malformed", f"{what}: enrol and wifi values must be strings")
    return Bundle(
        site=_str(doc, "site", what), broker=_str(doc, "broker", what), ca_pem=_str(doc, "ca_pem", what),
        ingest_keys=tuple(keys), operator_key=doc["operator_key"], issued=_int(doc, "issued", what),
        topic_prefix=str(doc.get("topic_prefix", "edge/v1")),
        enrol_broker=str(enrol.get("broker", "")), enrol_username=str(enrol.get("username", "")),
        enrol_password=str(enrol.get("password", "")), settings=settings, wifi=wifi,
        network_config=str(doc.get("network_config", "")),
    )


# ------------------------------------------------------------------ enrolment request


@dataclass(frozen=True)
class Request:
    """A device's self-signed application to be trusted: its record and where it came from."""

    record: Enrolment
    serial: str
    board: str
    agent_version: str
    bundle_id: str
    tls_public_key: bytes  # the Ed25519 key the device's MQTT client certificate is to certify
    created: int

    def body(self) -> bytes:
        return canonical_json({
            "v": 1, "enrolment": self.record.to_json(), "serial": self.serial, "board": self.board,
            "agent_version": self.agent_version, "bundle_id": self.bundle_id,
            "tls_public_key": base64.b64encode(self.tls_public_key).decode(), "created": self.created,
        })

    @property
    def id(self) -> str:
        return document_id(self.body())


def sign_request(request: Request, key: SigningKey) -> bytes:
    if key.keyid != request.record.keyid:
        raise SignatureError("key-binding", "an enrolment request is signed by the key it enrols")
    return key.envelope(REQUEST_PAYLOAD_TYPE, request.body())


def open_request(data: bytes) -> Request:
    """An enrolment request whose signature is by the very key its record enrols (self-signed)."""
    what = "enrolment request"
    try:
        ptype, body, sigs = open_envelope(data)
    except SignatureError as exc:
        raise SignatureError("malformed", f"{what} is not a valid envelope: {exc}") from None
    if ptype != REQUEST_PAYLOAD_TYPE:
        raise SignatureError("unknown-payload-type", f"this is not an {what} ({ptype[:60]!r})")
    # The record names the key; parse just enough to find it, then check the signature with it
    # before anything else of the body is used.
    doc = _object(body, what, ("v", "enrolment", "serial", "board", "agent_version", "bundle_id",
                               "tls_public_key", "created"))
    try:
        record = Enrolment.from_json(doc["enrolment"], what)
    except ValueError as exc:
        raise SignatureError("malformed", str(exc)) from None
    message = pae(ptype, body)
    if not any(k == record.keyid and verify_raw(record.public_key, message, s) for k, s in sigs):
        raise SignatureError("bad-signature", f"{what} of {record.device_id!r} is not signed by the key it "
                             f"enrols ({fingerprint(record.keyid)}): forged or changed")
    try:
        tls = base64.b64decode(_str(doc, "tls_public_key", what), validate=True)
    except binascii.Error:
        tls = b""
    if len(tls) != 32:
        raise SignatureError("malformed", f"{what}: tls_public_key is not a 32-byte Ed25519 key")
    return Request(record, _str(doc, "serial", what), _str(doc, "board", what),
                   _str(doc, "agent_version", what), _str(doc, "bundle_id", what), tls,
                   _int(doc, "created", what))


# ------------------------------------------------------------------ approval (operator -> device)


@dataclass(frozen=True)
class Approval:
    """The operator's answer: this key is enrolled; here is its MQTT client certificate (or none)."""

    device_id: str
    site: str
    keyid: str
    certificate_pem: str  # CN = device id, for the tls_public_key of the request; "" when none issued
    approved: int

    def body(self) -> bytes:
        return canonical_json({"v": 1, "device_id": self.device_id, "site": self.site, "keyid": self.keyid,
                               "certificate_pem": self.certificate_pem, "approved": self.approved})


def open_approval(data: bytes, trusted: dict[str, bytes]) -> Approval:
    what = "enrolment approval"
    body, _ = _signed(data, trusted, APPROVAL_PAYLOAD_TYPE, what)
    doc = _object(body, what, ("v", "device_id", "site", "keyid", "certificate_pem", "approved"))
    return Approval(_str(doc, "device_id", what), _str(doc, "site", what), _str(doc, "keyid", what),
                    _str(doc, "certificate_pem", what), _int(doc, "approved", what))


# ------------------------------------------------------------------ key rotation


@dataclass(frozen=True)
class Rotation:
    """A device's move to a new key: signed by the old key (who) and the new one (possession).
    Events with seq < from_seq stay valid under the old key; from_seq on they need the new one."""

    device_id: str
    site: str
    old_keyid: str
    new: Enrolment
    from_seq: int
    created: int

    def body(self) -> bytes:
        return canonical_json({"v": 1, "device_id": self.device_id, "site": self.site,
                               "old_keyid": self.old_keyid, "new": self.new.to_json(),
                               "from_seq": self.from_seq, "created": self.created})

    def sign(self, old: SigningKey, new: SigningKey) -> bytes:
        return multi_envelope([old, new], ROTATION_PAYLOAD_TYPE, self.body())


def open_rotation(data: bytes, old_keys: dict[str, bytes]) -> Rotation:
    """A rotation signed by a key of old_keys (the device's enrolled key) and by the new key it names."""
    what = "key rotation"
    body, signer = _signed(data, old_keys, ROTATION_PAYLOAD_TYPE, what)
    doc = _object(body, what, ("v", "device_id", "site", "old_keyid", "new", "from_seq", "created"))
    try:
        new = Enrolment.from_json(doc["new"], what)
    except ValueError as exc:
        raise SignatureError("malformed", str(exc)) from None
    if doc["old_keyid"] != signer:
        raise SignatureError("key-binding", f"{what} names old key {show_keyid(str(doc['old_keyid']))} "
                             f"but is signed by {show_keyid(signer)}")
    _, _, sigs = open_envelope(data)
    if not any(k == new.keyid and verify_raw(new.public_key, pae(ROTATION_PAYLOAD_TYPE, body), s)
               for k, s in sigs):
        raise SignatureError("bad-signature", f"{what} is not signed by its new key {fingerprint(new.keyid)}")
    rot = Rotation(_str(doc, "device_id", what), _str(doc, "site", what), signer, new,
                   _int(doc, "from_seq", what), _int(doc, "created", what))
    if new.device_id != rot.device_id or new.site != rot.site or rot.from_seq < 1:
        raise SignatureError("key-binding", f"{what}: the new record is for another device or from_seq < 1")
    return rot
