"""The egress guard: schema, 4 KiB cap and image signatures (real images), refusals become alarms."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest

from agent.privacy.egress import EgressGuard, Refused, b64_image_prefixes, image_signature
from agent.delivery.emitter import Emitter
from agent.delivery.outbox import Outbox
from agent.protocol.dsse import EVENT_PAYLOAD_TYPE
from agent.types import Observation
from tests.events.eventkit import Device

GIF_1X1 = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")


@pytest.fixture(scope="module")
def images(assets: Path) -> dict[str, bytes]:
    import cv2

    jpeg = (assets / "images" / "bus.jpg").read_bytes()
    small = cv2.resize(cv2.imread(str(assets / "images" / "zidane.jpg")), (32, 24))
    return {
        "jpeg": jpeg,
        "png": cv2.imencode(".png", small)[1].tobytes(),
        "webp": cv2.imencode(".webp", small)[1].tobytes(),
        "gif": GIF_1X1,
    }


def with_rule(device: Device, rule: bytes) -> bytes:
    """A schema-shaped body whose rule string carries the given bytes."""
    return device.body().replace(b'"rule":"zone-a"', b'"rule":"' + rule + b'"')


def check(guard: EgressGuard, device: Device, body: bytes) -> str | None:
    try:
        guard.check(EVENT_PAYLOAD_TYPE, body, device.key.envelope(EVENT_PAYLOAD_TYPE, body))
    except Refused as exc:
        return exc.reason
    return None


def test_a_real_event_passes(device: Device) -> None:
    assert check(EgressGuard(), device, device.body()) is None


def test_the_base64_forms_are_the_magic_numbers_encoded() -> None:
    assert b64_image_prefixes() == {"jpeg": b"/9j/", "png": b"iVBORw0KGgo", "gif": b"R0lGOD", "webp": b"UklGR"}


@pytest.mark.parametrize("kind", ["jpeg", "png", "webp", "gif"])
def test_real_images_raw_and_base64_are_refused(device: Device, images: dict[str, bytes], kind: str) -> None:
    data = images[kind]
    assert image_signature(data) == kind
    guard = EgressGuard()
    assert check(guard, device, with_rule(device, data[:48])) == "image"
    b64 = base64.b64encode(data)
    assert image_signature(b64) == f"{kind}-base64"
    assert check(guard, device, with_rule(device, b64[:40])) == "image"
    assert check(guard, device, with_rule(device, b"x" + b64[:40])) == "image"  # not only at the start
    assert check(guard, device, with_rule(device, b"data:image/" + kind.encode())) == "image"
    assert guard.refused["image"] == 4


def test_size_cap(device: Device) -> None:
    guard = EgressGuard()
    body = device.body()
    padded = body[:-1] + b" " * (4096 - len(body)) + b"}"  # valid JSON, but the envelope grows past 4 KiB
    assert check(guard, device, padded) == "size"
    assert check(EgressGuard(max_bytes=8192), device, padded) is None


def test_schema_and_envelope(device: Device) -> None:
    guard = EgressGuard()
    assert check(guard, device, device.body().replace(b'"v":1', b'"v":1,"plate":"AB123"')) == "schema"
    assert check(guard, device, device.body().replace(b'"count":3', b'"count":NaN')) == "schema"
    assert check(guard, device, device.body().replace(b'"count":3', b'"count":0.5')) == "schema"
    body = device.body()
    other = device.key.envelope(EVENT_PAYLOAD_TYPE, device.body(seq=2))
    with pytest.raises(Refused) as exc:
        guard.check(EVENT_PAYLOAD_TYPE, body, other)
    assert exc.value.reason == "envelope"
    with pytest.raises(Refused) as exc:
        guard.check("text/plain", body, device.key.envelope("text/plain", body))
    assert exc.value.reason == "envelope"
    assert guard.total_refused == 5


def test_refusals_are_logged_once_per_reason(device: Device, caplog: pytest.LogCaptureFixture) -> None:
    guard = EgressGuard()
    with caplog.at_level(logging.WARNING, logger="agent.privacy.egress"):
        for _ in range(5):
            check(guard, device, with_rule(device, b"iVBORw0KGgoAAAANSUhEUg"))
    assert guard.refused["image"] == 5
    assert len(caplog.records) == 1 and "image" in caplog.records[0].getMessage()
    assert "iVBOR" not in caplog.text  # never the payload


def test_emitter_refuses_queues_an_alarm_and_loses_no_seq(device: Device, tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    now = [1_700_000_000_000]
    sent: list[bytes] = []
    em = Emitter(device.anonymizer, device.key, outbox, clock_ms=lambda: now[0], sink=sent.append)
    leak = Observation("occupancy", "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB", "person", 0.0, {"count": 1})
    ok = Observation("occupancy", "zone-a", "person", 0.0, {"count": 1})

    assert em.emit([leak]) == [1]  # seq 1 is the alarm; the refused payload took no seq
    assert em.emit([ok]) == [2]
    assert em.emit([leak, leak]) == []  # counted, but one alarm per reason per minute
    now[0] += 61_000
    assert em.emit([leak]) == [3]
    assert em.egress_refused == 4

    verifier = device.verifier()
    rows = outbox.peek(100)
    assert [r.seq for r in rows] == [1, 2, 3]
    assert [r.envelope for r in rows] == sent  # the exact bytes stored are the bytes sent
    events = [verifier.check(r.envelope)[0] for r in rows]
    alarms = [e for e in events if e["type"] == "alarm"]
    assert [a["reason"] for a in alarms] == ["egress_refused", "egress_refused"]
    assert [a["values"]["egress_refused"] for a in alarms] == [1, 4]
    assert all(a["rule"] == "egress-image" for a in alarms)
    assert rows[0].topic == "edge/v1/lab/cam-1/event/alarm"
    assert not any(b"iVBOR" in base64.b64decode(json.loads(r.envelope)["payload"]) for r in rows)
    outbox.close()


def test_seq_and_boot_continue_across_restarts(tmp_path: Path) -> None:
    """seq grows by one over the device's life (the outbox owns it), boot counts the starts."""
    from agent.privacy.anonymizer import Anonymizer, Identity
    from tests.events.eventkit import MANIFEST_SHA, make_device

    dev = make_device(seed=bytes(range(32)))
    verifier = dev.verifier()
    seen = []
    for _ in range(3):  # three starts of the agent on the same state folder
        outbox = Outbox(tmp_path / "outbox.db")
        boot = outbox.start_boot()
        anon = Anonymizer(Identity("cam-1", "lab", boot, "m", MANIFEST_SHA), ("person",))
        em = Emitter(anon, dev.key, outbox, sink=lambda env: seen.append(verifier.check(env)[0]))
        em.emit([Observation("occupancy", "z", "person", 0.0, {"count": n}) for n in range(2)])
        outbox.close()
    assert [(e["seq"], e["boot"]) for e in seen] == [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (6, 3)]
