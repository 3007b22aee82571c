"""Health in the heartbeat (integers, in the schema) and the retained birth with the Last Will."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.delivery.dhelpers import Subscriber
from tests.helpers import ROOT, device_publishing, wait_until

from agent import __version__
from agent.device import sysinfo
from agent.device.health import InferenceTimer, host_values, version_number
from agent.protocol.birth import birth_body, check
from agent.types import Observation


def test_version_number() -> None:
    assert version_number("0.1.0") == 100 and version_number("1.12.3rc1") == 11203 and version_number("2") == 20000


def test_inference_timer_percentiles_and_passthrough() -> None:
    class Slow:
        model_id = "m"

        def __init__(self) -> None:
            self.calls = 0

        def detect(self, frame: object) -> list[object]:
            self.calls += 1
            return []

    inner = Slow()
    timer = InferenceTimer(inner)
    assert timer.percentiles() is None
    for _ in range(20):
        timer.detect(None)
    p50, p95 = timer.percentiles()  # type: ignore[misc]
    assert 0 <= p50 <= p95 and inner.calls == 20 and timer.model_id == "m"
    assert timer.percentiles() is None  # a window per heartbeat


def test_host_health_in_a_heartbeat_passes_schema_and_guard(tmp_path: Path) -> None:
    root = tmp_path / "sysfs"
    for rel, text in ((sysinfo.THROTTLED_PATH, "0x50005"), (sysinfo.THERMAL_PATH, "61234")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text + "\n")
    readers = sysinfo.Readers(sys=sysinfo.SysRoot(root), clock_synced=lambda: False,
                              disk=lambda p: sysinfo.DiskUsage(2**34, 3 * 2**30))
    values = host_values(readers, tmp_path)
    assert values["cpu_temp_mc"] == 61234 and values["throttled_now"] == 5 and values["throttled_since_boot"] == 5
    assert values["disk_free_mb"] == 3072 and values["clock_synced"] == 0 and values["rss_kb"] > 10_000
    values.update(inference_p50_us=41_000, inference_p95_us=52_000, camera_state=0,
                  agent_version=version_number(__version__))
    pub = device_publishing(tmp_path / "dev")
    try:
        seqs = pub.emitter.emit([Observation("heartbeat", "device", "", 1.0, values)])
        assert len(seqs) == 1 and pub.emitter.egress_refused == 0
        body = json.loads(__import__("base64").b64decode(json.loads(pub.outbox.peek(1)[0].envelope)["payload"]))
        assert body["values"] == values
    finally:
        pub.close(0)


def test_birth_holds_only_its_four_fields() -> None:
    body = birth_body("0.1.0", "ssd_mobilenet_v1_coco_quant", "a" * 64, 3)
    assert check(body)["boot"] == 3
    for bad in (b'{"agent_version":"0.1.0","model":"m","manifest":"' + b"a" * 64 + b'","boot":1,"x":1}',
                b'{"agent_version":"0.1.0","model":"m/../x","manifest":"' + b"a" * 64 + b'","boot":1}',
                b'{"agent_version":"0.1.0","model":"m","manifest":"iVBORw0KGgo","boot":1}'):
        with pytest.raises(ValueError):
            check(bad)


def test_retained_birth_on_connect_and_the_last_will_on_a_kill(tmp_path: Path, mosquitto) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "agent.toml"
    cfg.write_text(f'[device]\nid = "cam-1"\nsite = "lab"\n[mqtt]\nhost = "{mosquitto.host}"\n'
                   f'port = {mosquitto.port}\n')
    base = "edge/v1/lab/cam-1"
    watch = Subscriber(mosquitto.host, mosquitto.port, f"{base}/+", client_id="watch")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.tools.emitter", "--config", str(cfg), "--state", str(tmp_path / "s"),
         "--rate", "5", "--count", "0"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert wait_until(lambda: watch.payloads("/birth") and watch.payloads("/manifest"), 20), \
            proc.stderr.read() if proc.poll() is not None and proc.stderr else "no birth"
        birth = json.loads(watch.payloads("/birth")[0])
        manifest_env = json.loads(watch.payloads("/manifest")[0])
        manifest_sha = hashlib.sha256(__import__("base64").b64decode(manifest_env["payload"])).hexdigest()
        assert birth == {"agent_version": __version__, "model": "synthetic", "manifest": manifest_sha, "boot": 1}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert wait_until(lambda: watch.payloads("/status")[-1:] == [b"offline"]), watch.payloads("/status")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        watch.close()
    # a late subscriber: the retained birth says what ran last, the retained status that it is gone
    late = Subscriber(mosquitto.host, mosquitto.port, f"{base}/+", client_id="late")
    try:
        assert wait_until(lambda: late.payloads("/birth") and late.payloads("/status"))
        assert late.payloads("/status") == [b"offline"] and json.loads(late.payloads("/birth")[0])["boot"] == 1
    finally:
        late.close()
