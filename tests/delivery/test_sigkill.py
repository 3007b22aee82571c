"""The agent killed with SIGKILL mid-stream and restarted: no seq lost or reused, the outbox recovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from agent.protocol.enrolment import load_registry
from agent.central.verify import Verifier
from tests.delivery.dhelpers import Subscriber
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _emitter(cfg: Path, state: Path, count: int, rate: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent.tools.emitter", "--config", str(cfg), "--state", str(state),
         "--rate", str(rate), "--count", str(count)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_sigkill_mid_stream_loses_and_reuses_no_seq(tmp_path: Path, mosquitto) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "agent.toml"
    cfg.write_text(f'[device]\nid = "cam-1"\nsite = "lab"\n[mqtt]\nhost = "{mosquitto.host}"\n'
                   f'port = {mosquitto.port}\n[health]\nheartbeat_s = 0.5\n')
    state = tmp_path / "state"
    sub = Subscriber(mosquitto.host, mosquitto.port, "edge/v1/lab/cam-1/event/#")
    status = Subscriber(mosquitto.host, mosquitto.port, "edge/v1/lab/cam-1/status", client_id="status-sub")
    procs: list[subprocess.Popen[str]] = []
    try:
        first = _emitter(cfg, state, count=100_000, rate=200)
        procs.append(first)
        assert first.stdout is not None
        printed = []
        while len(printed) < 150:  # mid-stream: appends, publishes and deletes all in progress
            line = first.stdout.readline()
            assert line, first.stderr.read() if first.stderr else "emitter ended"
            if line.startswith("seq "):
                printed.append(int(line.split()[1]))
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        killed_last = printed[-1]
        wait_until(lambda: status.payloads()[-1:] == [b"offline"], 5)
        assert status.payloads()[-2:] == [b"online", b"offline"], "no Last Will after the kill"

        second = _emitter(cfg, state, count=100, rate=500)
        procs.append(second)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
        restarted = [int(x.split()[1]) for x in out.splitlines() if x.startswith("seq ")]
        assert restarted and min(restarted) > killed_last, "a seq was reused after the kill"
        last = max(restarted)
        wait_until(lambda: len(set(sub.payloads())) >= last, 10, every=0.1)
    finally:
        for proc in procs:  # on a failed assertion or a timeout, never leave an emitter running
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        sub.close()
        status.close()

    verifier = Verifier(load_registry(state / "device.pub.json"))
    by_seq: dict[int, bytes] = {}
    first_seen_order = []
    for payload in sub.payloads():
        event, new = verifier.check(payload)
        seq = int(event["seq"])
        assert by_seq.setdefault(seq, payload) == payload, f"seq {seq} was used for two different events"
        if new:
            first_seen_order.append(seq)
    missing = sorted(set(range(1, last + 1)) - set(by_seq))
    assert not missing, f"seqs missing at the subscriber: {missing[:20]} (of {last}, {len(sub.payloads())} messages)"
    assert first_seen_order == sorted(first_seen_order), "first deliveries out of order"
    boots = {verifier.verify(by_seq[s])["boot"] for s in (1, last)}
    assert boots == {1, 2}
    stats = subprocess.run([sys.executable, "-m", "agent", "outbox", "stats", "--state", str(state), "--json"],
                           cwd=ROOT, capture_output=True, text=True, check=True)
    assert '"rows": 0' in stats.stdout and f'"last_seq": {last}' in stats.stdout
