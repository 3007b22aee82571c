"""The installer's path in a real headless Chromium: code, draw a zone and a line with pointer events,
save; the file holds them normalized and a replay of the real clip counts what they imply. Meanwhile
no image data lands in any file and only the two signed audit events reach a real Mosquitto."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import tomllib
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from tests.helpers import ROOT, Subscriber, cli, stop_by_pid, wait_until
from tests.setupview.imagescan import image_files

from agent.privacy.egress import image_signature
from agent.protocol import topics
from agent.protocol.dsse import open_envelope

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ZONE = [(0.30, 0.05), (0.85, 0.05), (0.85, 0.99), (0.30, 0.99)]  # docs/demo.toml's table, drawn
LINE = [(0.75, 0.01), (0.75, 0.99)]  # the exit line, drawn downwards: walking out to the right is "out"


class Console:
    """The setup view's stdout, line by line, on a thread (its lines are what the installer reads)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert proc.stdout is not None
        out = proc.stdout
        threading.Thread(target=lambda: [self.lines.put(ln) for ln in out], daemon=True).start()

    def wait_for(self, prefix: str, timeout: float = 120) -> str:
        while True:
            line = self.lines.get(timeout=timeout)
            self.seen.append(line)
            if line.startswith(prefix):
                return line.strip()


def http(method: str, url: str, data: bytes | None = None, cookie: str = "") -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method=method)
    if cookie:
        req.add_header("Cookie", cookie)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def chromium(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail("Debian's chromium and chromium-driver are missing: `make test` installs them (hw/apt-test.txt)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900"):
        opts.add_argument(flag)
    return webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))


def click_at(driver: Any, element: Any, x: float, y: float) -> None:
    """A real pointer click at normalized (x, y) of the element (Selenium offsets are from its centre)."""
    from selenium.webdriver.common.action_chains import ActionChains

    w, h = element.size["width"], element.size["height"]
    ActionChains(driver).move_to_element_with_offset(element, round((x - 0.5) * w), round((y - 0.5) * h)) \
        .click().perform()


