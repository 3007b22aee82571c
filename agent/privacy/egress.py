"""The egress guard: the last check on every payload before it may enter the outbox.

A payload passes only if its envelope is what SigningKey.envelope() builds around it, its
body is strict JSON matching the event schema, the envelope fits the size cap, and the body
holds no image data (JPEG, PNG, GIF, WebP, raw or in base64, or a data: URI). Anything else
is refused with an EgressViolation whose `reason` is one of schema, size, image, envelope.
The guard counts refusals and logs the first of each reason once; it never logs payloads.
"""

from __future__ import annotations

import base64
import logging
import re
from collections import Counter

from agent.errors import EgressViolation, SignatureError
from agent.protocol import topics
from agent.protocol.schema import errors as schema_errors, schema
from agent.protocol.dsse import (
    EVENT_PAYLOAD_TYPE,
    MANIFEST_PAYLOAD_TYPE,
    open_envelope,
    strict_json,
)

log = logging.getLogger(__name__)


def b64_image_prefixes() -> dict[str, bytes]:
    """The base64 forms of the magic numbers: the characters fully fixed at the start of an
    encoded image ("/9j/" = FF D8 FF, "iVBORw0KGgo" = 89 50 4E 47 0D 0A 1A 0A, "R0lGOD" = "GIF8"
    as both GIF87a and GIF89a encode, "UklGR" = "RIFF")."""
    return {
        "jpeg": base64.b64encode(b"\xff\xd8\xff")[:4],
        "png": base64.b64encode(b"\x89PNG\r\n\x1a\n")[:11],
        "gif": base64.b64encode(b"GIF89a")[:6],
        "webp": base64.b64encode(b"RIFF")[:5],
    }


# (name, pattern) over the body bytes: each format raw, then in base64, then data: URIs.
IMAGE_SIGNATURES: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    ("jpeg", re.compile(rb"\xff\xd8\xff")),
    ("png", re.compile(rb"\x89PNG")),
    ("gif", re.compile(rb"GIF8[79]a")),
    ("webp", re.compile(rb"RIFF.{4}WEBP", re.DOTALL)),
    *(
        (f"{name}-base64", re.compile(re.escape(prefix)))
        for name, prefix in b64_image_prefixes().items()
    ),
    ("data-uri", re.compile(rb"data:image/", re.IGNORECASE)),
)


def image_signature(data: bytes) -> str | None:
    """The name of the first image signature found in data, or None."""
    for name, rx in IMAGE_SIGNATURES:
        if rx.search(data):
            return name
    return None


class EgressGuard:
    """check(payload_type, body, envelope) or EgressViolation; counts what it refused."""

    def __init__(self, max_bytes: int = topics.MAX_EVENT_BYTES) -> None:
        self.max_bytes = max_bytes
        self.refused: Counter[str] = Counter()
        self._logged: set[str] = set()

    @property
    def total_refused(self) -> int:
        return sum(self.refused.values())

    def check(self, payload_type: str, body: bytes, envelope: bytes) -> None:
        try:
            self._check(payload_type, body, envelope)
        except Refused as exc:
            self.refused[exc.reason] += 1
            if exc.reason not in self._logged:
                self._logged.add(exc.reason)
                log.warning(
                    "egress guard refused a payload (%s); further refusals are only counted",
                    exc.reason,
                )
            raise

    def _check(self, payload_type: str, body: bytes, envelope: bytes) -> None:
        cap = self.max_bytes if payload_type == EVENT_PAYLOAD_TYPE else topics.MAX_MANIFEST_BYTES
        if len(envelope) > cap:
            if payload_type == EVENT_PAYLOAD_TYPE:
                raise Refused("size", f"envelope is {len(envelope)} bytes, the cap is {cap}")
            raise Refused("size", f"the signed privacy manifest is {len(envelope)} bytes, the cap is {cap}: "
                                  f"fewer zones and lines, or polygons with fewer points")
        found = image_signature(body)
        if found:
            raise Refused("image", f"payload carries {found} image data")
        try:
            ptype, inner, _ = open_envelope(envelope)
        except SignatureError as exc:
            raise Refused("envelope", str(exc)) from None
        if ptype != payload_type or inner != body:
            raise Refused("envelope", "envelope does not wrap exactly this payload")
        if payload_type == MANIFEST_PAYLOAD_TYPE:
            # the manifest's shape is fixed by privacy.manifest.build(); size and images checked
            return
        if payload_type != EVENT_PAYLOAD_TYPE:
            raise Refused("envelope", f"payload type {payload_type[:60]!r} may not leave")
        try:
            event = strict_json(body)
        except SignatureError as exc:
            raise Refused("schema", str(exc)) from None
        problems = schema_errors(event, schema())
        if problems:
            raise Refused("schema", problems[0])


class Refused(EgressViolation):
    """An EgressViolation with the check that failed in `reason` (schema, size, image, envelope)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"egress refused ({reason}): {detail}")

