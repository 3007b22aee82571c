"""A running device has one config: geometry the setup view saved and a signed remote change of
another setting both stay, and the signed manifest and the detector agree on the masks in force."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.assembly import assemble
from agent import config
from agent.device.config_watch import ConfigWatch
from agent.privacy.manifest import masks_hash
from agent.protocol.dsse import SigningKey, open_envelope
from agent.setupview import shapes
from tests.remote.rkit import MOVED, ZONE, key_record_file, signed

OPERATOR = SigningKey.from_seed(b"s" * 32)
OLD_MASK = [[0.0, 0.0], [0.2, 0.0], [0.2, 0.2], [0.0, 0.2]]
NEW_MASK = [[0.6, 0.6], [0.9, 0.6], [0.9, 0.9], [0.6, 0.9]]
SAVED = {"zones": [{"id": "table", "polygon": [[0.3, 0.05], [0.85, 0.05], [0.85, 1.0], [0.3, 1.0]]}],
         "lines": [{"id": "exit", "points": [[0.75, 0.0], [0.75, 1.0]]}],
         "masks": [NEW_MASK]}


def manifest(asm: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(open_envelope(asm.manifest_envelope)[1])
    return doc


def detector_masks(asm: Any) -> list[list[list[float]]]:
    pre = asm.pipeline.detector.inner.pre
    return [[list(p) for p in poly] for poly in pre.masks]


def test_remote_change_after_a_setup_view_save_keeps_the_saved_geometry(tmp_path: Path, model_dir: Path,
                                                                          clip: Path) -> None:
    cfg_file = tmp_path / "agent.toml"
    cfg_file.write_text(
        f'[device]\nid = "cam-1"\nsite = "lab"\nstate_dir = "{tmp_path / "state"}"\n'
        f'[detector]\nmodel_dir = "{model_dir}"\n'
        f'[source]\nkind = "replay"\npath = "{clip}"\n'
        f'[privacy]\nmasks = [{json.dumps(OLD_MASK)}]\n'
        f'[[zones]]\nid = "door"\npolygon = {json.dumps(ZONE["polygon"])}\n'
        f'[health]\nheartbeat_s = 60.0\n'
        f'[remote]\noperator_keys = "{key_record_file(OPERATOR, tmp_path / "operator.pub.json")}"\n'
        f'clock = "trusted"\n')
    asm = assemble(config.load(cfg_file), lambda s: None, tmp_path / "events.jsonl", throwaway_key=True,
                   heartbeat=True)
    assert asm.live is not None and asm.coverage is not None and asm.remote is not None
    assert detector_masks(asm) == [OLD_MASK]
    watch = ConfigWatch(cfg_file, asm.live, asm.coverage, every_s=0.0)

    shapes.save(cfg_file, shapes.from_json(SAVED))  # the installer saves in the setup view
    assert watch.reload(1.0)
    assert [z.id for z in asm.live.cfg.zones] == ["table"] and detector_masks(asm) == [NEW_MASK]

    # then an operator changes an unrelated setting by a signed change
    [res] = asm.remote.handle(signed(OPERATOR, 1, {"health.heartbeat_s": 5.0}), False, 2.0)
    assert res.reason == "applied"

    running = asm.live.cfg
    assert running.health.heartbeat_s == 5.0
    assert [z.id for z in running.zones] == ["table"] and [ln.id for ln in running.lines] == ["exit"]
    assert [[list(p) for p in m] for m in running.privacy.masks] == [NEW_MASK]
    doc = manifest(asm)  # the manifest in force after both names the saved zones and masks
    assert [r["id"] for r in doc["rules"]] == ["exit", "table"]
    assert doc["masks"]["count"] == 1 and doc["masks"]["sha256"] == masks_hash(running.privacy.masks)
    assert detector_masks(asm) == [NEW_MASK]  # the detector masks what the manifest says

    # and a save after the remote change keeps the remote setting
    shapes.save(cfg_file, shapes.from_json({**SAVED, "masks": []}))
    assert watch.reload(3.0)
    assert asm.live.cfg.health.heartbeat_s == 5.0 and asm.live.cfg.privacy.masks == ()
    assert manifest(asm)["masks"]["count"] == 0 and detector_masks(asm) == []
    asm.outbox.close()
    assert asm.events_out is not None
    asm.events_out.close()


def write_config(tmp_path: Path, model_dir: Path, clip: Path, heartbeat_s: float = 60.0) -> Path:
    cfg_file = tmp_path / "agent.toml"
    cfg_file.write_text(
        f'[device]\nid = "cam-1"\nsite = "lab"\nstate_dir = "{tmp_path / "state"}"\n'
        f'[detector]\nmodel_dir = "{model_dir}"\n'
        f'[source]\nkind = "replay"\npath = "{clip}"\n'
        f'[[zones]]\nid = "door"\npolygon = {json.dumps(ZONE["polygon"])}\n'
        f'[health]\nheartbeat_s = {heartbeat_s}\n'
        f'[remote]\noperator_keys = "{key_record_file(OPERATOR, tmp_path / "operator.pub.json")}"\n'
        f'clock = "trusted"\n')
    return cfg_file


def start(cfg_file: Path, tmp_path: Path) -> Any:
    asm = assemble(config.load(cfg_file), lambda s: None, tmp_path / "events.jsonl", throwaway_key=True,
                   heartbeat=True)
    assert asm.live is not None and asm.coverage is not None and asm.remote is not None
    return asm


def stop(asm: Any) -> None:
    asm.outbox.close()
    asm.events_out.close()


def zone_polygons(cfg: Any) -> dict[str, list[list[float]]]:
    return {z.id: [list(p) for p in z.polygon] for z in cfg.zones}


def test_a_save_taken_up_while_running_outlasts_older_remote_zones(tmp_path: Path, model_dir: Path,
                                                                     clip: Path) -> None:
    """Remote zones, then the installer's save, then a remote change of another setting: after a
    restart the saved zones run (the latest wins) with the remote setting."""
    cfg_file = write_config(tmp_path, model_dir, clip)
    asm = start(cfg_file, tmp_path)
    watch = ConfigWatch(cfg_file, asm.live, asm.coverage, every_s=0.0, remote=asm.remote)
    [res] = asm.remote.handle(signed(OPERATOR, 1, {"zones": [MOVED]}), False, 1.0)
    assert res.reason == "applied" and zone_polygons(asm.live.cfg) == {"door": MOVED["polygon"]}
    shapes.save(cfg_file, shapes.from_json({"zones": SAVED["zones"], "lines": SAVED["lines"], "masks": []}))
    assert watch.reload(2.0)
    assert "zones" not in asm.remote.state.current().settings  # set aside at once
    [res] = asm.remote.handle(signed(OPERATOR, 2, {"health.heartbeat_s": 5.0}), False, 3.0)
    assert res.reason == "applied"
    stop(asm)

    again = start(cfg_file, tmp_path)
    running = again.live.cfg
    assert list(zone_polygons(running)) == ["table"] and [ln.id for ln in running.lines] == ["exit"]
    assert running.health.heartbeat_s == 5.0 and again.remote.state.current().version == 2
    stop(again)


def test_a_save_made_while_stopped_wins_at_the_next_start(tmp_path: Path, model_dir: Path, clip: Path,
                                                           caplog: Any) -> None:
    cfg_file = write_config(tmp_path, model_dir, clip)
    asm = start(cfg_file, tmp_path)
    [res] = asm.remote.handle(signed(OPERATOR, 1, {"zones": [MOVED], "health.heartbeat_s": 5.0}), False, 1.0)
    assert res.reason == "applied"
    stop(asm)

    shapes.save(cfg_file, shapes.from_json({"zones": SAVED["zones"], "lines": [], "masks": []}))  # agent stopped
    with caplog.at_level("WARNING"):
        again = start(cfg_file, tmp_path)
    assert list(zone_polygons(again.live.cfg)) == ["table"]  # the file's save is newer
    assert again.live.cfg.health.heartbeat_s == 5.0  # the remote setting it did not touch stays
    assert any("set aside" in r.getMessage() and "version 1" in r.getMessage() for r in caplog.records)
    assert again.remote.state.current().settings["zones"] == [MOVED]  # decided at start, written nowhere
    [res] = again.remote.handle(signed(OPERATOR, 1, {"zones": [MOVED]}), False, 2.0)
    assert res.reason in ("replayed", "stale-version")  # older changes stay refused
    [res] = again.remote.handle(signed(OPERATOR, 2, {"health.heartbeat_s": 7.0}), False, 3.0)
    assert res.reason == "applied"
    current = again.remote.state.current()
    assert "zones" not in current.settings and current.settings["health.heartbeat_s"] == 7.0  # recorded now
    assert list(zone_polygons(again.live.cfg)) == ["table"]
    stop(again)

    third = start(cfg_file, tmp_path)
    assert list(zone_polygons(third.live.cfg)) == ["table"] and third.live.cfg.health.heartbeat_s == 7.0
    stop(third)


def remote_zones_recorded(tmp_path: Path, model_dir: Path, clip: Path) -> Path:
    """A config file whose agent took a signed change of its zones (MOVED) and stopped."""
    cfg_file = write_config(tmp_path, model_dir, clip)
    asm = start(cfg_file, tmp_path)
    [res] = asm.remote.handle(signed(OPERATOR, 1, {"zones": [MOVED]}), False, 1.0)
    assert res.reason == "applied"
    stop(asm)
    return cfg_file


def test_starting_on_another_config_changes_nothing_stored(tmp_path: Path, model_dir: Path, clip: Path) -> None:
    """A replay of a trial config on the device's state folder must not change what the device runs."""
    cfg_file = remote_zones_recorded(tmp_path, model_dir, clip)

    trial = tmp_path / "trial.toml"
    elsewhere = SAVED["zones"][0]["polygon"]
    trial.write_text(cfg_file.read_text().replace(json.dumps(ZONE["polygon"]), json.dumps(elsewhere)))
    other = start(trial, tmp_path)
    assert zone_polygons(other.live.cfg) == {"door": elsewhere}  # the trial file's zones
    stop(other)

    again = start(cfg_file, tmp_path)
    assert zone_polygons(again.live.cfg) == {"door": MOVED["polygon"]}  # the device's remote zones, as before
    stop(again)


