"""`edge-agent bench events` ends with its JSON line; the byte-building modules import no frame code."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import cli


def test_bench_events_prints_rates_and_one_json_line() -> None:
    r = cli("bench", "events", "--events", "300", "--repeat", "1")
    assert r.returncode == 0, r.stderr
    figures = json.loads(r.stdout.strip().splitlines()[-1])
    assert figures["bench"] == "events" and figures["threads"] == 1 and figures["events"] == 300
    for key in ("sign_encode_per_s", "verify_per_s", "bare_sign_per_s", "bare_verify_per_s", "sign_ratio",
                "verify_ratio", "sign_encode_guard_per_s"):
        assert figures[key] > 0, key


def test_modules_that_build_or_send_bytes_import_no_frame_code() -> None:
    code = (
        "import sys\n"
        "import agent.privacy.anonymizer, agent.privacy.manifest, agent.protocol.body, agent.protocol.dsse\n"
        "import agent.central.verify, agent.privacy.egress\n"
        "import agent.delivery.emitter, agent.protocol.enrolment, agent.protocol.schema\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('numpy', 'cv2', 'ai_edge_litert', 'tflite_runtime')\n"
        "       or m.startswith(('agent.capture', 'agent.detect'))]\n"
        "print(','.join(sorted(bad)))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""
