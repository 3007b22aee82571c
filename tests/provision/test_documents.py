"""The provisioning documents on their own: bundle, request, approval and rotation checks, and the
ingest's view of a rotated key (old key valid below the rotation's seq, the new one from it)."""

from __future__ import annotations

import base64
import json

import pytest

from agent.central.ingest.classify import Classifier, Ignored
from agent.central.verify import Verifier
from agent.errors import SignatureError, UsageError
from agent.protocol.body import encode
from agent.protocol.dsse import EVENT_PAYLOAD_TYPE, SigningKey
from agent.protocol.enrolment import Enrolment, enrolment
from agent.protocol.provisioning import (
    APPROVAL_PAYLOAD_TYPE,
    Approval,
    Bundle,
    Request,
    Rotation,
    fingerprint,
    key_record,
    open_approval,
    open_bundle,
    open_request,
    open_rotation,
    sign_request,
)

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def bundle(op: SigningKey) -> Bundle:
    ingest = SigningKey.generate()
    return Bundle("depot-3", "mqtts://broker:8883", CA, (key_record(ingest.public_key),),
                  key_record(op.public_key), 1700000000, wifi={"ssid": "Depot", "psk": "pw"})


def test_bundle_verifies_only_unchanged_and_only_with_the_trusted_key() -> None:
    op = SigningKey.generate()
    b = bundle(op)
    env = b.sign(op)
    assert open_bundle(env, {op.keyid: op.public_key}) == b
    with pytest.raises(SignatureError, match="not trusted here"):
        open_bundle(env, {SigningKey.generate().keyid: SigningKey.generate().public_key})
    doc = json.loads(env)
    body = base64.b64decode(doc["payload"]).replace(b"broker:8883", b"evil.x:8883")
    doc["payload"] = base64.b64encode(body).decode()
    with pytest.raises(SignatureError, match="changed after it was signed"):
        open_bundle(json.dumps(doc).encode(), {op.keyid: op.public_key})
    with pytest.raises(SignatureError, match="PRIVATE KEY"):
        Bundle("s", "mqtts://b:1", CA + "-----BEGIN PRIVATE KEY-----", (), key_record(op.public_key), 1).sign(op)


def request(key: SigningKey, device: str = "pi-1") -> Request:
    return Request(enrolment(key, device, "depot-3"), "0001", "Raspberry Pi 5", "0.1.0", "abcd", b"\1" * 32, 1)


def test_request_is_self_signed() -> None:
    key = SigningKey.generate()
    r = request(key)
    assert open_request(sign_request(r, key)) == r
    with pytest.raises(SignatureError, match="signed by the key it enrols"):
        sign_request(r, SigningKey.generate())
    forged = SigningKey.generate().envelope("application/vnd.edge-agent.enrolment-request+json; version=1", r.body())
    with pytest.raises(SignatureError, match="forged or changed"):
        open_request(forged)
    assert fingerprint(key.keyid) == "-".join(key.keyid[i:i + 4] for i in range(0, 20, 4)).upper()


def test_approval_binds_to_the_operator_key() -> None:
    op = SigningKey.generate()
    a = Approval("pi-1", "depot-3", "ab" * 32, "", 5)
    env = op.envelope(APPROVAL_PAYLOAD_TYPE, a.body())
    assert open_approval(env, {op.keyid: op.public_key}) == a
    with pytest.raises(SignatureError):
        open_approval(SigningKey.generate().envelope(APPROVAL_PAYLOAD_TYPE, a.body()), {op.keyid: op.public_key})


def event(key: SigningKey, seq: int, device: str = "pi-1") -> bytes:
    from agent.protocol.body import Event

    ev = Event(id=f"{seq:032x}", device=device, site="depot-3", seq=seq, boot=1, ts_ms=1000 + seq,
               type="count", model="m", manifest="0" * 64, rule="door", label="person",
               values={"entries": 1, "exits": 0})
    return key.envelope(EVENT_PAYLOAD_TYPE, encode(ev))


def test_rotation_keeps_the_old_key_below_its_seq_and_the_new_one_from_it() -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    rot = Rotation("pi-1", "depot-3", old.keyid, enrolment(new, "pi-1", "depot-3"), 4, 1)
    env = rot.sign(old, new)
    assert open_rotation(env, {old.keyid: old.public_key}) == rot
    with pytest.raises(SignatureError, match="signed by"):  # the enrolled key did not sign it
        open_rotation(env, {new.keyid: new.public_key})
    only_old = old.envelope("application/vnd.edge-agent.key-rotation+json; version=1", rot.body())
    with pytest.raises(SignatureError, match="not signed by its new key"):
        open_rotation(only_old, {old.keyid: old.public_key})
    registry = [Enrolment("pi-1", "depot-3", old.keyid, old.public_key, "rotated", until_seq=4),
                enrolment(new, "pi-1", "depot-3")]
    v = Verifier(registry)
    assert [v.check(event(old, s))[1] for s in (1, 2, 3)] == [True] * 3
    with pytest.raises(SignatureError) as err:
        v.verify(event(old, 4))
    assert err.value.reason == "revoked" and "rotated at seq 4" in str(err.value)
    assert v.check(event(new, 4))[1] and v.progress["pi-1"].contiguous == 4
    # the record survives its file round trip; a rotated key without its seq is refused
    assert Enrolment.from_json(registry[0].to_json()) == registry[0]
    with pytest.raises(UsageError, match="until_seq"):
        Enrolment.from_json({**registry[0].to_json(), "until_seq": "0"})


def test_the_ingest_ignores_enrolment_topics() -> None:
    c = Classifier(Verifier([]))
    for kind in ("enrol", "enrolled"):
        assert c.classify(f"edge/v1/depot-3/pi-1/{kind}", b"{}", 0) == Ignored(kind)


def test_central_take_refuses_a_request_on_another_devices_topic(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agent.central import enrolment as central

    key = SigningKey.generate()
    data = sign_request(request(key, "pi-1"), key)
    reg = tmp_path / "registry.json"
    with pytest.raises(UsageError, match="came on the topic of 'pi-2'"):
        central.take(data, reg, topic_device="pi-2")
    assert central.take(data, reg, topic_device="pi-1").record.keyid == key.keyid
    assert [p.request.record.device_id for p in central.pending(reg)] == ["pi-1"]
    with pytest.raises(UsageError, match="refused enrolment request"):
        central.take(data[:-5] + b'xx"}]}', reg)
