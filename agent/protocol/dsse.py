"""DSSE v1 envelopes signed with Ed25519: PAE, key ids, key files, sign and verify-before-parse.

The envelope is JSON: {"payloadType", "payload": base64(body), "signatures": [{"keyid", "sig"}]},
with sig = Ed25519(PAE(payloadType, body)) and keyid = lowercase hex SHA-256 of the raw 32-byte
public key. Envelope bytes are produced once and then stored and sent as they are.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.signing

from agent.errors import SignatureError, StateError, UsageError

EVENT_PAYLOAD_TYPE = "application/vnd.edge-agent.event+json; version=1"
MANIFEST_PAYLOAD_TYPE = "application/vnd.edge-agent.privacy-manifest+json; version=1"
ACK_PAYLOAD_TYPE = "application/vnd.edge-agent.ack+json; version=1"


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE pre-authentication encoding: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def key_id(public_key: bytes) -> str:
    """Lowercase hex SHA-256 of the raw 32-byte Ed25519 public key."""
    return hashlib.sha256(public_key).hexdigest()


@dataclass(frozen=True)
class SigningKey:
    """A device's Ed25519 private key with its derived public key and key id."""

    _key: nacl.signing.SigningKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        return cls(nacl.signing.SigningKey(seed))

    @property
    def public_key(self) -> bytes:
        return bytes(self._key.verify_key)

    @property
    def keyid(self) -> str:
        return key_id(self.public_key)

    def sign_raw(self, message: bytes) -> bytes:
        """Plain Ed25519 (RFC 8032, PureEdDSA) over message: 64 bytes."""
        return self._key.sign(message).signature

    def envelope(self, payload_type: str, body: bytes) -> bytes:
        """Sign body and return the envelope's exact bytes (compact JSON, fixed key order)."""
        sig = self.sign_raw(pae(payload_type, body))
        return (
            b'{"payloadType":'
            + json.dumps(payload_type).encode()
            + b',"payload":"'
            + base64.b64encode(body)
            + b'","signatures":[{"keyid":"'
            + self.keyid.encode()
            + b'","sig":"'
            + base64.b64encode(sig)
            + b'"}]}'
        )

    # -- files: the private key is the 32-byte seed, base64, in a 0600 file

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(bytes(self._key)).decode() + "\n")

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            raise UsageError(
                f"key file {str(path)!r} not found; create one with `edge-agent keygen`"
            ) from None
        except OSError as exc:
            raise StateError(f"cannot read key file {str(path)!r}: {exc.strerror}") from None
        try:
            seed = base64.b64decode(text, validate=True)
        except binascii.Error:
            seed = b""
        if len(seed) != 32:
            raise UsageError(f"key file {str(path)!r} is not an edge-agent Ed25519 key")
        return cls.from_seed(seed)


def verify_raw(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Plain Ed25519 verification: True only for a valid 64-byte signature by public_key."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError, TypeError):
        return False
    return True


def _b64(value: object, what: str) -> bytes:
    """Strict standard base64: one encoding per byte string (padding and spare bits checked)."""
    if not isinstance(value, str):
        raise SignatureError("malformed", f"{what} is not a string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("malformed", f"{what} is not standard base64") from None
    # b64decode ignores non-zero spare bits ("YR==" and "YQ==" both give b"a"): accept only the
    # canonical form, so every changed character of an envelope is a rejected envelope.
    if base64.b64encode(raw) != value.encode("ascii"):
        raise SignatureError("malformed", f"{what} is not canonical base64")
    return raw


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise SignatureError("malformed", f"duplicate JSON key {dup!r}")
    return dict(pairs)


def _reject_constant(name: str) -> object:
    raise SignatureError("malformed", f"non-standard JSON number {name}")


# Longest integer literal accepted (int64 has 19 digits, plus a sign). Python's own limit (4300
# digits) raises a plain ValueError, and converting huge literals costs quadratic time.
MAX_INT_DIGITS = 20


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise SignatureError("malformed", f"JSON integer of {len(text)} characters")
    return int(text)


def strict_json(data: bytes | str) -> object:
    """Parse JSON rejecting duplicate keys, NaN/Infinity and huge integers (ways to smuggle meaning
    or to crash a parser): any failure is SignatureError("malformed")."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        return json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
        )
    except SignatureError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SignatureError("malformed", f"not JSON: {exc}") from None
    except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits)" from int()
        raise SignatureError("malformed", f"not JSON: {str(exc)[:80]}") from None
    except RecursionError:
        raise SignatureError("malformed", "JSON nested too deeply") from None


@dataclass(frozen=True)
class Verified:
    """An envelope whose signature checked out: the payload bytes and who signed them."""

    payload_type: str
    body: bytes
    keyid: str


def open_envelope(data: bytes) -> tuple[str, bytes, list[tuple[str, bytes]]]:
    """Split an envelope into (payloadType, body, [(keyid, sig)]) without trusting anything."""
    env = strict_json(data)
    if not isinstance(env, dict):
        raise SignatureError("malformed", "envelope is not a JSON object")
    extra = set(env) - {"payloadType", "payload", "signatures"}
    if extra:
        raise SignatureError("malformed", f"unexpected envelope field {sorted(extra)[0]!r}")
    ptype = env.get("payloadType")
    if not isinstance(ptype, str):
        raise SignatureError("malformed", "payloadType missing")
    body = _b64(env.get("payload"), "payload")
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise SignatureError("malformed", "no signatures")
    out: list[tuple[str, bytes]] = []
    for s in sigs:
        if not isinstance(s, dict) or not isinstance(s.get("keyid"), str):
            raise SignatureError("malformed", "signature entry without keyid")
        out.append((s["keyid"], _b64(s.get("sig"), "sig")))
    return ptype, body, out


def show_keyid(keyid: str) -> str:
    """A key id fit for a terminal or a log: its first 16 hex digits if it is one, else repr'd
    (an untrusted keyid may carry escape sequences)."""
    if len(keyid) == 64 and all(c in "0123456789abcdef" for c in keyid):
        return keyid[:16] + "..."
    return repr(keyid[:24])


def verify_envelope(
    data: bytes, keys: dict[str, bytes], payload_type: str | None = EVENT_PAYLOAD_TYPE
) -> Verified:
    """Verify an envelope against known public keys (keyid -> raw key) before its body is parsed.

    Raises SignatureError with reason 'malformed', 'unknown-payload-type', 'unknown-key' or
    'bad-signature'.
    """
    ptype, body, sigs = open_envelope(data)
    if payload_type is not None and ptype != payload_type:
        raise SignatureError("unknown-payload-type", f"{ptype[:80]!r}")
    known = [(k, s) for k, s in sigs if k in keys]
    if not known:
        raise SignatureError("unknown-key", f"keyid {show_keyid(sigs[0][0])} is not enrolled")
    message = pae(ptype, body)
    for kid, sig in known:
        if verify_raw(keys[kid], message, sig):
            return Verified(ptype, body, kid)
    if all(len(sig) != 64 for _, sig in known):
        raise SignatureError("bad-signature", f"signature is {len(known[0][1])} bytes, not 64")
    raise SignatureError("bad-signature", "Ed25519 signature does not match payload")
