"""Issue 13 item 1: a device signs only as the identity its key was enrolled under."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

from tests.helpers import cli, replay

from agent.central.verify import Verifier
from agent.protocol.enrolment import load_registry

ZONES_ONLY = """\
[[zones]]
id = "table"
polygon = [[0.30, 0.05], [0.85, 0.05], [0.85, 1.0], [0.30, 1.0]]
"""


def one_clear_line(r: object) -> str:
    assert r.returncode == 2, (r.stdout, r.stderr)  # type: ignore[attr-defined]
    err: str = r.stderr  # type: ignore[attr-defined]
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def enrolled_state(tmp_path: Path, model_dir: Path) -> Path:
    st = tmp_path / "st"
    k = cli("keygen", "--out", str(st), "--device-id", "cam-017", "--site", "depot-3")
    assert k.returncode == 0, k.stderr
    shutil.copytree(model_dir, st / "models")
    return st


def test_replay_without_device_section_signs_as_the_keys_device(
    tmp_path: Path, model_dir: Path, clip: Path
) -> None:
    st = enrolled_state(tmp_path, model_dir)
    cfg = tmp_path / "zones.toml"
    cfg.write_text(ZONES_ONLY + "[health]\nheartbeat_s = 0.05\n")  # a few signed events in 5 frames
    out = tmp_path / "events.jsonl"
    r = replay(clip, cfg, st, "--events-out", str(out), "--max-frames", "5")
    assert r.returncode == 0, r.stderr
    verifier = Verifier(load_registry(st / "device.pub.json"))
    lines = out.read_bytes().splitlines()
    assert lines, "the replay wrote no envelope"
    for line in lines:
        body, _ = verifier.check(line)  # raises on key-binding
        assert (body["device"], body["site"]) == ("cam-017", "depot-3")


def test_a_config_naming_another_device_is_refused_at_start(
    tmp_path: Path, model_dir: Path, clip: Path
) -> None:
    st = enrolled_state(tmp_path, model_dir)
    cfg = tmp_path / "other.toml"
    cfg.write_text('[device]\nid = "edge-demo"\n' + ZONES_ONLY)
    line = one_clear_line(cli("replay", str(clip), "--config", str(cfg), "--state", str(st)))
    assert "'edge-demo'" in line and "'cam-017'" in line and "device.id" in line
    assert not (st / "outbox.db").exists()
    line = one_clear_line(
        cli("privacy-report", "--signed", "--config", str(cfg), "--state", str(st))
    )
    assert "'cam-017'" in line
    site = tmp_path / "site.toml"
    site.write_text('[device]\nsite = "elsewhere"\n')
    assert "device.site" in one_clear_line(cli("run", "--config", str(site), "--state", str(st)))


def test_privacy_report_signed_names_the_keys_device(tmp_path: Path, model_dir: Path) -> None:
    st = enrolled_state(tmp_path, model_dir)
    r = cli("privacy-report", "--signed", "--state", str(st))
    assert r.returncode == 0, r.stderr
    env = json.loads(r.stdout)
    body = json.loads(base64.b64decode(env["payload"]))
    assert (body["device"], body["site"]) == ("cam-017", "depot-3")
    same = cli("privacy-report", "--json", "--state", str(st))
    assert json.loads(same.stdout) == body  # the hash events cite is the signed one


def test_a_record_beside_the_key_for_another_key_is_refused(
    tmp_path: Path, model_dir: Path
) -> None:
    st = enrolled_state(tmp_path, model_dir)
    other = tmp_path / "other"
    assert cli("keygen", "--out", str(other), "--device-id", "cam-2", "--site", "x").returncode == 0
    shutil.copy(other / "device.pub.json", st / "device.pub.json")
    assert "another key" in one_clear_line(cli("privacy-report", "--signed", "--state", str(st)))


def test_keygen_needs_the_device_id_and_site(tmp_path: Path) -> None:
    for args in (["--site", "s"], ["--device-id", "d"]):
        r = cli("keygen", "--out", str(tmp_path / "k"), *args)
        assert r.returncode == 2 and "required" in r.stderr and r.stderr.count("\n") == 1
        assert not (tmp_path / "k" / "device.key").exists()
