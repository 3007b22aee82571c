"""Central approval: collect enrolment requests (files, the enrol topic), list them, approve, rotate keys.

Requests wait in a `pending/` folder next to the registry file. Approval re-checks the request's
self-signature, adds the record to the registry the ingest reloads, optionally issues an MQTT client
certificate, and returns a signed approval (on a stick and/or retained on the device's topic).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.central import registry
from agent.central.config import IngestConfig
from agent.errors import BrokerError, SignatureError, StateError, UsageError
from agent.protocol import topics
from agent.protocol.dsse import SigningKey, open_envelope
from agent.protocol.enrolment import Enrolment, save_registry
from agent.protocol.provisioning import (
    APPROVAL_PAYLOAD_TYPE,
    Approval,
    Request,
    Rotation,
    fingerprint,
    open_request,
    open_rotation,
)

Say = Callable[[str], None]
APPROVALS = "approvals"
FOLDER = "edge-agent"


def pending_dir(registry_file: Path) -> Path:
    return registry_file.parent / "pending"


def refuse_known(record: Enrolment, records: list[Enrolment]) -> None:
    """A request for a key the registry already has (a replay) or a device with an active key."""
    for r in records:
        if r.keyid == record.keyid:
            raise UsageError(f"refused request of {record.device_id!r}: key {fingerprint(record.keyid)} is "
                             f"already {'enrolled' if r.status == 'active' else r.status} (replayed request)")
    for r in records:
        if r.device_id == record.device_id and r.status == "active":
            raise UsageError(f"refused request of {record.device_id!r}: that device id already has an active key "
                             f"{fingerprint(r.keyid)}; run `edge-agent registry revoke {record.device_id}` first")


def take(data: bytes, registry_file: Path, topic_device: str | None = None) -> Request:
    """Check one request and keep it in pending/; a refusal is one UsageError line."""
    try:
        request = open_request(data)
    except SignatureError as exc:
        raise UsageError(f"refused enrolment request: {str(exc).split(': ', 1)[-1]}") from None
    rec = request.record
    if topic_device is not None and topic_device != rec.device_id:
        raise UsageError(f"refused request of {rec.device_id!r}: it came on the topic of {topic_device!r}")
    refuse_known(rec, registry.load_or_empty(registry_file))
    folder = pending_dir(registry_file)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{rec.device_id}.{rec.keyid[:16]}.request.dsse"
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise StateError(f"cannot keep the request in {str(folder)!r}: {exc.strerror or exc}") from None
    return request


@dataclass(frozen=True)
class Pending:
    path: Path
    request: Request

    def line(self) -> str:
        r, rec = self.request, self.request.record
        return (f"{rec.device_id}\tsite {rec.site}\tfingerprint {fingerprint(rec.keyid)}\tserial {r.serial or '-'}"
                f"\t{r.board}\tagent {r.agent_version}\tbundle {r.bundle_id}")


def pending(registry_file: Path) -> list[Pending]:
    """Requests waiting for approval (those enrolled meanwhile are dropped from the folder)."""
    records = registry.load_or_empty(registry_file)
    known = {r.keyid for r in records}
    out = []
    folder = pending_dir(registry_file)
    for path in sorted(folder.glob("*.request.dsse")) if folder.is_dir() else []:
        request = open_request(path.read_bytes())
        if request.record.keyid in known:
            path.unlink()
            continue
        out.append(Pending(path, request))
    return out


def collect_files(folders: list[Path], registry_file: Path, say: Say) -> int:
    """Take every request file found under each folder (a stick's edge-agent/requests/, or any)."""
    n = 0
    for folder in folders:
        if not folder.exists():
            raise UsageError(f"--from {str(folder)!r} does not exist")
        files = [folder] if folder.is_file() else sorted(folder.rglob("*.request.dsse"))
        for f in files:
            try:
                req = take(f.read_bytes(), registry_file)
                say(f"took {f.name}: {req.record.device_id} {fingerprint(req.record.keyid)}")
                n += 1
            except UsageError as exc:
                say(str(exc))
    return n


def client(cfg: IngestConfig, client_id: str) -> Any:
    """An MQTT client with the ingest's connection settings (the operator uses the ingest's account)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if cfg.username:
        password = Path(cfg.password_file).read_text().strip() if cfg.password_file else None
        c.username_pw_set(cfg.username, password)
    if cfg.tls:
        c.tls_set(ca_certs=cfg.ca_file or None, certfile=cfg.cert_file or None, keyfile=cfg.key_file or None)
    try:
        c.connect(cfg.host, cfg.port, keepalive=30)
    except (OSError, ValueError) as exc:
        raise BrokerError(f"cannot reach the MQTT broker at {cfg.broker} ({exc})") from None
    return c


def collect_topic(cfg: IngestConfig, registry_file: Path, say: Say, quiet_s: float = 1.0,
                  max_s: float = 10.0) -> int:
    """Take the retained requests on {prefix}/+/+/enrol until none came for quiet_s."""
    import queue

    got: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
    c = client(cfg, f"edge-agent-registry-{int(time.time() * 1000) % 100000}")
    c.on_connect = lambda cl, *_: cl.subscribe(topics.enrol_filter(cfg.topic_prefix), qos=1)
    c.on_message = lambda cl, u, msg: got.put((msg.topic, bytes(msg.payload)))
    c.loop_start()
    n, deadline = 0, time.monotonic() + max_s
    try:
        while time.monotonic() < deadline:
            try:
                topic, payload = got.get(timeout=quiet_s)
            except queue.Empty:
                break
            if not payload:
                continue
            t = topics.parse_topic(cfg.topic_prefix, topic)
            try:
                req = take(payload, registry_file, t.device if t else "")
                say(f"took {topic}: {req.record.device_id} {fingerprint(req.record.keyid)}")
                n += 1
            except UsageError as exc:
                say(str(exc))
    finally:
        c.disconnect()
        c.loop_stop()
    return n


def publish(cfg: IngestConfig, topic: str, payload: bytes, retain: bool = True, timeout_s: float = 10.0) -> None:
    c = client(cfg, f"edge-agent-approve-{int(time.time() * 1000) % 100000}")
    c.loop_start()
    try:
        info = c.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise BrokerError(f"the broker at {cfg.broker} did not take the publish on {topic!r}")
    finally:
        c.disconnect()
        c.loop_stop()


# The fingerprint the technician read out, or at least its first two groups: a prefix shorter than
# that matches too many keys to tell a squatter's request from the device's own
MIN_FINGERPRINT_HEX = 8


def spoken_fingerprint(text: str) -> str:
    """The fingerprint as typed ('DAF7-E646', 'daf7 e646 4bfa', ...) as hex digits, upper case; a
    UsageError line when it is not at least MIN_FINGERPRINT_HEX hex digits of one."""
    digits = "".join(text.split()).replace("-", "").upper()
    longest = len(fingerprint("0" * 64).replace("-", ""))
    if not digits or any(c not in "0123456789ABCDEF" for c in digits) or len(digits) > longest:
        raise UsageError(f"--fingerprint {text!r} is not a key fingerprint (groups of 4 hex digits, "
                         "e.g. DAF7-E646-4BFA-7B21-43C1)")
    if len(digits) < MIN_FINGERPRINT_HEX:
        raise UsageError(f"--fingerprint {text!r} is too short: give at least the first two groups "
                         f"({MIN_FINGERPRINT_HEX} hex digits) the technician read out, better all five")
    return digits


def approve(device_id: str, registry_file: Path, key: SigningKey, say: Say, *, fingerprint_read: str,
            ca_cert: Path | None = None, ca_key: Path | None = None,
            out: list[Path] | None = None, broker: IngestConfig | None = None) -> Approval:
    """Enrol the pending request of device_id whose key has the fingerprint the technician read out
    on the device (anyone with the site's enrolment account can leave a request under any id), and
    return its signed approval where asked."""
    digits = spoken_fingerprint(fingerprint_read)
    requests = [p for p in pending(registry_file) if p.request.record.device_id == device_id]
    if not requests:
        enrolled = [r for r in registry.load_or_empty(registry_file)
                    if r.device_id == device_id and r.status == "active"]
        if enrolled:
            raise UsageError(f"{device_id!r} is already enrolled (key {fingerprint(enrolled[0].keyid)}) and has no "
                             f"pending request; nothing to approve")
        raise UsageError(f"no pending request for {device_id!r}; "
                         "collect it with `edge-agent registry pending --from DIR`")
    matches = [p for p in requests
               if fingerprint(p.request.record.keyid).replace("-", "").startswith(digits)]
    if not matches:
        raise UsageError(f"refused approval of {device_id!r}: fingerprint {fingerprint_read.strip()!r} does not "
                         f"match its pending request{'s' if len(requests) > 1 else ''}; nothing was enrolled "
                         "(ask the technician to read it again from the device, and do not approve a request "
                         "the device did not make)")
    if len(matches) > 1:
        found = ", ".join(fingerprint(m.request.record.keyid) for m in matches)
        raise UsageError(f"{len(matches)} pending requests for {device_id!r} match fingerprint "
                         f"{fingerprint_read.strip()!r} ({found}); give more of the fingerprint the technician "
                         "read out")
    data = matches[0].path.read_bytes()
    request = open_request(data)  # the self-signature again, on the bytes kept
    refuse_known(request.record, registry.load_or_empty(registry_file))
    certificate = ""
    if ca_cert is not None and ca_key is not None:
        from agent.central import certs

        certificate = certs.issue(device_id, request.tls_public_key, ca_cert, ca_key)
    rec = registry.add(registry_file, request.record)
    matches[0].path.unlink()
    approval = Approval(rec.device_id, rec.site, rec.keyid, certificate, int(time.time()))
    envelope = key.envelope(APPROVAL_PAYLOAD_TYPE, approval.body())
    say(f"enrolled {rec.device_id} (site {rec.site}, fingerprint {fingerprint(rec.keyid)})"
        + (", certificate CN=" + rec.device_id if certificate else ""))
    for folder in out or []:
        path = folder / FOLDER / APPROVALS / f"{rec.device_id}.approval.dsse"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(envelope)
        say(f"approval written to {path}")
    if broker is not None:
        topic = topics.enrolled_topic(broker.topic_prefix, rec.site, rec.device_id)
        publish(broker, topic, envelope)
        publish(broker, topics.enrol_topic(broker.topic_prefix, rec.site, rec.device_id), b"")  # clear request
        say(f"approval published on {topic}")
    return approval


def rotate(data: bytes, registry_file: Path, say: Say, pass_applied: bool = False) -> Rotation | None:
    """Apply a key rotation signed by the device's enrolled key: the old key stays valid below from_seq.
    pass_applied: a record the registry already has (its old key rotated, its new key present) is
    said and passed over (None) instead of refused as replayed; for a chain given as several files."""
    records = registry.load_or_empty(registry_file)
    active = {r.keyid: r.public_key for r in records if r.status == "active"}
    try:
        rot = open_rotation(data, active)
    except SignatureError as exc:
        try:
            signers = {k for k, _ in open_envelope(data)[2]}
        except SignatureError:
            signers = set()
        done = [r for r in records if r.keyid in signers and r.status == "rotated"]
        # applied: its old key is rotated and its new key (the other signer) is in the registry too
        if done and pass_applied and len({r.keyid for r in records if r.keyid in signers}) == 2:
            say(f"already applied: key {fingerprint(done[0].keyid)} of {done[0].device_id!r} was rotated; passed over")
            return None
        if done:
            raise UsageError(f"refused key rotation: key {fingerprint(done[0].keyid)} of {done[0].device_id!r} "
                             "was already rotated (replayed rotation)") from None
        raise UsageError(f"refused key rotation: {str(exc).split(': ', 1)[-1]}") from None
    old = next(r for r in records if r.keyid == rot.old_keyid)
    if (old.device_id, old.site) != (rot.device_id, rot.site):
        raise UsageError(f"refused key rotation: key {fingerprint(old.keyid)} belongs to {old.device_id!r}")
    if any(r.keyid == rot.new.keyid for r in records):
        raise UsageError(f"refused key rotation: key {fingerprint(rot.new.keyid)} is already in the registry")
    now = registry.now_iso()
    updated = [dataclasses.replace(r, status="rotated", until_seq=rot.from_seq) if r.keyid == old.keyid else r
               for r in records]
    save_registry(registry_file, [*updated, dataclasses.replace(rot.new, status="active", enrolled_at=now)])
    say(f"rotated {rot.device_id}: {fingerprint(old.keyid)} (seq < {rot.from_seq}) -> "
        f"{fingerprint(rot.new.keyid)} (seq >= {rot.from_seq})")
    return rot
