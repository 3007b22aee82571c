"""DSSE envelopes: the PAE layout and a round trip through sign and verify."""

from __future__ import annotations

import base64
import json

import pytest

from agent.errors import SignatureError
from agent.protocol.dsse import EVENT_PAYLOAD_TYPE, SigningKey, pae, verify_envelope


def test_pae_layout() -> None:
    assert pae("t", b"body") == b"DSSEv1 1 t 4 body"


def test_round_trip_and_tamper() -> None:
    key = SigningKey.generate()
    env = key.envelope(EVENT_PAYLOAD_TYPE, b'{"a":1}')
    v = verify_envelope(env, {key.keyid: key.public_key})
    assert v.body == b'{"a":1}' and v.keyid == key.keyid
    d = json.loads(env)
    d["payload"] = base64.b64encode(b'{"a":2}').decode()
    with pytest.raises(SignatureError) as exc:
        verify_envelope(json.dumps(d).encode(), {key.keyid: key.public_key})
    assert exc.value.reason == "bad-signature"
