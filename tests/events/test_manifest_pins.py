"""Issue 13 items 4 and 5: the privacy manifest pins where and what is watched, states its own
size limit, and the time precision of per-person events is a privacy setting it states."""

from __future__ import annotations

import json
from typing import Any

from agent.config import parse
from agent.privacy import manifest as pm
from agent.privacy.anonymizer import Anonymizer, Identity
from agent.protocol import topics
from agent.protocol.dsse import MANIFEST_PAYLOAD_TYPE, SigningKey
from agent.types import Observation

BASE: dict[str, Any] = {
    "device": {"id": "cam-1", "site": "s1"},
    "detector": {"classes": ["person", "backpack"]},
    "zones": [
        {
            "id": "desk",
            "polygon": [[0.3, 0.05], [0.85, 0.05], [0.85, 1.0], [0.3, 1.0]],
            "classes": ["person", "backpack"],
            "loiter_after_s": 8.0,
            "unattended_after_s": 20.0,
            "gathering_threshold": 4,
        }
    ],
    "lines": [{"id": "door", "points": [[0.0, 0.6], [1.0, 0.6]]}],
    "privacy": {"masks": [[[0.0, 0.0], [0.2, 0.0], [0.2, 0.2]]]},
}
SHA = "ab" * 32


def digest(table: dict[str, Any]) -> str:
    return pm.manifest_hash(pm.manifest_body(pm.build(parse(table), SHA)))


def changed(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    table = json.loads(json.dumps(BASE))
    node = table
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return table


def test_configs_that_watch_other_places_or_apply_other_rules_differ_in_hash() -> None:
    base = digest(BASE)
    variants = {
        "zone polygon": changed(("zones", 0, "polygon"), [[0.1, 0.05], [0.85, 0.05], [0.85, 1.0]]),
        "line segment": changed(("lines", 0, "points"), [[0.0, 0.5], [1.0, 0.5]]),
        "loitering": changed(("zones", 0, "loiter_after_s"), 30.0),
        "unattended": changed(("zones", 0, "unattended_after_s"), 60.0),
        "gathering": changed(("zones", 0, "gathering_threshold"), 10),
        "restricted": changed(("zones", 0, "restricted"), True),
        "mask": changed(("privacy", "masks"), [[[0.5, 0.5], [0.7, 0.5], [0.7, 0.7]]]),
        "detector classes": changed(("detector", "classes"), ["person"]),
        "time precision": changed(("privacy",), {"time_precision_s": 60}),
    }
    hashes = {name: digest(t) for name, t in variants.items()}
    assert all(h != base for h in hashes.values()), [n for n, h in hashes.items() if h == base]
    assert len(set(hashes.values())) == len(hashes)


def test_the_manifest_shows_the_configured_values_as_integers() -> None:
    doc = pm.build(parse(BASE), SHA)
    desk = next(r for r in doc["rules"] if r["id"] == "desk")
    assert desk["polygon"] == [
        [300000, 50000],
        [850000, 50000],
        [850000, 1000000],
        [300000, 1000000],
    ]
    assert desk["loiter_after_ms"] == 8000 and desk["unattended_after_ms"] == 20000
    assert desk["gathering_threshold"] == 4 and desk["classes"] == ["backpack", "person"]
    door = next(r for r in doc["rules"] if r["id"] == "door")
    assert door["points"] == [[0, 600000], [1000000, 600000]] and door["kind"] == "line"
    assert doc["masks"]["polygons"] == [[[0, 0], [200000, 0], [200000, 200000]]]
    assert doc["classes"] == ["backpack", "person"]

    def numbers(value: Any) -> list[Any]:
        if isinstance(value, dict):
            return [n for v in value.values() for n in numbers(v)]
        if isinstance(value, list):
            return [n for v in value for n in numbers(v)]
        return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []

    assert all(isinstance(n, int) for n in numbers(doc))  # the events' convention: integers only
    text = "\n".join(pm.lines(doc, "x"))
    assert (
        "polygon [[300000, 50000]" in text and "loiter_after_ms 8000" in text and "mask 1:" in text
    )


def test_the_manifest_declares_the_size_limit_that_applies_to_itself() -> None:
    doc = pm.build(parse(BASE), SHA)
    guard = doc["egress_guard"]
    assert guard["max_event_envelope_bytes"] == topics.MAX_EVENT_BYTES
    assert guard["max_manifest_envelope_bytes"] == topics.MAX_MANIFEST_BYTES
    envelope = SigningKey.from_seed(b"k" * 32).envelope(
        MANIFEST_PAYLOAD_TYPE, pm.manifest_body(doc)
    )
    assert topics.MAX_EVENT_BYTES < len(envelope) <= guard["max_manifest_envelope_bytes"]
    assert "max_envelope_bytes" not in guard  # the old, wrong claim that 4096 applied to it


def test_time_precision_coarsens_per_person_events_and_the_manifest_states_it() -> None:
    cfg = parse(changed(("privacy",), {"time_precision_s": 60}))
    doc = pm.build(cfg, SHA)
    assert doc["time_precision"]["per_object_ms"] == 60_000
    assert "rounded down to 60 s" in doc["fields"]["ts_ms"]
    assert pm.build(parse(BASE), SHA)["time_precision"]["per_object_ms"] == 1
    anon = Anonymizer(
        Identity("cam-1", "s1", 1, "m", SHA),
        ("person",),
        time_precision_ms=cfg.privacy.time_precision_s * 1000,
    )
    ts = 1_700_000_123_456
    person = [
        Observation("line_crossing", "door", "person", 1.0, {"entries": 1}, direction="in"),
        Observation("loitering_start", "desk", "person", 1.0, {"dwell_s_min": 8}),
        Observation("loitering_end", "desk", "person", 1.0, {"dwell_s_min": 8}),
        Observation("unattended_object", "desk", "person", 1.0, {"stationary_s": 20}),
    ]
    for obs in person:
        event = anon.event(obs, 1, ts)
        assert event is not None and event.ts_ms == 1_700_000_100_000, obs.type
    aggregate = anon.event(Observation("occupancy", "desk", "person", 1.0, {"count": 2}), 2, ts)
    assert aggregate is not None and aggregate.ts_ms == ts  # aggregates name no one


def test_time_precision_out_of_range_is_one_clear_line() -> None:
    import pytest

    from agent.errors import ConfigError

    with pytest.raises(ConfigError, match="time_precision_s"):
        parse({"privacy": {"time_precision_s": -1}})
