"""Tampering is rejected with a reason: changed bytes, truncated signatures, wrong keys, dup keys, NaN."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.errors import SignatureError
from agent.protocol.dsse import EVENT_PAYLOAD_TYPE, MANIFEST_PAYLOAD_TYPE
from tests.events.eventkit import Device, make_device

REASONS = {"malformed", "unknown-payload-type", "unknown-key", "revoked", "bad-signature", "schema",
           "key-binding", "topic-mismatch"}


def reason(verifier, data: bytes, **kw) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(SignatureError) as exc:
        verifier.verify(data, **kw)
    assert exc.value.reason in REASONS
    return exc.value.reason


def fields(env: bytes) -> dict:  # type: ignore[type-arg]
    return json.loads(env)


def rebuild(d: dict) -> bytes:  # type: ignore[type-arg]
    return json.dumps(d, separators=(",", ":")).encode()


def test_a_good_envelope_verifies(device: Device) -> None:
    event = device.verifier().verify(device.envelope())
    assert event["device"] == "cam-1" and event["values"] == {"count": 3}


def test_every_byte_of_the_payload_matters(device: Device) -> None:
    env = device.envelope()
    body = base64.b64decode(fields(env)["payload"])
    v = device.verifier()
    for i in range(len(body)):
        changed = bytearray(body)
        changed[i] ^= 0x01
        d = fields(env)
        d["payload"] = base64.b64encode(bytes(changed)).decode()
        assert reason(v, rebuild(d)) == "bad-signature", i


def test_every_byte_of_the_payload_type_matters(device: Device) -> None:
    env = device.envelope()
    v = device.verifier()
    for i in range(len(EVENT_PAYLOAD_TYPE)):
        d = fields(env)
        t = bytearray(EVENT_PAYLOAD_TYPE.encode())
        t[i] ^= 0x01
        d["payloadType"] = t.decode()
        assert reason(v, rebuild(d)) == "unknown-payload-type"
    # a payload type we know, but not the one that was signed: the PAE binds the type
    d = fields(env)
    d["payloadType"] = MANIFEST_PAYLOAD_TYPE
    from agent.protocol.dsse import verify_envelope

    with pytest.raises(SignatureError) as exc:
        verify_envelope(rebuild(d), {device.key.keyid: device.key.public_key}, payload_type=None)
    assert exc.value.reason == "bad-signature"


@pytest.mark.parametrize("keep", [0, 1, 32, 63])
def test_truncated_signature(device: Device, keep: int) -> None:
    d = fields(device.envelope())
    sig = base64.b64decode(d["signatures"][0]["sig"])
    d["signatures"][0]["sig"] = base64.b64encode(sig[:keep]).decode()
    assert reason(device.verifier(), rebuild(d)) == "bad-signature"


def test_unknown_key(device: Device) -> None:
    stranger = make_device()  # same device id, a key nobody enrolled
    assert reason(device.verifier(), stranger.envelope()) == "unknown-key"


def test_wrong_key_of_another_enrolled_device(device: Device) -> None:
    other = make_device("cam-2", "lab")
    # cam-2's key signs a body that claims to be cam-1
    forged = other.key.envelope(EVENT_PAYLOAD_TYPE, device.body())
    assert reason(device.verifier(other.record), forged) == "key-binding"
    # cam-1's signature with cam-2's keyid on it
    d = fields(device.envelope())
    d["signatures"][0]["keyid"] = other.key.keyid
    assert reason(device.verifier(other.record), rebuild(d)) == "bad-signature"


def test_revoked_key(device: Device) -> None:
    from dataclasses import replace

    from agent.central.verify import Verifier

    assert reason(Verifier([replace(device.record, status="revoked")]), device.envelope()) == "revoked"


def test_topic_mismatch(device: Device) -> None:
    assert reason(device.verifier(), device.envelope(), topic_device="cam-9") == "topic-mismatch"


def test_duplicate_keys_in_the_envelope(device: Device) -> None:
    env = device.envelope()
    dup = env.replace(b'{"payloadType":', b'{"payloadType":"text/plain","payloadType":', 1)
    assert reason(device.verifier(), dup) == "malformed"


def test_duplicate_keys_and_nan_in_a_validly_signed_body(device: Device) -> None:
    body = device.body()
    v = device.verifier()
    dup = body.replace(b'"count":3', b'"count":3,"count":1000')
    assert b'"count":1000' in dup
    assert reason(v, device.key.envelope(EVENT_PAYLOAD_TYPE, dup)) == "malformed"
    for const in (b"NaN", b"Infinity", b"-Infinity"):
        nan = body.replace(b'"count":3', b'"count":' + const)
        assert reason(v, device.key.envelope(EVENT_PAYLOAD_TYPE, nan)) == "malformed"
    flt = body.replace(b'"count":3', b'"count":3.0')
    assert reason(v, device.key.envelope(EVENT_PAYLOAD_TYPE, flt)) == "schema"
    extra = body.replace(b'"v":1', b'"v":1,"face":"x"')
    assert reason(v, device.key.envelope(EVENT_PAYLOAD_TYPE, extra)) == "schema"


def test_non_canonical_base64_is_refused(device: Device) -> None:
    d = fields(device.envelope())
    sig = d["signatures"][0]["sig"]
    # "==" padding leaves 4 spare bits in the last character: set one, same decoded bytes
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = sig[-3]
    d["signatures"][0]["sig"] = sig[:-3] + alphabet[alphabet.index(last) | 1] + "=="
    assert base64.b64decode(d["signatures"][0]["sig"]) == base64.b64decode(sig)
    assert reason(device.verifier(), rebuild(d)) == "malformed"


def test_garbage_is_malformed(device: Device) -> None:
    v = device.verifier()
    for data in (b"", b"null", b"[]", b"{}", b"\xff\xfe", b'{"payloadType":1}', b"{" * 100000):
        assert reason(v, data) == "malformed"


# -- property-based: random mutations of a real envelope

_DEV = make_device(seed=bytes(range(32)))
_ENV = _DEV.envelope()
_BODY = base64.b64decode(json.loads(_ENV)["payload"])
_VERIFIER = _DEV.verifier()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(_ENV) - 1), st.integers(0, 255))
def test_any_single_byte_change_is_rejected(pos: int, value: int) -> None:
    if _ENV[pos] == value:
        return
    mutated = bytearray(_ENV)
    mutated[pos] = value
    with pytest.raises(SignatureError) as exc:
        _VERIFIER.verify(bytes(mutated))
    assert exc.value.reason in REASONS


@st.composite
def mutations(draw: st.DrawFn) -> bytes:
    data = bytearray(_ENV)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[pos:]
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_random_mutations_never_verify_to_other_bytes(data: bytes) -> None:
    """A mutated envelope is refused with a reason, or (e.g. JSON whitespace) still carries the signed body."""
    try:
        event = _VERIFIER.verify(data)
    except SignatureError as exc:
        assert exc.reason in REASONS
        return
    from agent.protocol.dsse import open_envelope

    assert open_envelope(data)[1] == _BODY
    assert event == json.loads(_BODY)
