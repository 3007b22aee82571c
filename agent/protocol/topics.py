"""Every MQTT topic of the protocol, built and parsed here, with the default prefix and size caps.

    {prefix}/{site}/{device}/event/{type}   signed events (QoS 1)
    {prefix}/{site}/{device}/manifest       the signed privacy manifest (retained)
    {prefix}/{site}/{device}/status         "online" / "offline" (retained; the Last Will)
    {prefix}/{site}/{device}/birth          agent version, model, manifest hash (retained, on connect)
    {prefix}/{site}/{device}/ha             Home Assistant state, integers (retained; opt-in discovery)
    {prefix}/{site}/{device}/ack            signed ingest acks to the device
    {prefix}/{site}/{device}/cmd            signed configuration changes to the device (retained)
    {prefix}/{site}/{device}/health         reserved: nothing publishes it (heartbeats are events)
    {prefix}/{site}/{device}/enrol          a new device's self-signed enrolment request (retained)
    {prefix}/{site}/{device}/enrolled       the operator's signed approval, with its certificate (retained)
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "edge/v1"

# Size caps, one definition for both ends: the device's egress guard refuses larger envelopes and
# the ingest quarantines larger messages unparsed ("oversized").
MAX_EVENT_BYTES = 4096  # one event envelope (the privacy manifest states it)
MAX_MANIFEST_BYTES = 16384  # the signed privacy manifest (it lists zones, lines and rules)

EVENT = "event"
MANIFEST = "manifest"
STATUS = "status"
ACK = "ack"
CMD = "cmd"
HEALTH = "health"
BIRTH = "birth"
HA = "ha"  # Home Assistant's state document (opt-in discovery)
ENROL = "enrol"
ENROLLED = "enrolled"
# Device topics that carry no event: counted and not stored by the ingest (status is retained on
# the broker, its store; health is reserved). The signed manifest is verified and stored.
CONTROL_KINDS = (STATUS, HEALTH, ACK, CMD, BIRTH, HA, ENROL, ENROLLED)


def device_base(prefix: str, site: str, device: str) -> str:
    return f"{prefix}/{site}/{device}"


def event_topic(prefix: str, site: str, device: str, event_type: str) -> str:
    return f"{device_base(prefix, site, device)}/{EVENT}/{event_type}"


def device_topic(prefix: str, site: str, device: str, kind: str) -> str:
    """{prefix}/{site}/{device}/{kind} for kind in manifest, status, ack, cmd."""
    return f"{device_base(prefix, site, device)}/{kind}"


def manifest_topic(prefix: str, site: str, device: str) -> str:
    return device_topic(prefix, site, device, MANIFEST)


def status_topic(prefix: str, site: str, device: str) -> str:
    return device_topic(prefix, site, device, STATUS)


def ack_topic(prefix: str, site: str, device: str) -> str:
    return device_topic(prefix, site, device, ACK)


def cmd_topic(prefix: str, site: str, device: str) -> str:
    return device_topic(prefix, site, device, CMD)


def birth_topic(prefix: str, site: str, device: str) -> str:
    return device_topic(prefix, site, device, BIRTH)


def enrol_topic(prefix: str, site: str, device: str) -> str:
    return device_topic(prefix, site, device, ENROL)


def enrolled_topic(prefix: str, site: str, device: str) -> str:
    return device_topic(prefix, site, device, ENROLLED)


def enrol_filter(prefix: str) -> str:
    """Every enrolment request of every site (the operator's `registry pending --config`)."""
    return f"{prefix}/+/+/{ENROL}"


def all_events_filter(prefix: str, site: str, device: str) -> str:
    """The subscription filter for every event of one device."""
    return f"{device_base(prefix, site, device)}/{EVENT}/+"


def shared_filter(group: str, prefix: str) -> str:
    """The ingest's shared subscription: every topic of every device, split across the group."""
    return f"$share/{group}/{prefix}/+/+/#"


@dataclass(frozen=True)
class Topic:
    site: str
    device: str
    kind: str
    event_type: str | None


def parse_topic(prefix: str, topic: str) -> Topic | None:
    """{prefix}/{site}/{device}/event/{type} or {prefix}/{site}/{device}/{kind}; None otherwise."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1:].split("/")
    if len(parts) == 4 and parts[2] == EVENT and all(parts):
        return Topic(parts[0], parts[1], EVENT, parts[3])
    if len(parts) == 3 and all(parts):
        return Topic(parts[0], parts[1], parts[2], None)
    return None
