"""The rtsp source against a real RTSP server (gst-rtsp-server on loopback) serving the real clip.

The server is Debian's GStreamer driven by Debian's python3 (tests/fixtures/rtsp_server.py),
started on a free port and stopped by PID. Mid-stream the server is killed and started again on
the same port: the source must report the outage (one camera_lost alarm through the pipeline),
reconnect with back-off, and frames must flow through the pipeline again. The camera's
credentials must never appear in a log line or an error message.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.mosquitto import free_port
from tests.helpers import stop_by_pid

from agent import config
from agent.capture import open_source
from agent.capture.urls import redact_url
from agent.config import SourceConfig
from agent.errors import SourceError
from agent.types import Observation

SERVER = Path(__file__).resolve().parent.parent / "fixtures" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"  # PyGObject and gst-rtsp-server are Debian packages
USER, PASSWORD = "viewer", "s3cret-pw"


@dataclass
class RtspServer:
    port: int
    clip: Path
    log: Path
    mount: str = "/cam"
    credentials: str = f"{USER}:{PASSWORD}"
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"rtsp://{self.credentials}@127.0.0.1:{self.port}{self.mount}"

    def start(self, timeout_s: float = 20.0) -> None:
        """Start and wait for its "ready" line (printed once it listens), not for a fixed time."""
        with open(self.log, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [SYSTEM_PYTHON, str(SERVER), str(self.port), self.mount, str(self.clip), self.credentials],
                stdout=subprocess.PIPE, stderr=log, start_new_session=True,
            )
        ready = threading.Event()

        def watch() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            if self.proc.stdout.readline().strip() == b"ready":
                ready.set()

        threading.Thread(target=watch, daemon=True).start()
        if not ready.wait(timeout_s):
            self.stop()
            raise RuntimeError(f"the RTSP server did not get ready: {self.log.read_text()[-500:]}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_by_pid(self.proc)

    def freeze(self) -> None:
        """The server hangs with its connections open (SIGSTOP), like a frozen camera."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)


def _have_gst_rtsp_server() -> bool:
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], check=False, capture_output=True).returncode == 0


