"""A mixed stream of real signed envelopes (valid and every kind of bad) with what ingest must do with each."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass, field, replace

from agent.protocol.body import Event, encode
from agent.protocol.enrolment import Enrolment, enrolment
from agent.protocol.dsse import EVENT_PAYLOAD_TYPE, MANIFEST_PAYLOAD_TYPE, SigningKey
from agent.protocol.topics import (ACK, CMD, DEFAULT_PREFIX, HEALTH, STATUS, device_topic,
                                   event_topic, manifest_topic)

PREFIX = DEFAULT_PREFIX
SITE = "s1"
RAW_CAP = 4096


@dataclass
class Stream:
    registry: list[Enrolment]
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    valid: dict[tuple[str, int], bytes] = field(default_factory=dict)  # (device, seq) -> envelope
    rejects: Counter[tuple[str, bytes]] = field(default_factory=Counter)  # (reason, raw[:cap])
    ignored: int = 0
    manifests: dict[str, bytes] = field(default_factory=dict)  # sha256 of body -> envelope

    def reasons(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (reason, _), n in self.rejects.items():
            out[reason] += n
        return out

    def add_reject(self, reason: str, topic: str, payload: bytes) -> None:
        self.messages.append((topic, payload))
        self.rejects[(reason, payload[:RAW_CAP])] += 1


def topic(device: str, etype: str = "count", site: str = SITE) -> str:
    return event_topic(PREFIX, site, device, etype)


def event(device: str, seq: int, site: str = SITE, **kw: object) -> Event:
    base = dict(id=f"{random.getrandbits(128):032x}", device=device, site=site, seq=seq, boot=1,
                ts_ms=1_700_000_000_000 + seq, type="count", model="ssd_mobilenet_v1_coco_quant",
                manifest="ab" * 32, rule="door", label="person", direction="in",
                values={"count": seq % 7, "entries": 1})
    base.update(kw)
    return Event(**base)  # type: ignore[arg-type]


def mixed_stream(valid_per_device: int = 1500, bad: int = 500, seed: int = 7) -> Stream:
    """4 active devices (dev-3 with a hole at seqs 700-702), one revoked, one unknown key."""
    random.seed(seed)
    keys = {f"dev-{i}": SigningKey.from_seed(bytes([i + 1]) * 32) for i in range(4)}
    revoked_key = SigningKey.from_seed(b"r" * 32)
    stranger = SigningKey.from_seed(b"x" * 32)
    registry = [enrolment(k, d, SITE) for d, k in keys.items()]
    registry.append(replace(enrolment(revoked_key, "dev-r", SITE), status="revoked"))
    s = Stream(registry)

    for device, key in keys.items():
        for seq in range(1, valid_per_device + 1):
            if device == "dev-3" and 700 <= seq <= 702:
                continue
            env = key.envelope(EVENT_PAYLOAD_TYPE, encode(event(device, seq)))
            s.valid[(device, seq)] = env
            s.messages.append((topic(device), env))

    # replayed: exact copies of stored envelopes (one copy is stored, the other quarantined)
    for (device, seq) in random.sample(sorted(s.valid), bad + bad // 2):
        env = s.valid[(device, seq)]
        s.add_reject("replayed", topic(device), env)

    k0 = keys["dev-0"]
    for n in range(bad):
        seq = 100_000 + n
        # tampered: a changed body under the original signature, or a flipped signature byte
        env = json.loads(k0.envelope(EVENT_PAYLOAD_TYPE, encode(event("dev-0", seq))))
        if n % 2:
            env["payload"] = base64.b64encode(encode(event("dev-0", seq, values={"count": 999}))).decode()
        else:
            sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
            sig[n % 64] ^= 0x01
            env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
        s.add_reject("tampered", topic("dev-0"), json.dumps(env, separators=(",", ":")).encode())
        # unknown key: a well-formed event from a device nobody enrolled
        s.add_reject("unknown-key", topic("dev-x"),
                     stranger.envelope(EVENT_PAYLOAD_TYPE, encode(event("dev-x", seq))))
        # revoked key
        s.add_reject("revoked", topic("dev-r"),
                     revoked_key.envelope(EVENT_PAYLOAD_TYPE, encode(event("dev-r", seq))))
        # topic/device mismatch: dev-0's event on dev-1's topic; dev-0's key claiming to be dev-1;
        # the right device under another site or event type in the topic
        kind = n % 4
        if kind == 0:
            payload, t = k0.envelope(EVENT_PAYLOAD_TYPE, encode(event("dev-0", seq))), topic("dev-1")
        elif kind == 1:
            payload, t = k0.envelope(EVENT_PAYLOAD_TYPE, encode(event("dev-1", seq))), topic("dev-1")
        elif kind == 2:
            payload, t = k0.envelope(EVENT_PAYLOAD_TYPE, encode(event("dev-0", seq))), topic("dev-0", site="s2")
        else:
            payload, t = k0.envelope(EVENT_PAYLOAD_TYPE, encode(event("dev-0", seq))), topic("dev-0", "alarm")
        s.add_reject("topic-mismatch", t, payload)
        # malformed: not JSON, truncated JSON, JSON of the wrong shape, a signed body breaking the schema
        kind = n % 4
        if kind == 0:
            payload = b"{not json" + str(n).encode()
        elif kind == 1:
            payload = k0.envelope(EVENT_PAYLOAD_TYPE, encode(event("dev-0", seq)))[: 40 + n % 50]
        elif kind == 2:
            payload = json.dumps({"payloadType": EVENT_PAYLOAD_TYPE, "payload": "!!", "n": n}).encode()
        else:
            body = encode(event("dev-0", seq)).replace(b'"count":', b'"count":0.5,"x":', 1)
            payload = k0.envelope(EVENT_PAYLOAD_TYPE, body)
        s.add_reject("malformed", topic("dev-0"), payload)
        # wrong payloadType: correctly signed, but not an event
        s.add_reject("unknown-payload-type", topic("dev-0"),
                     k0.envelope(MANIFEST_PAYLOAD_TYPE, encode(event("dev-0", seq))))
        # oversized: never parsed (a huge but otherwise valid-looking envelope)
        if n % 2 == 0:
            big = k0.envelope(EVENT_PAYLOAD_TYPE, encode(event("dev-0", seq)) + b" " * 5000)
            s.add_reject("oversized", topic("dev-0"), big)
    # signed privacy manifests: stored by body SHA-256 (a retained copy again is not a reject);
    # one on another device's topic, one signed by another device's key, one not even JSON
    by_device = {}
    for device, key in keys.items():
        body = json.dumps({"device": device, "site": SITE, "raw_video_egress": False, "v": 1}).encode()
        env = key.envelope(MANIFEST_PAYLOAD_TYPE, body)
        s.manifests[hashlib.sha256(body).hexdigest()] = by_device[device] = env
        s.messages += [(manifest_topic(PREFIX, SITE, device), env)] * 2
    s.add_reject("topic-mismatch", manifest_topic(PREFIX, SITE, "dev-1"), by_device["dev-0"])
    forged = json.dumps({"device": "dev-1", "site": SITE, "raw_video_egress": False}).encode()
    s.add_reject("topic-mismatch", manifest_topic(PREFIX, SITE, "dev-1"),
                 k0.envelope(MANIFEST_PAYLOAD_TYPE, forged))
    s.add_reject("malformed", manifest_topic(PREFIX, SITE, "dev-1"), b'{"state":"online"}')
    # the device's own non-event topics and our acks: ignored, neither stored nor quarantined
    for n in range(100):
        device = f"dev-{n % 4}"
        kind = (STATUS, HEALTH, CMD, ACK)[n % 4]
        s.messages.append((device_topic(PREFIX, SITE, device, kind), b'{"state":"online"}'))
        s.ignored += 1
    random.shuffle(s.messages)
    return s