def drag(driver: Any, element: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at start, move in steps, release at end (pointerdown, pointermove..., pointerup)."""
    from selenium.webdriver.common.action_chains import ActionChains

    w, h = element.size["width"], element.size["height"]
    dx, dy = round((end[0] - start[0]) * w), round((end[1] - start[1]) * h)
    chain = ActionChains(driver).move_to_element_with_offset(
        element, round((start[0] - 0.5) * w), round((start[1] - 0.5) * h)).click_and_hold()
    for _ in range(4):
        chain = chain.move_by_offset(dx // 4, dy // 4)
    chain.move_by_offset(dx - 4 * (dx // 4), dy - 4 * (dy // 4)).release().perform()


def events_of(envelopes: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(open_envelope(e)[1]) for e in envelopes]


@pytest.mark.slow
def test_installer_draws_saves_and_the_replay_counts_it(tmp_path: Path, model_dir: Path, clip: Path,
                                                         mosquitto: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    state, work, tmpdir, profile, out = (tmp_path / n for n in ("state", "work", "tmp", "chrome", "out"))
    for d in (work, tmpdir, out):
        d.mkdir()
    assert cli("keygen", "--out", str(state), "--device-id", "cam-1", "--site", "lab").returncode == 0
    cfg_path = work / "agent.toml"
    cfg_path.write_text(
        f'[device]\nid = "cam-1"\nsite = "lab"\n\n[detector]\nmodel_dir = "{model_dir}"\n\n'
        f'[source]\nkind = "replay"\npath = "{clip}"\n\n[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\n'
    )
    original = cfg_path.read_text()
    everything = Subscriber(mosquitto.host, mosquitto.port, "#")
    env = dict(os.environ, TMPDIR=str(tmpdir), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "setup-view", "--config", str(cfg_path), "--state", str(state),
         "--port", "0", "--minutes", "6"],
        cwd=work, env=env, stdout=subprocess.PIPE, text=True,
        stderr=open(out / "setup-view.log", "w"),  # noqa: SIM115 (the child keeps it; closed when the test ends)
    )
    driver = None
    try:
        console = Console(proc)
        url = console.wait_for("setup view open at").split()[4]
        code = console.wait_for("code:").split()[1]

        # no code, a wrong code: a status and no picture
        for path in ("", "frame.jpg", "api/state"):
            status, body = http("GET", url + path)
            assert status == 401 and image_signature(body) is None, path
        assert http("POST", url + "login", b"code=00000000")[0] == 403

        driver = chromium(profile)
        driver.get(url)
        driver.find_element(By.ID, "code").send_keys(code)
        driver.find_element(By.ID, "enter").click()
        # the page re-renders the counts and the overlay as frames arrive: an element read between
        # its lookup and its text may be replaced, so a wait looks again instead of failing
        wait = WebDriverWait(driver, 90, ignored_exceptions=(StaleElementReferenceException,))
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        wait.until(lambda d: d.execute_script("return document.getElementById('picture').naturalWidth") > 0)

        # a second browser, even with the right code, and the picture without the session: refused
        status, body = http("POST", url + "login", f"code={code}".encode())
        assert status == 409 and image_signature(body) is None
        status, body = http("GET", url + "frame.jpg", cookie="edge_setup=not-the-session")
        assert status == 401 and image_signature(body) is None

        overlay = driver.find_element(By.ID, "overlay")
        driver.find_element(By.ID, "tool-zone").click()
        misplaced = [(0.70, 0.20)] + ZONE[1:]  # the first corner off, then dragged into place
        for x, y in misplaced:
            click_at(driver, overlay, x, y)
        driver.find_element(By.ID, "finish").click()
        driver.find_element(By.ID, "shape-id").clear()
        driver.find_element(By.ID, "shape-id").send_keys("table\n")
        driver.find_element(By.ID, "tool-select").click()
        drag(driver, overlay, misplaced[0], ZONE[0])
        driver.find_element(By.ID, "tool-line").click()
        for x, y in reversed(LINE):  # drawn upwards, then flipped: walking out to the right is "out"
            click_at(driver, overlay, x, y)
        driver.find_element(By.ID, "flip").click()
        driver.find_element(By.ID, "shape-id").clear()
        driver.find_element(By.ID, "shape-id").send_keys("exit\n")
        driver.find_element(By.ID, "save").click()
        wait.until(lambda d: d.find_element(By.ID, "status").text == "saved")

        saved = tomllib.loads(cfg_path.read_text())
        assert [z["id"] for z in saved["zones"]] == ["table"] and [ln["id"] for ln in saved["lines"]] == ["exit"]
        flat = [v for p in saved["zones"][0]["polygon"] + saved["lines"][0]["points"] for v in p]
        assert flat == pytest.approx([v for p in ZONE + LINE for v in p], abs=0.01)  # a pixel or two
        assert all(0 <= v <= 1 for p in saved["zones"][0]["polygon"] + saved["lines"][0]["points"] for v in p)
        assert (work / "agent.toml.bak").read_text() == original

        # live counts for the saved shapes: the looping clip brings someone to the table
        wait.until(lambda d: "1 inside" in d.find_element(By.ID, "count-zone-table").text
                   or "out 0" not in d.find_element(By.ID, "count-line-exit").text)
        driver.save_screenshot(str(out / "setup-view.png"))
        assert (out / "setup-view.png").stat().st_size > 10_000
        during = image_files(state, tmpdir, work, profile)
        assert during == [], during

        driver.find_element(By.ID, "done").click()
        assert proc.wait(timeout=60) == 0
        assert console.wait_for("setup view closed (done)")
    finally:
        if driver is not None:
            driver.quit()
        stop_by_pid(proc)
    assert not (state / "setup_view.open").exists()
    after = image_files(state, tmpdir, work, profile)
    assert after == [], after

    # the broker saw the two signed audit events and, besides them, only the device's control topics
    def event_messages() -> list[tuple[str, bytes]]:
        return [(t, p) for t, p in everything.messages
                if (tp := topics.parse_topic(topics.DEFAULT_PREFIX, t)) and tp.kind == topics.EVENT]

    assert wait_until(lambda: len(event_messages()) >= 2, timeout=20)
    everything.close()
    envelopes = [p for _, p in event_messages()]
    events = events_of(envelopes)
    assert [e["type"] for e in events] == ["setup_view_opened", "setup_view_closed"]
    assert events[0]["values"] == {"duration_s": 360}
    assert events[1]["values"]["config_changed"] == 1 and 0 < events[1]["values"]["duration_s"] < 360
    for t, p in everything.messages:
        tp = topics.parse_topic(topics.DEFAULT_PREFIX, t)
        assert tp is not None and tp.device == "cam-1", t
        assert tp.kind in (topics.EVENT, topics.STATUS, topics.MANIFEST, topics.BIRTH), t
        assert image_signature(p) is None, t
    (tmp_path / "audit.jsonl").write_bytes(b"".join(e + b"\n" for e in envelopes))
    verified = cli("verify", str(tmp_path / "audit.jsonl"), "--registry", str(state / "device.pub.json"))
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # the saved shapes on the real clip: six people leave through the exit line, six visit the table
    replay_cfg = tmp_path / "replay.toml"
    replay_cfg.write_text(tomli_w.dumps({k: v for k, v in saved.items() if k not in ("mqtt", "source")}))
    events_out = tmp_path / "events.jsonl"
    run = cli("replay", str(clip), "--config", str(replay_cfg), "--state", str(tmp_path / "replay-state"),
              "--events-out", str(events_out))
    assert run.returncode == 0, run.stderr
    replayed = events_of(events_out.read_bytes().splitlines())
    crossings = Counter(e["direction"] for e in replayed if e["type"] == "line_crossing" and e["rule"] == "exit")
    assert crossings == Counter({"out": 6})
    counts = [e["values"] for e in replayed if e["type"] == "count" and e["rule"] == "table"]
    assert sum(v["entries"] for v in counts) == 6 and sum(v["exits"] for v in counts) == 6
    occupancy = [e["values"]["count"] for e in replayed if e["type"] == "occupancy" and e["rule"] == "table"]
    changes = [n for i, n in enumerate(occupancy) if i == 0 or n != occupancy[i - 1]]  # minus periodic repeats
    assert changes == [1, 0] * 6
