"""Device side of ingest acks: the ingest public keys the device trusts (outbox.ingest_keys).

The ack itself (body, envelope, check) is agent.protocol.acks.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from agent.errors import ConfigError
from agent.protocol.jsonfile import read_json
from agent.protocol.dsse import key_id


def load_ingest_keys(path: str) -> dict[str, bytes]:
    """keyid -> raw public key from a JSON record {keyid, public_key} or a list of them."""
    if not path:
        raise ConfigError(
            "outbox.ack = 'ingest' needs outbox.ingest_keys (the ingest's public key file)"
        )
    data = read_json(Path(path).expanduser(), "outbox.ingest_keys file", ConfigError)
    if isinstance(data, dict) and "keys" in data:
        data = data["keys"]
    records = data if isinstance(data, list) else [data]
    keys: dict[str, bytes] = {}
    for i, rec in enumerate(records):
        try:
            pub = base64.b64decode(rec["public_key"], validate=True)
            kid = str(rec["keyid"])
        except (KeyError, TypeError, binascii.Error):
            raise ConfigError(
                f"outbox.ingest_keys record {i + 1} needs keyid and base64 public_key"
            ) from None
        if len(pub) != 32 or key_id(pub) != kid:
            raise ConfigError(
                f"outbox.ingest_keys record {i + 1}: keyid does not match its public key"
            )
        keys[kid] = pub
    if not keys:
        raise ConfigError(f"outbox.ingest_keys file {path!r} holds no key")
    return keys