@pytest.fixture
def rtsp_server(tmp_path: Path, clip: Path) -> Iterator[RtspServer]:
    if not _have_gst_rtsp_server():
        pytest.fail("gst-rtsp-server is missing: run `make test` (it installs hw/apt-test.txt)")
    server = RtspServer(free_port(), clip, tmp_path / "rtsp-server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Probe:
    """A periodic stage that turns what the pipeline saw into events the test waits on."""

    def __init__(self, pipeline: Any, source: Any, frames: int) -> None:
        self.pipeline, self.source, self.frames = pipeline, source, frames
        self.streaming = threading.Event()  # `frames` frames through the pipeline, no outage yet
        self.lost = threading.Event()  # the source counted an outage
        self.resumed = threading.Event()  # `frames` more frames through the pipeline after it
        self.frames_at_loss = 0

    def tick(self, now_s: float) -> list[Observation]:
        done = self.pipeline.frames
        if self.source.camera_errors == 0 and done >= self.frames:
            self.streaming.set()
        if self.source.camera_errors and not self.lost.is_set():
            self.frames_at_loss = done
            self.lost.set()
        if self.lost.is_set() and done >= self.frames_at_loss + self.frames:
            self.resumed.set()
        return []


def bodies(envelopes: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(base64.b64decode(json.loads(e)["payload"])) for e in envelopes]


@pytest.mark.slow
@pytest.mark.parametrize("outage", ["restart", "freeze"])
def test_rtsp_source_survives_a_server_outage_mid_stream(
    outage: str, rtsp_server: RtspServer, tmp_path: Path, model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """restart: the server dies (its connections close) and comes back on the same port.
    freeze: the server hangs with the connection open; the read timeout (5 s, not OpenCV's
    default 30 s) must notice it, and the source reconnects once the server answers again."""
    from agent.assembly import assemble

    caplog.set_level(logging.DEBUG, logger="agent")
    cfg = config.replace(
        config.Config(),
        device={"state_dir": str(tmp_path / "state")},
        detector={"model_dir": str(model_dir)},
        source={"kind": "rtsp", "path": rtsp_server.url},
    )
    events = tmp_path / "events.jsonl"
    asm = assemble(cfg, lambda s: None, events, throwaway_key=True)
    pipeline = asm.pipeline
    probe = Probe(pipeline, pipeline.source, frames=15)
    pipeline.add_periodic(probe)
    stop = threading.Event()
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["summary"] = pipeline.run(stop=stop.is_set)
        except Exception as exc:  # noqa: BLE001 - any failure is reported by the test thread
            result["error"] = exc

    runner = threading.Thread(target=run, name="pipeline", daemon=True)
    runner.start()
    try:
        assert probe.streaming.wait(60), "no frames through the pipeline from the RTSP server"
        if outage == "restart":
            rtsp_server.stop()  # the camera's server goes away mid-stream (by PID)
            assert probe.lost.wait(20), "the source did not notice the server had gone"
            assert not pipeline.source.grabber.connected
            rtsp_server.start()  # back on the same port and URL
        else:
            rtsp_server.freeze()
            try:
                # read timeout 5 s + a decoder's buffered frames; OpenCV's default would be 30 s
                assert probe.lost.wait(20), "the source did not notice the server hung"
                assert not pipeline.source.grabber.connected
            finally:
                rtsp_server.thaw()
        assert probe.resumed.wait(60), "frames did not flow again after the server came back"
    finally:
        stop.set()
        runner.join(30)
        asm.events_out.close()  # type: ignore[attr-defined]
        asm.outbox.close()
    assert not runner.is_alive(), "the pipeline did not stop when asked"
    assert "error" not in result, result.get("error")
    summary = result["summary"]
    assert summary.camera_errors == 1 and summary.frames >= 2 * probe.frames

    alarms = [b for b in bodies(events.read_bytes().splitlines()) if b["type"] == "alarm"]
    assert [(a["rule"], a["reason"], a["values"]["camera_errors"]) for a in alarms] == [
        ("camera", "camera_lost", 1)
    ]
    text = caplog.text
    assert "stopped delivering frames" in text and "connected" in text
    assert redact_url(rtsp_server.url) in text  # the messages say which camera ...
    assert PASSWORD not in text and USER not in text  # ... never with its credentials


@pytest.mark.slow
def test_rtsp_wrong_credentials_or_port_are_one_line_without_the_password(
    rtsp_server: RtspServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    wrong = rtsp_server.url.replace(PASSWORD, "not-the-password")
    closed = f"rtsp://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/cam"
    for url in (wrong, closed):
        with pytest.raises(SourceError) as info:
            open_source(SourceConfig(kind="rtsp", path=url))
        message = str(info.value)
        assert "cannot be opened" in message and "\n" not in message
        assert "127.0.0.1" in message
        assert PASSWORD not in message and "not-the-password" not in message
    printed = capfd.readouterr()  # what FFmpeg and OpenCV wrote on the process's own stderr
    assert "401" in printed.err  # the server did refuse the wrong password ...
    assert PASSWORD not in printed.err + printed.out  # ... and no library printed the URL
    assert "not-the-password" not in printed.err + printed.out


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:p@ss@192.168.1.10:554/Streaming/Channels/101",
         "rtsp://***@192.168.1.10:554/Streaming/Channels/101"),
        ("rtsp://cam.local/live", "rtsp://cam.local/live"),
        ("rtsp://u@[fe80::1]:8554/x?user=a&password=b", "rtsp://***@[fe80::1]:8554/x?***"),
        ("rtsp://a:b@host:99999/x", "<camera URL>"),  # a port that does not parse: hide it all
        ("not a url", "<camera URL>"),
    ],
)
def test_camera_urls_in_messages_lose_credentials_and_query(url: str, shown: str) -> None:
    assert redact_url(url) == shown
