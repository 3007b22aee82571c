"""The setup view's HTTP gate on a real server and a real live picture: no code, wrong code, a second
browser, after the deadline: a status and never an image byte. (The browser test does the happy path.)"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import config
from agent.privacy.egress import image_signature
from agent.setupview import gate as gates
from agent.setupview import shapes
from agent.setupview.live import Live
from agent.setupview.server import Server, View


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def served(tmp_path: Path, model_dir: Path) -> Iterator[tuple[Server, Clock, Live]]:
    from agent.capture import open_source
    from agent.detect.factory import build_detector
    from agent.rules import build_rules
    from agent.track import ByteTracker

    path = tmp_path / "agent.toml"
    path.write_text(f'[detector]\nmodel_dir = "{model_dir}"\n[source]\nkind = "synthetic"\nfps = 20\n')
    cfg = config.load(path)
    live = Live(cfg, open_source(cfg.source), build_detector(cfg), ByteTracker(cfg.tracker), build_rules)
    clock = Clock()
    gate = gates.Gate.open(clock.now, 60, code="24681357")
    view = View(gate, live, path, live.use, clock=clock, saved_shapes=shapes.of_config(cfg))
    server = Server(("127.0.0.1", 0), view)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    live.start()
    try:
        yield server, clock, live
    finally:
        server.shutdown()
        server.server_close()
        live.stop()


def request(server: Server, method: str, path: str, body: str = "", cookie: str = "",
            host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)  # type: ignore[misc]
    headers = {"Host": host or f"127.0.0.1:{server.server_address[1]}"}
    if cookie:
        headers["Cookie"] = cookie
    if body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=body or None, headers=headers)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def no_image(data: bytes) -> bool:
    return image_signature(data) is None and b"\xff\xd8" not in data


def login(server: Server, code: str) -> tuple[int, str]:
    status, headers, _ = request(server, "POST", "/login", f"code={code}")
    cookie = headers.get("set-cookie", "").split(";")[0]
    return status, cookie


def wait_picture(server: Server, cookie: str) -> bytes:
    from tests.helpers import wait_until

    got: list[bytes] = []

    def ready() -> bool:
        status, _, data = request(server, "GET", "/frame.jpg", cookie=cookie)
        if status == 200:
            got.append(data)
        return status == 200

    assert wait_until(ready, timeout=60, every=0.2), "no live picture within 60 s"
    return got[-1]


def test_refused_without_code_with_a_wrong_code_from_a_second_browser_and_after_the_deadline(
        served: tuple[Server, Clock, Live]) -> None:
    server, clock, _ = served
    for path in ("/", "/frame.jpg", "/app.js", "/api/state", "/api/shapes"):
        status, headers, data = request(server, "GET", path)
        assert status == 401, path
        assert no_image(data) and b"app.js" not in data and headers["cache-control"].startswith("no-store")
    status, cookie = login(server, "11111111")
    assert (status, cookie) == (403, "")
    status, _, data = request(server, "GET", "/frame.jpg", cookie="edge_setup=guess")
    assert status == 401 and no_image(data)

    status, cookie = login(server, "24681357")
    assert status == 303 and cookie.startswith("edge_setup=")
    jpeg = wait_picture(server, cookie)
    assert jpeg.startswith(b"\xff\xd8\xff")  # the viewer does get the picture
    status, _, page = request(server, "GET", "/", cookie=cookie)
    assert status == 200 and b"app.js" in page

    status, second = login(server, "24681357")  # a second browser with the right code
    assert (status, second) == (409, "")
    status, _, data = request(server, "GET", "/frame.jpg", host="evil.example:80", cookie=cookie)
    assert status == 421 and no_image(data)  # DNS rebinding: another name for this address

    clock.now += 61  # past the deadline: even the viewer's cookie gets nothing
    for path in ("/", "/frame.jpg", "/api/state"):
        status, _, data = request(server, "GET", path, cookie=cookie)
        assert status == 410, path
        assert no_image(data)
    assert login(server, "24681357")[0] == 410


def test_two_saves_at_once_leave_a_config_that_parses(served: tuple[Server, Clock, Live]) -> None:
    """A double-click on Save (two requests, two handler threads): one save at a time, a whole file."""
    import json
    import tomllib

    server, _, _ = served
    status, cookie = login(server, "24681357")
    assert status == 303
    path = server.view.config_path
    bodies = [json.dumps({"zones": [{"id": zone, "polygon": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.9]]}]})
              for zone in ("left", "right")]
    start = threading.Barrier(2)
    answers: list[int] = []
    seen: list[list[str]] = []

    def saves(i: int) -> None:
        start.wait()
        for n in range(8):
            conn = http.client.HTTPConnection(*server.server_address[:2], timeout=30)  # type: ignore[misc]
            conn.request("POST", "/api/save", body=bodies[(i + n) % 2],
                         headers={"Host": f"127.0.0.1:{server.server_address[1]}", "Cookie": cookie,
                                  "Content-Type": "application/json"})
            answers.append(conn.getresponse().status)
            conn.close()
            seen.append([z["id"] for z in tomllib.loads(path.read_text())["zones"]])

    threads = [threading.Thread(target=saves, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200] * 16
    assert len(seen) == 16 and all(ids in (["left"], ["right"]) for ids in seen)
    assert config.load(path).zones[0].id in ("left", "right")
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".agent.toml")) == []
