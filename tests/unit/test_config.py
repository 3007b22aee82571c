"""Config: every section optional, unknown keys rejected, the issue's zone valid as written."""

from __future__ import annotations

import pytest

from agent import config
from agent.errors import ConfigError

ZONE = """
[[zones]]
id = "table"
polygon = [[0.30, 0.05], [0.85, 0.05], [0.85, 1.0], [0.30, 1.0]]
classes = ["person"]
loiter_after_s = 8
"""


def test_zone_only_config_is_valid(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "zones.toml"
    p.write_text(ZONE)
    cfg = config.load(p)
    (zone,) = cfg.zones
    assert zone.id == "table"
    assert zone.loiter_after_s == 8.0
    assert zone.polygon[0] == (0.30, 0.05)
    assert cfg.mqtt is None  # no [mqtt]: events stay in the outbox


def test_empty_config_gives_defaults() -> None:
    cfg = config.parse({})
    assert cfg.detector.model == "yolox_nano_ti_lite_416_int8"
    assert cfg.detector.classes == ("person",)


def test_unknown_key_suggests_closest() -> None:
    with pytest.raises(ConfigError, match="did you mean 'score_threshold'"):
        config.parse({"detector": {"score_treshold": 0.3}})


def test_unknown_section() -> None:
    with pytest.raises(ConfigError, match="unknown config key 'mqt'"):
        config.parse({"mqt": {}})


def test_bool_is_not_an_int() -> None:
    with pytest.raises(ConfigError, match="whole number"):
        config.parse({"detector": {"threads": True}})


def test_duplicate_ids_rejected() -> None:
    z = {"id": "a", "polygon": [[0, 0], [1, 0], [1, 1]]}
    with pytest.raises(ConfigError, match="used twice"):
        config.parse({"zones": [z, z]})


def test_interpreter_threads_default_leaves_one_core_for_capture_and_post_processing() -> None:
    import os

    cores = len(os.sched_getaffinity(0))
    assert config.parse({}).detector.threads == 0
    assert config.parse({}).detector.interpreter_threads == max(1, cores - 1)
    assert config.parse({"detector": {"threads": 3}}).detector.interpreter_threads == 3
    with pytest.raises(ConfigError, match="detector.threads"):
        config.parse({"detector": {"threads": -1}})
