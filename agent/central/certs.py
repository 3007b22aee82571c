"""Issue a device's MQTT client certificate from the site CA (CN = device id); operator side only.

Needs the `cryptography` package (`pip install edge-agent[operator]`); the device never does.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from agent.errors import UsageError


def _cryptography() -> Any:
    try:
        from cryptography import x509
    except ImportError:
        raise UsageError("issuing certificates needs the `cryptography` package: "
                         "pip install 'edge-agent[operator]' (or leave out --ca-cert)") from None
    return x509


def issue(device_id: str, tls_public_key: bytes, ca_cert: Path, ca_key: Path, days: int = 825) -> str:
    """A PEM client certificate for the device's Ed25519 TLS key, signed by the site CA."""
    x509 = _cryptography()
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    try:
        ca = x509.load_pem_x509_certificate(ca_cert.read_bytes())
        key = serialization.load_pem_private_key(ca_key.read_bytes(), None)
    except OSError as exc:
        raise UsageError(f"cannot read the site CA: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise UsageError(f"the site CA files are not a PEM certificate and its unencrypted key: {exc}") from None
    now = datetime.datetime.now(datetime.UTC)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)]))
        .issuer_name(ca.subject)
        .public_key(ed25519.Ed25519PublicKey.from_public_bytes(tls_public_key))
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, algorithm)
    )
    return str(cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))
