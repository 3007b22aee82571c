"""agent.protocol.schema agrees with the jsonschema package on the event schema, valid and invalid events."""

from __future__ import annotations

import json

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.protocol.body import EVENT_TYPES, encode
from agent.protocol.schema import schema
from agent.protocol.schema import errors
from agent.types import Observation
from tests.events.eventkit import make_device

VALIDATOR = jsonschema.Draft202012Validator(schema())
PROPS = schema()["properties"]
VALUE_PROPS = PROPS["values"]["properties"]
_DEV = make_device(seed=bytes(range(32)))


def agree(instance: object) -> bool:
    ours = not errors(instance, schema())
    theirs = VALIDATOR.is_valid(instance)
    assert ours == theirs, (instance, errors(instance, schema()), [e.message for e in VALIDATOR.iter_errors(instance)])
    return ours


values_st = st.dictionaries(
    st.sampled_from(sorted(VALUE_PROPS)),
    st.integers(0, 1),  # within every key's range
    max_size=6,
).flatmap(
    lambda d: st.fixed_dictionaries(
        {k: st.integers(VALUE_PROPS[k]["minimum"], VALUE_PROPS[k]["maximum"]) for k in d}
    )
)

observations = st.builds(
    Observation,
    type=st.sampled_from(EVENT_TYPES),
    rule=st.from_regex(r"\A[A-Za-z0-9_.-]{1,64}\Z"),
    label=st.just("person"),
    t_s=st.floats(0, 1e6),
    values=values_st,
    direction=st.sampled_from([None, "in", "out"]),
    reason=st.one_of(st.none(), st.from_regex(r"\A[a-z0-9_-]{1,48}\Z")),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(observations, st.integers(1, 2**53 - 1))
def test_events_built_by_privacy_are_valid_for_both(obs: Observation, seq: int) -> None:
    event = _DEV.anonymizer.event(obs, seq, 1_700_000_000_000)
    assert event is not None
    assert agree(json.loads(encode(event)))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer())
    | st.text(max_size=70),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
keys = st.sampled_from(sorted(PROPS)) | st.text(min_size=1, max_size=10)


@st.composite
def mutated_events(draw: st.DrawFn) -> dict:  # type: ignore[type-arg]
    event = json.loads(_DEV.body())
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["set", "delete", "set_value", "boundary"]))
        if action == "set":
            event[draw(keys)] = draw(json_values)
        elif action == "delete" and event:
            event.pop(draw(st.sampled_from(sorted(event))))
        elif action == "set_value":
            vals = event.get("values")
            if isinstance(vals, dict):
                vals[draw(st.sampled_from(sorted(VALUE_PROPS)) | st.text(max_size=6))] = draw(json_values)
        else:
            name = draw(st.sampled_from(["seq", "boot", "ts_ms", "cell"]))
            spec = PROPS[name]
            event[name] = draw(st.sampled_from([spec["minimum"] - 1, spec["minimum"], spec["maximum"],
                                                spec["maximum"] + 1]))
    return event


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_events())
def test_mutated_events_get_the_same_verdict(event: dict) -> None:  # type: ignore[type-arg]
    agree(event)


def test_some_known_invalid_events() -> None:
    base = json.loads(_DEV.body())
    assert agree(base)
    for change in ({"v": 2}, {"seq": 0}, {"type": "face"}, {"label": "Person"}, {"rule": "a/b"},
                   {"id": "x"}, {"values": {"count": -1}}, {"values": {"embedding": 1}}, {"crop": "x"},
                   {"ts_ms": True}, {"direction": "up"}, {"cell": 4096}):
        assert not agree({**base, **change}), change
    missing = dict(base)
    del missing["manifest"]
    assert not agree(missing)


def test_integral_floats_are_refused_where_jsonschema_would_accept_them() -> None:
    """The one intended difference: signed payloads carry integers, so 3.0 is not an integer here."""
    event = {**json.loads(_DEV.body()), "values": {"count": 3.0}}
    assert VALIDATOR.is_valid(event)
    assert errors(event, schema()) == ["$.values.count: must be an integer"]
