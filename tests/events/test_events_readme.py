"""The README's "verify with standard tools alone" snippets work on real envelopes, and fail on tampered ones."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.privacy import manifest as pm
from agent.config import parse
from agent.protocol.dsse import MANIFEST_PAYLOAD_TYPE
from tests.events.eventkit import Device
from tests.helpers import ROOT

README = (ROOT / "README.md").read_text()


def snippet(marker: str, lang: str) -> str:
    m = re.search(rf"<!-- {marker} -->\n```{lang}\n(.*?)```", README, re.DOTALL)
    assert m, f"README has no {marker} snippet"
    return m.group(1)


def files(device: Device, tmp_path: Path, tamper: bool = False) -> None:
    manifest = pm.manifest_body(pm.build(parse({"device": {"id": "cam-1", "site": "lab"}}), "ef" * 32))
    lines = [device.envelope(1), device.envelope(2), device.key.envelope(MANIFEST_PAYLOAD_TYPE, manifest)]
    if tamper:
        d = json.loads(lines[0])
        d["payload"] = base64.b64encode(base64.b64decode(d["payload"]).replace(b'"count":3', b'"count":4')).decode()
        lines[0] = json.dumps(d).encode()
    (tmp_path / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "device.pub.json").write_text(json.dumps(device.record.to_json()))


@pytest.mark.parametrize("tamper", [False, True])
def test_python_snippet(device: Device, tmp_path: Path, tamper: bool) -> None:
    files(device, tmp_path, tamper)
    (tmp_path / "verify_dsse.py").write_text(snippet("verify-python", "python"))
    r = subprocess.run([sys.executable, "verify_dsse.py", "events.jsonl", "device.pub.json"], cwd=tmp_path,
                       capture_output=True, text=True)
    if tamper:
        assert r.returncode != 0 and "InvalidSignature" in r.stderr
    else:
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == ["1 OK occupancy 1", "2 OK occupancy 2", "3 OK manifest "]


@pytest.mark.parametrize("tamper", [False, True])
def test_openssl_snippet(device: Device, tmp_path: Path, tamper: bool) -> None:
    # jq and openssl are in hw/apt-test.txt: a missing tool fails here rather than skipping quietly
    missing = [tool for tool in ("openssl", "jq") if not shutil.which(tool)]
    assert not missing, f"the README's openssl snippet needs {missing}: apt-get install $(cat hw/apt-test.txt)"
    files(device, tmp_path, tamper)
    r = subprocess.run(["bash", "-c", snippet("verify-openssl", "sh")], cwd=tmp_path, capture_output=True, text=True)
    if tamper:
        assert r.returncode != 0 and "Signature Verified Successfully" not in r.stdout
    else:
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Signature Verified Successfully" in r.stdout
        assert device.key.keyid in r.stdout
