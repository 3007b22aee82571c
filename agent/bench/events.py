"""Event sign-and-encode and verify rates (single-threaded) versus bare Ed25519 sign and verify."""

from __future__ import annotations

import argparse
import time
from typing import Callable

from agent.bench import emit


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", type=int, default=20000, help="events in each timed loop")
    p.add_argument(
        "--repeat", type=int, default=3, help="timed loops per figure; the best one counts"
    )


def rate(fn: Callable[[], int], repeat: int) -> float:
    """Best items/s over `repeat` runs of fn (which returns how many items it did)."""
    best = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = fn()
        best = max(best, n / (time.perf_counter() - t0))
    return best


def main(args: argparse.Namespace) -> int:
    from agent.privacy.egress import EgressGuard
    from agent.protocol.body import encode
    from agent.protocol.enrolment import enrolment
    from agent.privacy.anonymizer import Anonymizer, Identity
    from agent.protocol.dsse import EVENT_PAYLOAD_TYPE, SigningKey, pae, verify_raw
    from agent.types import Observation
    from agent.central.verify import Verifier

    n: int = args.events
    key = SigningKey.from_seed(bytes(range(32)))
    anon = Anonymizer(
        Identity("bench-cam", "bench-site", 1, "ssd_mobilenet_v1_coco_quant", "0" * 64), ("person",)
    )
    observations = [
        Observation("occupancy", "zone-a", "person", i * 0.1, {"count": i % 7}) if i % 3
        else Observation("line_crossing", "door", "person", i * 0.1, {"entries": 1}, direction="in")
        for i in range(n)
    ]
    envelopes: list[bytes] = []

    def sign_encode() -> int:
        envelopes.clear()
        for i, obs in enumerate(observations, 1):
            event = anon.event(obs, i, 1_700_000_000_000 + i)
            assert event is not None
            envelopes.append(key.envelope(EVENT_PAYLOAD_TYPE, encode(event)))
        return n

    guard = EgressGuard()

    def sign_encode_guard() -> int:
        for i, obs in enumerate(observations, 1):
            event = anon.event(obs, i, 1_700_000_000_000 + i)
            assert event is not None
            body = encode(event)
            guard.check(EVENT_PAYLOAD_TYPE, body, key.envelope(EVENT_PAYLOAD_TYPE, body))
        return n

    verifier = Verifier([enrolment(key, "bench-cam", "bench-site")])

    def verify() -> int:
        for env in envelopes:
            verifier.verify(env)
        return n

    message = pae(EVENT_PAYLOAD_TYPE, b"x" * 200)
    sig = key.sign_raw(message)

    def bare_sign() -> int:
        for _ in range(n):
            key.sign_raw(message)
        return n

    def bare_verify() -> int:
        for _ in range(n):
            verify_raw(key.public_key, message, sig)
        return n

    sign_rate = rate(sign_encode, args.repeat)
    guard_rate = rate(sign_encode_guard, args.repeat)
    verify_rate = rate(verify, args.repeat)
    bare_s = rate(bare_sign, args.repeat)
    bare_v = rate(bare_verify, args.repeat)
    mean_bytes = sum(map(len, envelopes)) // len(envelopes)
    print(f"sign+encode: {sign_rate:,.0f} events/s "
          f"({sign_rate / bare_s:.2f} of bare Ed25519 sign {bare_s:,.0f}/s)")
    print(f"sign+encode+egress guard: {guard_rate:,.0f} events/s")
    print(f"verify (signature, parse, schema, key binding): {verify_rate:,.0f} events/s "
          f"({verify_rate / bare_v:.2f} of bare Ed25519 verify {bare_v:,.0f}/s)")
    print(f"mean envelope: {mean_bytes} bytes")
    emit(
        {
            "bench": "events",
            "events": n,
            "threads": 1,
            "sign_encode_per_s": round(sign_rate),
            "sign_encode_guard_per_s": round(guard_rate),
            "verify_per_s": round(verify_rate),
            "bare_sign_per_s": round(bare_s),
            "bare_verify_per_s": round(bare_v),
            "sign_ratio": round(sign_rate / bare_s, 3),
            "verify_ratio": round(verify_rate / bare_v, 3),
            "envelope_bytes_mean": mean_bytes,
            "target_per_s": 5000,
            "meets_target": sign_rate >= 5000 and verify_rate >= 5000,
        }
    )
    return 0