def test_remote_zones_stay_when_the_file_changed_elsewhere(tmp_path: Path, model_dir: Path, clip: Path) -> None:
    cfg_file = remote_zones_recorded(tmp_path, model_dir, clip)

    write_config(tmp_path, model_dir, clip, heartbeat_s=30.0)  # a hand edit of another key, agent stopped
    again = start(cfg_file, tmp_path)
    assert zone_polygons(again.live.cfg) == {"door": MOVED["polygon"]}  # the remote zones are still the latest
    assert again.live.cfg.health.heartbeat_s == 30.0
    stop(again)


def test_a_state_file_from_before_the_fingerprint_keeps_its_remote_zones(tmp_path: Path, model_dir: Path,
                                                                          clip: Path) -> None:
    import sqlite3

    cfg_file = write_config(tmp_path, model_dir, clip)
    (tmp_path / "state").mkdir(mode=0o700)
    db = sqlite3.connect(tmp_path / "state" / "remote.db")
    db.executescript(
        "CREATE TABLE current (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, "
        "digest TEXT NOT NULL, settings TEXT NOT NULL);"
        "CREATE TABLE applied (digest TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_ms INTEGER NOT NULL, "
        "envelope BLOB NOT NULL);")
    db.execute("INSERT INTO current VALUES (1, 3, 'd', ?)", (json.dumps({"zones": [MOVED]}),))
    db.commit()
    db.close()
    (tmp_path / "state" / "remote.db").chmod(0o600)

    asm = start(cfg_file, tmp_path)
    assert zone_polygons(asm.live.cfg) == {"door": MOVED["polygon"]}  # as before: nothing says which is newer
    current = asm.remote.state.current()
    assert current.version == 3 and current.file_geometry == ""  # recorded by the next change
    stop(asm)


