"""Home Assistant discovery, opt-in, against a real Mosquitto: configs and state, nothing unlisted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.delivery.dhelpers import Subscriber
from tests.helpers import wait_until
from paho.mqtt.client import topic_matches_sub

from agent import config
from agent.assembly import publishing
from agent.config import Config
from agent.errors import ConfigError
from agent.device.homeassistant import check_state
from agent.privacy import manifest as privacy_manifest
from agent.protocol.dsse import SigningKey
from agent.types import Observation

SHA = "0" * 64


def device(tmp_path: Path, port: int, enabled: bool) -> Config:
    return config.parse({
        "device": {"id": "cam-1", "site": "lab", "state_dir": str(tmp_path / "state")},
        "zones": [{"id": "hall", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "count_every_s": 60}],
        "lines": [{"id": "door", "points": [[0, 0.5], [1, 0.5]]}],
        "mqtt": {"host": "127.0.0.1", "port": port},
        "homeassistant": {"enabled": enabled},
    })


def observations() -> list[Observation]:
    coverage = {"observed_s": 45, "blind_covered_s": 15, "blind_camera_lost_s": 0, "blind_low_fps_s": 0,
                "blind_overload_s": 0, "blind_not_running_s": 0}
    return [
        Observation("occupancy", "hall", "person", 1.0, {"count": 3}),
        Observation("count", "hall", "person", 60.0, {"entries": 4, "exits": 2, "interval_s": 60, **coverage}),
        Observation("line_crossing", "door", "person", 61.0, {"count": 1}, "in"),
        Observation("line_crossing", "door", "person", 62.0, {"count": 1}, "in"),
        Observation("heartbeat", "device", "", 63.0, {"fps_milli": 9500, "cpu_temp_mc": 55000, "rss_kb": 99000,
                                                      "outbox_rows": 0, "uptime_s": 63}),
    ]


def run_device(cfg: Config, broker) -> tuple[dict, list[tuple[str, bytes]]]:  # type: ignore[no-untyped-def, type-arg]
    doc = privacy_manifest.build(cfg, SHA, "ssd_mobilenet_v1_coco_quant")
    seen = Subscriber(broker.host, broker.port, "#", client_id="everything")
    pub = publishing(cfg, SigningKey.generate(), doc, "ssd_mobilenet_v1_coco_quant")
    pub.start()
    try:
        pub.emitter.emit(observations())
        assert pub.sender is not None
        assert wait_until(lambda: pub.sender.idle() and any(t.endswith("/birth") for t, _ in seen.messages))  # type: ignore[union-attr]
        if cfg.homeassistant.enabled:
            assert wait_until(lambda: _state(seen.messages).get("rss_kb") == 99000), seen.messages[-3:]
            configs = sum(t.endswith("/config") for t, _ in seen.messages)
            # Home Assistant restarts and sends its birth: every config is announced again
            seen.client.publish("homeassistant/status", b"online", qos=1)
            assert wait_until(lambda: sum(t.endswith("/config") for t, _ in seen.messages) >= 2 * configs)
    finally:
        pub.close(5)
        seen.close()
    return doc, list(seen.messages)


def _state(messages: list[tuple[str, bytes]]) -> dict:  # type: ignore[type-arg]
    states = [json.loads(p) for t, p in messages if t == "edge/v1/lab/cam-1/ha"]
    return states[-1] if states else {}


def test_discovery_configs_and_state_and_nothing_unlisted(tmp_path: Path, mosquitto) -> None:  # type: ignore[no-untyped-def]
    cfg = device(tmp_path, mosquitto.port, enabled=True)
    doc, messages = run_device(cfg, mosquitto)
    ha = doc["homeassistant"]
    assert ha["state_topic"] == "edge/v1/lab/cam-1/ha"
    assert ha["discovery_topics"] == "homeassistant/sensor/cam-1/+/config"
    configs = {t: json.loads(p) for t, p in messages if t.startswith("homeassistant/sensor/")}
    assert "homeassistant/sensor/cam-1/hall_person_occupancy/config" in configs
    occ = configs["homeassistant/sensor/cam-1/hall_person_occupancy/config"]
    assert occ["state_topic"] == ha["state_topic"] and occ["availability_topic"] == "edge/v1/lab/cam-1/status"
    assert occ["value_template"] == "{{ value_json.hall_person_occupancy }}" and "entity_category" not in occ
    temp = configs["homeassistant/sensor/cam-1/cpu_temp_mc/config"]
    assert temp["entity_category"] == "diagnostic" and temp["device_class"] == "temperature"
    assert {t.split("/")[3] for t in configs} == set(ha["state_keys"])
    state = _state(messages)
    assert state["hall_person_occupancy"] == 3 and state["hall_person_entries"] == 4
    assert state["hall_coverage_pct"] == 75 and state["door_person_in"] == 2 and state["fps_milli"] == 9500
    assert set(state) <= set(ha["state_keys"]) and all(isinstance(v, int) for v in state.values())
    # nothing left the device that the manifest does not list (the test itself sent HA's birth)
    for topic, _ in messages:
        if topic == "homeassistant/status":
            continue
        assert any(topic_matches_sub(f, topic) for f in doc["topics"]), f"{topic} is not in the manifest"


def test_off_by_default_and_absent_from_the_manifest(tmp_path: Path, mosquitto) -> None:  # type: ignore[no-untyped-def]
    assert Config().homeassistant.enabled is False
    cfg = device(tmp_path, mosquitto.port, enabled=False)
    doc, messages = run_device(cfg, mosquitto)
    assert "homeassistant" not in doc and not any("homeassistant" in f or f.endswith("/ha") for f in doc["topics"])
    assert not [t for t, _ in messages if t.startswith("homeassistant/") or t.endswith("/ha")]


def test_mistakes_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="discovery_prefix"):
        config.parse({"homeassistant": {"enabled": True, "discovery_prefix": "home/+"}})
    cfg = config.parse({"device": {"state_dir": str(tmp_path)}, "homeassistant": {"enabled": True}})
    with pytest.raises(ConfigError, match=r"needs an \[mqtt\] section"):
        publishing(cfg, SigningKey.generate(), {"v": 1}, "m")
    with pytest.raises(ValueError, match="not declared"):
        check_state(b'{"face_count":1}', frozenset({"hall_person_occupancy"}))
    with pytest.raises(ValueError, match="integer"):
        check_state(b'{"hall_person_occupancy":1.5}', frozenset({"hall_person_occupancy"}))
