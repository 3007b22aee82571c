"""Anonymization: the allow-list, coarse grid cells, k-suppression, fresh ids, nothing else leaves."""

from __future__ import annotations

import json

import pytest

from agent.config import ConfigError, parse
from agent.protocol.body import encode
from agent.protocol.schema import schema
from agent.privacy.anonymizer import Anonymizer, Identity, grid_cell
from agent.types import Observation

IDENT = Identity("cam-1", "lab", 3, "ssd_mobilenet_v1_coco_quant", "cd" * 32)


def event(anon: Anonymizer, obs: Observation) -> dict | None:  # type: ignore[type-arg]
    e = anon.event(obs, 7, 1234)
    return None if e is None else json.loads(encode(e))


def test_identity_fields_and_integers() -> None:
    anon = Anonymizer(IDENT, ("person",))
    e = event(anon, Observation("occupancy", "zone-a", "person", 12.5, {"count": 2}))
    assert e is not None
    assert {k: e[k] for k in ("v", "device", "site", "seq", "boot", "ts_ms", "type", "rule", "label", "model",
                              "manifest")} == {
        "v": 1, "device": "cam-1", "site": "lab", "seq": 7, "boot": 3, "ts_ms": 1234, "type": "occupancy",
        "rule": "zone-a", "label": "person", "model": "ssd_mobilenet_v1_coco_quant", "manifest": "cd" * 32}
    assert e["values"] == {"count": 2}
    assert set(e) <= set(schema()["properties"])


def test_classes_outside_the_allow_list_never_leave() -> None:
    anon = Anonymizer(IDENT, ("person",))
    assert anon.event(Observation("occupancy", "zone-a", "car", 0.0, {"count": 1}), 1, 0) is None
    assert anon.event(Observation("occupancy", "zone-a", "", 0.0, {"count": 1}), 1, 0) is None


def test_only_allow_listed_integer_values_leave() -> None:
    anon = Anonymizer(IDENT, ("person",))
    obs = Observation("loitering_start", "door", "person", 0.0,
                      {"dwell_s_min": 30, "track_id": 17, "embedding": 5, "x_milli": 412,
                       "count": 1.5, "rise": True})  # type: ignore[dict-item]
    e = event(anon, obs)
    assert e is not None and e["values"] == {"dwell_s_min": 30}
    assert "track" not in json.dumps(e) and "embedding" not in json.dumps(e)


def test_positions_leave_only_as_grid_cells() -> None:
    obs = Observation("loitering_start", "door", "person", 0.0, {}, position=(0.61, 0.26))
    assert "cell" not in event(Anonymizer(IDENT, ("person",)), obs)  # type: ignore[operator]
    e = event(Anonymizer(IDENT, ("person",), grid=4), obs)
    assert e is not None and e["cell"] == 1 * 4 + 2
    assert "0.61" not in json.dumps(e)
    assert grid_cell((0.0, 0.0), 8) == 0
    assert grid_cell((1.0, 1.0), 8) == 63  # the frame's far edge is the last cell
    assert grid_cell((-0.2, 1.7), 8) == 56
    assert grid_cell((0.999, 0.999), 64) == 4095  # the schema's maximum


def test_k_suppression_of_periodic_aggregates() -> None:
    anon = Anonymizer(IDENT, ("person",), min_count_k=3)
    small = event(anon, Observation("occupancy", "zone-a", "person", 0.0, {"count": 2}))
    assert small is not None and small["values"] == {"count": 0, "suppressed": 1}
    counts = event(anon, Observation("count", "door", "person", 0.0, {"entries": 1, "exits": 5, "interval_s": 60}))
    assert counts is not None and counts["values"] == {"entries": 0, "exits": 5, "interval_s": 60, "suppressed": 1}
    big = event(anon, Observation("occupancy", "zone-a", "person", 0.0, {"count": 3}))
    assert big is not None and big["values"] == {"count": 3}
    zero = event(anon, Observation("occupancy", "zone-a", "person", 0.0, {"count": 0}))
    assert zero is not None and zero["values"] == {"count": 0}
    # a single crossing is an event, not a periodic aggregate: k does not apply
    cross = event(anon, Observation("line_crossing", "door", "person", 0.0, {"entries": 1}, direction="in"))
    assert cross is not None and cross["values"] == {"entries": 1} and cross["direction"] == "in"


def test_event_ids_are_fresh_randomness() -> None:
    anon = Anonymizer(IDENT, ("person",))
    obs = Observation("occupancy", "zone-a", "person", 0.0, {"count": 1})
    ids = {anon.event(obs, 1, 0).id for _ in range(200)}  # type: ignore[union-attr]
    assert len(ids) == 200 and all(len(i) == 32 for i in ids)


def test_device_events_carry_no_label_or_position_and_alarms_a_reason() -> None:
    anon = Anonymizer(IDENT, ("person",), grid=4)
    alarm = event(anon, Observation("alarm", "egress-image", "person", 0.0, {"egress_refused": 1},
                                    position=(0.5, 0.5), reason="egress_refused"))
    assert alarm is not None and alarm["reason"] == "egress_refused"
    assert "label" not in alarm and "cell" not in alarm
    occ = event(anon, Observation("occupancy", "z", "person", 0.0, {"count": 1}, reason="sneaky"))
    assert occ is not None and "reason" not in occ


def test_unknown_observation_type_is_a_bug() -> None:
    with pytest.raises(ValueError):
        Anonymizer(IDENT, ("person",)).event(Observation("face_seen", "z", "person", 0.0), 1, 0)


def test_privacy_config_bounds() -> None:
    assert parse({"privacy": {"grid": 64, "min_count_k": 5}}).privacy.grid == 64
    for bad in ({"grid": 65}, {"grid": -1}, {"min_count_k": -2}):
        with pytest.raises(ConfigError):
            parse({"privacy": bad})
