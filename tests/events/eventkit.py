"""Helpers for the event, envelope and egress tests: a device key, its registry, a real event."""

from __future__ import annotations

from dataclasses import dataclass

from agent.protocol.body import encode
from agent.protocol.enrolment import Enrolment, enrolment
from agent.privacy.anonymizer import Anonymizer, Identity
from agent.protocol.dsse import EVENT_PAYLOAD_TYPE, SigningKey
from agent.types import Observation
from agent.central.verify import Verifier

MANIFEST_SHA = "ab" * 32


@dataclass
class Device:
    key: SigningKey
    record: Enrolment
    anonymizer: Anonymizer

    def body(self, seq: int = 1, obs: Observation | None = None) -> bytes:
        obs = obs or Observation("occupancy", "zone-a", "person", 1.0, {"count": 3})
        event = self.anonymizer.event(obs, seq, 1_700_000_000_000 + seq)
        assert event is not None
        return encode(event)

    def envelope(self, seq: int = 1, obs: Observation | None = None) -> bytes:
        return self.key.envelope(EVENT_PAYLOAD_TYPE, self.body(seq, obs))

    def verifier(self, *others: Enrolment) -> Verifier:
        return Verifier([self.record, *others])


def make_device(device_id: str = "cam-1", site: str = "lab", seed: bytes | None = None) -> Device:
    key = SigningKey.from_seed(seed) if seed else SigningKey.generate()
    ident = Identity(device_id, site, 1, "ssd_mobilenet_v1_coco_quant", MANIFEST_SHA)
    return Device(key, enrolment(key, device_id, site), Anonymizer(ident, ("person",)))