def test_a_save_of_masks_alone_leaves_remote_zones_in_force(tmp_path: Path, model_dir: Path, clip: Path) -> None:
    cfg_file = write_config(tmp_path, model_dir, clip)
    asm = start(cfg_file, tmp_path)
    watch = ConfigWatch(cfg_file, asm.live, asm.coverage, every_s=0.0, remote=asm.remote)
    [res] = asm.remote.handle(signed(OPERATOR, 1, {"zones": [MOVED]}), False, 1.0)
    assert res.reason == "applied"
    shapes.save(cfg_file, shapes.from_json({"zones": [ZONE], "lines": [], "masks": [NEW_MASK]}))  # zones as they were
    assert watch.reload(2.0)
    assert detector_masks(asm) == [NEW_MASK]
    assert zone_polygons(asm.live.cfg) == {"door": MOVED["polygon"]}  # the remote zones stay in force
    assert asm.remote.state.current().settings["zones"] == [MOVED]
    stop(asm)

    again = start(cfg_file, tmp_path)
    assert zone_polygons(again.live.cfg) == {"door": MOVED["polygon"]}
    assert [[list(p) for p in m] for m in again.live.cfg.privacy.masks] == [NEW_MASK]
    stop(again)


def test_a_save_made_while_the_agent_was_being_built_is_taken_up(tmp_path: Path, model_dir: Path,
                                                                  clip: Path) -> None:
    cfg_file = write_config(tmp_path, model_dir, clip)
    loaded = config.load(cfg_file)
    asm = assemble(loaded, lambda s: None, tmp_path / "events.jsonl", throwaway_key=True, heartbeat=True)
    shapes.save(cfg_file, shapes.from_json({"zones": SAVED["zones"], "lines": [], "masks": []}))
    watch = ConfigWatch(cfg_file, asm.live, asm.coverage, every_s=0.0, remote=asm.remote, loaded=loaded)
    watch.frame(1.0, None)  # the first check reads the file again
    assert list(zone_polygons(asm.live.cfg)) == ["table"] and watch.applied == 1
    watch.frame(2.0, None)
    assert watch.applied == 1  # once
    stop(asm)
