"""Signed remote configuration, decided without a broker: every refusal reason, the deny-list key by
key, persistence of the version across a restart, and a property test over mutated changes."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from agent import config
from agent.config import Config
from agent.protocol import change as ch
from agent.protocol.dsse import SigningKey
from agent.remote.control import RemoteControl
from agent.remote.settings import overlay
from agent.errors import StateError
from agent.remote.state import Current, RemoteState
from agent.types import Observation
from tests.remote.rkit import MOVED, ZONE, signed

OPERATOR = SigningKey.from_seed(b"o" * 32)
INTRUDER = SigningKey.from_seed(b"i" * 32)


class FakeLive:
    """Records what would be switched (the real one is exercised against Mosquitto)."""

    def __init__(self, cfg: Config | None = None) -> None:
        self.cfg = cfg if cfg is not None else base_config(Path(tempfile.gettempdir()))
        self.switched: list[Config] = []
        self.announced = 0
        self.levels: list[str] = []

    def prepare(self, cfg: Config) -> object:
        return cfg

    def switch(self, prepared: object, now_s: float) -> None:
        assert isinstance(prepared, Config)
        self.switched.append(prepared)
        self.cfg = prepared

    def heartbeat(self, now_s: float) -> list[Observation]:
        return [Observation("heartbeat", "", "", now_s, {"uptime_s": 1})]

    def announce(self) -> None:
        self.announced += 1

    def set_log_level(self, level: str) -> None:
        self.levels.append(level)


def base_config(state: Path) -> Config:
    return config.parse(
        {"device": {"id": "cam-1", "site": "lab", "state_dir": str(state)}, "zones": [ZONE]}
    )


def control(state: Path, synced: bool = True, live: FakeLive | None = None) -> RemoteControl:
    return RemoteControl(
        base_config(state),
        {OPERATOR.keyid: OPERATOR.public_key},
        RemoteState(state / "remote.db"),
        lambda: synced,
        live=live or FakeLive(),
    )


def result(obs: list[Observation]) -> tuple[str | None, str, dict[str, int]]:
    first = obs[0]
    assert first.type == "config"
    return first.reason, first.rule, dict(first.values)


def test_valid_change_is_applied_once_then_replay_and_older_are_refused(tmp_path: Path) -> None:
    live = FakeLive()
    rc = control(tmp_path, live=live)
    env = signed(OPERATOR, 1)
    assert result(rc.handle(env, False, 0.0)) == (
        "applied",
        "",
        {"version": 1, "config_version": 1},
    )
    assert live.switched[-1].zones[0].polygon[0] == (0.5, 0.0)
    assert result(rc.handle(env, False, 1.0))[0] == "replayed"
    assert rc.handle(env, True, 1.0) == []  # the retained copy on reconnect: quiet
    assert len(live.switched) == 1
    # after a restart (a new stage over the same state file) the version and settings hold
    rc2 = control(tmp_path)
    assert result(rc2.handle(env, False, 2.0))[0] == "replayed"
    older = signed(OPERATOR, 1, {"zones": [ZONE]}, base=0)
    assert result(rc2.handle(older, False, 2.0)) == (
        "stale-version",
        "",
        {"version": 1, "config_version": 1},
    )
    assert rc2.state.current().settings["zones"] == [MOVED]


@pytest.mark.parametrize(
    "case, reason",
    [
        ("unsigned", "unsigned"),
        ("json-not-envelope", "unsigned"),
        ("wrong-key", "unknown-key"),
        ("changed-byte", "bad-signature"),
        ("other-device", "wrong-target"),
        ("other-site", "wrong-target"),
        ("expired", "expired"),
        ("future", "not-yet-valid"),
        ("base", "base-mismatch"),
        ("two-points", "invalid-value"),
        ("unknown-key-in-zone", "invalid-value"),
        ("unknown", "unknown-setting"),
        ("zone-class-not-detected", "invalid-value"),
        ("other-payload-type", "unknown-payload-type"),
        ("bad-level", "invalid-value"),
    ],
)
def test_refusals(tmp_path: Path, case: str, reason: str) -> None:
    live = FakeLive()
    rc = control(tmp_path, live=live)
    now = int(time.time())
    env = {
        "unsigned": lambda: ch.change_body(
            ch.Change("lab", "cam-1", 1, 0, now, now + 60, {"zones": [MOVED]})
        ),
        "json-not-envelope": lambda: b'{"payloadType": "x"}',
        "wrong-key": lambda: signed(INTRUDER, 1),
        "changed-byte": lambda: _flip_in_payload(signed(OPERATOR, 1)),
        "other-device": lambda: signed(OPERATOR, 1, device="cam-2"),
        "other-site": lambda: signed(OPERATOR, 1, site="elsewhere"),
        "expired": lambda: signed(OPERATOR, 1, issued=now - 7200, expires_in=3600),
        "future": lambda: signed(OPERATOR, 1, issued=now + 3600),
        "base": lambda: signed(OPERATOR, 5, base=3),
        "two-points": lambda: signed(
            OPERATOR, 1, {"zones": [{"id": "door", "polygon": [[0, 0], [1, 1]]}]}, check=False
        ),
        "unknown-key-in-zone": lambda: signed(
            OPERATOR, 1, {"zones": [dict(ZONE, colour="red")]}, check=False
        ),
        "unknown": lambda: signed(OPERATOR, 1, {"tracker.min_hits": 1}, check=False),
        "zone-class-not-detected": lambda: signed(
            OPERATOR, 1, {"zones": [dict(ZONE, classes=["car"])]}, check=False
        ),
        "other-payload-type": lambda: OPERATOR.envelope(
            "application/vnd.edge-agent.event+json; version=1",
            ch.change_body(ch.Change("lab", "cam-1", 1, 0, now, now + 60, {"zones": [MOVED]})),
        ),
        "bad-level": lambda: signed(OPERATOR, 1, {"log.level": "loud"}, check=False),
    }[case]()
    got = result(rc.handle(env, False, 0.0))
    assert got[0] == reason, got
    assert (
        not live.switched and rc.state.current().version == 0
    )  # nothing applied, nothing recorded


def test_time_unverified_when_the_clock_is_not_synchronised(tmp_path: Path) -> None:
    rc = control(tmp_path, synced=False)
    assert result(rc.handle(signed(OPERATOR, 1), False, 0.0))[0] == "time-unverified"
    assert rc.state.current().version == 0


@pytest.mark.parametrize(
    "key",
    [
        "privacy",
        "privacy.masks",
        "privacy.grid",
        "privacy.min_count_k",
        "privacy.time_precision_s",
        "detector.classes",
        "detector",
        "egress",
        "egress_guard",
        "images",
        "privacy.images",
        "raw_video_egress",
        "images_on_disk",
        "device",
        "device.key",
        "device.id",
        "enrolment",
        "keys",
        "mqtt",
        "mqtt.host",
        "outbox.ingest_keys",
        "outbox",
        "provision",
        "remote",
        "remote.operator_keys",
    ],
)
def test_each_denied_key_is_refused_whatever_the_signature(tmp_path: Path, key: str) -> None:
    live = FakeLive()
    rc = control(tmp_path, live=live)
    value: Any = {"masks": []} if "." not in key else 0
    env = signed(OPERATOR, 1, {key: value, "zones": [MOVED]}, check=False)
    assert result(rc.handle(env, False, 0.0))[:2] == ("denied-setting", key)
    assert not live.switched and rc.state.current().version == 0
    with pytest.raises(ch.ChangeRefused, match="denied-setting"):
        ch.sign(
            OPERATOR, ch.Change("lab", "cam-1", 1, 0, 0, 60, {key: value})
        )  # the tool refuses it too


def test_nested_table_holding_a_denied_key_is_refused() -> None:
    assert ch.flatten({"privacy": {"grid": 8}, "health": {"heartbeat_s": 5}}) == {
        "privacy": {"grid": 8},
        "health.heartbeat_s": 5,
    }
    with pytest.raises(ch.ChangeRefused, match="denied-setting"):
        ch.check_settings({"privacy": {"grid": 8}})


def test_settings_accumulate_and_commands_run(tmp_path: Path) -> None:
    live = FakeLive()
    rc = control(tmp_path, live=live)
    assert result(rc.handle(signed(OPERATOR, 1), False, 0.0))[0] == "applied"
    out = rc.handle(
        signed(
            OPERATOR,
            2,
            {"health.heartbeat_s": 5.0, "log.level": "debug"},
            commands=("heartbeat", "announce"),
        ),
        False,
        1.0,
    )
    assert result(out)[0] == "applied" and [o.type for o in out] == ["config", "heartbeat"]
    cfg = live.switched[-1]
    assert cfg.health.heartbeat_s == 5.0 and cfg.zones[0].polygon[0] == (
        0.5,
        0.0,
    )  # v1's zone stays
    assert live.levels == ["debug"] and live.announced == 1
    assert not rc.restart_requested
    assert result(rc.handle(signed(OPERATOR, 3, commands=("restart",)), False, 2.0))[0] == "applied"
    assert rc.restart_requested


def test_overlay_uses_the_config_files_validation(tmp_path: Path) -> None:
    cfg = base_config(tmp_path)
    with pytest.raises(ch.ChangeRefused, match="at least 3 points"):
        overlay(cfg, {"zones": [{"id": "z", "polygon": [[0, 0], [1, 1]]}]})
    with pytest.raises(ch.ChangeRefused, match="used twice"):
        overlay(cfg, {"zones": [ZONE], "lines": [{"id": "door", "points": [[0, 0], [1, 1]]}]})


def _flip_in_payload(envelope: bytes) -> bytes:
    i = envelope.index(b'"payload":"') + 20
    c = envelope[i : i + 1]
    return envelope[:i] + (b"B" if c != b"B" else b"C") + envelope[i + 1 :]


ORIGINAL = signed(OPERATOR, 1, issued=int(time.time()), expires_in=10 * 365 * 86400)


@st.composite
def mutations(draw: st.DrawFn) -> bytes:
    data = bytearray(ORIGINAL)
    kind = draw(st.sampled_from(["flip", "insert", "delete", "splice", "resign-other", "truncate"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
    elif kind == "insert":
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(min_size=1, max_size=8))
    elif kind == "delete":
        i = draw(st.integers(0, len(data) - 1))
        del data[i : i + draw(st.integers(1, 8))]
    elif kind == "splice":  # a validly signed envelope of another change with this one's signature
        other = signed(OPERATOR, draw(st.integers(1, 9)), {"zones": [ZONE]})
        sig = ORIGINAL[ORIGINAL.index(b'"signatures"') :]
        data = bytearray(other[: other.index(b'"signatures"')] + sig)
    elif kind == "resign-other":
        return signed(INTRUDER, 1)
    else:
        data = data[: draw(st.integers(0, len(data) - 1))]
    return bytes(data)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutated=mutations())
def test_property_only_a_change_signed_as_is_is_ever_applied(mutated: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        live = FakeLive()
        rc = control(Path(d), live=live)
        out = rc.handle(mutated, False, 0.0)
        reason = out[0].reason if out else None
        if reason == "applied":
            # the only way in: the body signed by the operator, byte for byte
            from agent.protocol.dsse import verify_envelope

            body = verify_envelope(mutated, rc.keys, ch.CHANGE_PAYLOAD_TYPE).body
            assert body == verify_envelope(ORIGINAL, rc.keys, ch.CHANGE_PAYLOAD_TYPE).body
        else:
            assert not live.switched and rc.state.current().version == 0
        rc.state.close()


class FailingState(RemoteState):
    """A remote state whose disk is full: commit fails; with `reads`, reading fails too."""

    def __init__(self, path: Path, reads: bool = False) -> None:
        super().__init__(path)
        self.reads = reads

    def current(self) -> Current:
        if self.reads:
            raise StateError(f"cannot read {str(self.path)!r}: database or disk is full")
        return super().current()

    def commit(self, *args: Any, **kwargs: Any) -> None:
        raise StateError(f"cannot record remote configuration in {str(self.path)!r}: "
                         "database or disk is full")


@pytest.mark.parametrize("reads", [False, True], ids=["commit-fails", "reads-fail-too"])
def test_a_state_that_cannot_be_written_refuses_and_applies_nothing(tmp_path: Path, reads: bool) -> None:
    live = FakeLive()
    state = FailingState(tmp_path / "remote.db")
    rc = RemoteControl(base_config(tmp_path), {OPERATOR.keyid: OPERATOR.public_key}, state,
                       lambda: True, live=live)
    state.reads = reads
    running = live.cfg
    change = signed(OPERATOR, 1, {"zones": [MOVED], "log.level": "debug"}, commands=("announce", "restart"))
    rc.offer(change)
    out = rc.tick(0.0)  # the frame loop's call: it must not raise
    assert result(out) == ("state-unavailable", "", {"version": 1, "config_version": 0})
    assert len(out) == 1 and out[0].values.keys() <= {"version", "config_version"}
    assert live.switched == [] and live.cfg is running and live.levels == [] and live.announced == 0
    assert not rc.restart_requested and rc.results == {"state-unavailable": 1}
    # the retained copy at the next start, with room again, is applied
    rc2 = control(tmp_path, live=live)
    assert result(rc2.handle(change, True, 1.0))[0] == "applied" and len(live.switched) == 1
