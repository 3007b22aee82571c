"""The privacy manifest: complete (every schema field has a precision), deterministic, readable."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from agent.privacy import manifest as pm
from agent.config import parse
from agent.protocol.schema import schema
from helpers import cli

PROPS = schema()["properties"]


def test_every_field_that_can_leave_has_a_precision() -> None:
    assert set(pm.FIELD_PRECISION) == set(PROPS)
    assert set(pm.VALUE_PRECISION) == set(PROPS["values"]["properties"])


def test_manifest_lists_what_leaves_and_is_deterministic() -> None:
    cfg = parse({
        "device": {"id": "cam-1", "site": "lab"},
        "zones": [{"id": "desk", "polygon": [[0, 0], [1, 0], [1, 1]]}],
        "lines": [{"id": "door", "points": [[0, 0.5], [1, 0.5]]}],
        "mqtt": {"topic_prefix": "acme/v1"},
    })
    doc = pm.build(cfg, "ef" * 32)
    assert pm.manifest_body(doc) == pm.manifest_body(pm.build(cfg, "ef" * 32))
    assert doc["raw_video_egress"] is False
    assert "cell" not in doc["fields"] and doc["positions"] == "none"
    assert set(doc["fields"]) == set(PROPS) - {"cell"}
    assert doc["model"] == {"id": "yolox_nano_ti_lite_416_int8", "sha256": "ef" * 32}  # the default
    assert [r["id"] for r in doc["rules"]] == ["desk", "door"]
    assert doc["topics"][0] == "acme/v1/lab/cam-1/event/+" and doc["publishes"] is True
    assert doc["ack"] == "broker" and "outbox" in doc["retention"]
    assert doc["event_schema"]["sha256"] == hashlib.sha256(pm.manifest_body(schema())).hexdigest()
    body = pm.manifest_body(doc)
    assert body == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("ascii")


def test_grid_masks_and_k_change_the_manifest() -> None:
    base = parse({})
    h = pm.manifest_hash(pm.manifest_body(pm.build(base, "00" * 32)))
    gridded = pm.build(parse({"privacy": {"grid": 8}}), "00" * 32)
    assert "cell" in gridded["fields"] and "8 x 8" in gridded["fields"]["cell"] and gridded["positions"] == {"grid": 8}
    masked = pm.build(parse({"privacy": {"masks": [[[0.1, 0.1], [0.2, 0.1], [0.2, 0.2]]]}}), "00" * 32)
    assert masked["masks"]["count"] == 1
    assert masked["masks"]["sha256"] != pm.build(base, "00" * 32)["masks"]["sha256"]
    for other in (gridded, masked, pm.build(parse({"privacy": {"min_count_k": 3}}), "00" * 32)):
        assert pm.manifest_hash(pm.manifest_body(other)) != h


def test_privacy_report_for_people_and_as_json(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(f'[device]\nid = "cam-1"\nsite = "lab"\nstate_dir = "{tmp_path / "state"}"\n'
                   '[privacy]\ngrid = 4\nmin_count_k = 3\n')
    text = cli("privacy-report", "--config", str(cfg))
    as_json = cli("privacy-report", "--config", str(cfg), "--json")
    assert text.returncode == 0 and as_json.returncode == 0, text.stderr + as_json.stderr
    body = as_json.stdout.rstrip("\n").encode()
    sha = hashlib.sha256(body).hexdigest()
    assert f"in every event's 'manifest' field): {sha}" in text.stdout
    assert "raw video leaves the device: no" in text.stdout
    assert "positions: coarse grid cells, 4 per side" in text.stdout
    assert "counts below k suppressed: k = 3" in text.stdout
    assert "  cell: coarse grid cell" in text.stdout
    # the model is not installed here: its pinned SHA-256 stands in, which is what a device checks
    assert json.loads(body)["model"]["sha256"] in text.stdout
    signed = cli("privacy-report", "--config", str(cfg), "--signed")
    assert signed.returncode == 2 and signed.stderr.count("\n") == 1 and "no device key" in signed.stderr
    # a key that `replay` made up is no device's identity: it never signs a manifest either
    from agent import config
    from agent.assembly import load_or_create_key

    load_or_create_key(config.load(str(cfg)), lambda _: None, throwaway=True)
    signed = cli("privacy-report", "--config", str(cfg), "--signed")
    assert signed.returncode == 2 and signed.stderr.count("\n") == 1 and "throwaway" in signed.stderr


def test_the_field_table_in_the_docs_lists_every_schema_field() -> None:
    import re

    doc = (Path(__file__).resolve().parents[2] / "docs" / "event-schema.md").read_text()
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", doc, re.MULTILINE))
    assert rows == set(PROPS) | set(PROPS["values"]["properties"])
