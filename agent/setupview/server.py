"""The setup view's HTTP side (standard library): the gate on every request, the page, picture and API.

Every response is `no-store` (the browser keeps no copy of the picture on disk), framed by nobody,
and refused unless the Host header names the address the view listens on (no DNS rebinding). A
request without the viewer's session cookie gets a status and, at most, the code form: never the
app, the shapes or a picture byte.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import cookies
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from agent.errors import AgentError
from agent.setupview import gate as gates
from agent.setupview import shapes as shapes_mod

log = logging.getLogger(__name__)

COOKIE = "edge_setup"
MAX_BODY = 64 * 1024
HEADERS = {
    "Cache-Control": "no-store, max-age=0",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "frame-ancestors 'none'; form-action 'self'",
}
LOGIN = """<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>edge-agent setup view</title></head><body style="font-family:sans-serif;max-width:28em;margin:3em auto">
<h1>edge-agent setup view</h1><p>{message}</p>
<form method="post" action="/login"><label>Code from the console
<input id="code" name="code" inputmode="numeric" autocomplete="off" autofocus></label>
<button id="enter" type="submit">Open</button></form></body></html>"""


def _asset(name: str) -> bytes:
    return resources.files("agent.setupview").joinpath("page", name).read_bytes()


@dataclass
class View:
    """What the handler serves: the gate, the live picture, the config file, and the outcome."""

    gate: gates.Gate
    live: Any  # agent.setupview.live.Live
    config_path: Path
    on_geometry: Callable[[Any], None]  # a checked Config for the live preview
    clock: Callable[[], float] = time.monotonic
    done: threading.Event = field(default_factory=threading.Event)
    saved: bool = False  # the config file was changed at least once
    saved_shapes: Any = None
    on_saved: Callable[[], None] | None = None  # after a save that changed the file (saved is True)
    # one save (or draft) at a time: the page's requests each get a thread (a double-click on Save)
    file_lock: threading.Lock = field(default_factory=threading.Lock)

    def state(self) -> dict[str, Any]:
        _, live = self.live.snapshot()
        return dict(live, remaining_s=int(self.gate.remaining_s(self.clock())))


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], view: View) -> None:
        self.view = view
        super().__init__(address, Handler)
        host, port = str(self.server_address[0]), int(self.server_address[1])
        self.hosts = {f"{host}:{port}"}
        if host in ("127.0.0.1", "::1"):
            self.hosts |= {f"localhost:{port}", f"[::1]:{port}" if host == "::1" else f"127.0.0.1:{port}"}
        if ":" in host:
            self.hosts.add(f"[{host}]:{port}")


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # ------------------------------------------------------------ plumbing
    def _send(self, status: int, body: bytes = b"", ctype: str = "text/plain; charset=utf-8",
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in {**HEADERS, **(extra or {})}.items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, doc: Any) -> None:
        self._send(status, json.dumps(doc).encode(), "application/json")

    def _token(self) -> str | None:
        jar = cookies.SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie", ""))
        except cookies.CookieError:
            return None
        morsel = jar.get(COOKIE)
        return morsel.value if morsel is not None else None

    def _host_ok(self) -> bool:
        return self.headers.get("Host", "") in self.server.hosts

    def _admitted(self) -> bool:
        """The viewer's session, or the refusal already sent (no body beyond the status line)."""
        view = self.server.view
        if not self._host_ok():
            self._send(421, b"wrong host\n")
            return False
        outcome = view.gate.admit(self._token(), view.clock())
        if outcome == gates.OK:
            return True
        status = gates.STATUS[outcome]
        if outcome == gates.WRONG:
            status = 401
        self._send(status, f"{outcome}\n".encode())
        return False

    def _body(self) -> bytes | None:
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            n = -1
        if not 0 <= n <= MAX_BODY:
            self._send(413, b"too large\n")
            return None
        return self.rfile.read(n)

    # ------------------------------------------------------------ routes
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        view = self.server.view
        if path == "/":
            if not self._host_ok():
                self._send(421, b"wrong host\n")
                return
            outcome = view.gate.admit(self._token(), view.clock())
            if outcome == gates.OK:
                self._send(200, _asset("index.html"), "text/html; charset=utf-8")
            elif outcome == gates.WRONG:  # no session: the code form, nothing else
                msg = "Enter the code printed on the device's console."
                self._send(401, LOGIN.format(message=msg).encode(), "text/html; charset=utf-8")
            else:
                self._send(gates.STATUS[outcome], f"{outcome}\n".encode())
            return
        if not self._admitted():
            return
        if path == "/app.js":
            self._send(200, _asset("app.js"), "text/javascript; charset=utf-8")
        elif path == "/frame.jpg":
            jpeg, _ = view.live.snapshot()
            if jpeg is None:
                self._send(503, b"no picture yet\n", extra={"Retry-After": "1"})
            else:
                self._send(200, jpeg, "image/jpeg")
        elif path == "/api/state":
            self._json(200, view.state())
        elif path == "/api/shapes":
            self._json(200, view.saved_shapes.to_json())
        else:
            self._send(404, b"not found\n")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        view = self.server.view
        if path == "/login":
            if not self._host_ok():
                self._send(421, b"wrong host\n")
                return
            body = self._body()
            if body is None:
                return
            code = parse_qs(body.decode("ascii", "replace")).get("code", [""])[0]
            outcome, token = view.gate.claim(code, view.clock())
            if outcome == gates.OK and token is not None:
                remaining = int(view.gate.remaining_s(view.clock())) + 1
                cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={remaining}"
                self._send(303, b"", extra={"Location": "/", "Set-Cookie": cookie})
                log.info("setup view: a browser presented the code and is the viewer")
                return
            log.warning("setup view: code refused (%s) from %s", outcome, self.client_address[0])
            messages = {gates.WRONG: "Wrong code.", gates.TAKEN: "Another browser is already the viewer.",
                        gates.LOCKED: "Too many wrong codes: the view is locked."}
            text = messages.get(outcome)
            if text:
                self._send(gates.STATUS[outcome], LOGIN.format(message=text).encode(), "text/html; charset=utf-8")
            else:
                self._send(gates.STATUS[outcome], f"{outcome}\n".encode())
            return
        if not self._admitted():
            return
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            self._send(415, b"application/json only\n")  # a plain form from another page cannot post here
            return
        body = self._body()
        if body is None:
            return
        if path == "/api/done":
            self._json(200, {"closing": True})
            view.done.set()
            return
        if path not in ("/api/save", "/api/draft"):
            self._send(404, b"not found\n")
            return
        try:
            doc = json.loads(body or b"{}")
            shapes = shapes_mod.from_json(doc)
            with view.file_lock:
                if path == "/api/draft":
                    from agent import config

                    cfg = shapes_mod.check(shapes_mod.apply(config.read_toml(view.config_path), shapes))
                    view.on_geometry(cfg)
                else:
                    cfg, changed = shapes_mod.save(view.config_path, shapes)
                    view.saved = view.saved or changed
                    view.saved_shapes = shapes_mod.of_config(cfg)
                    view.on_geometry(cfg)
                    if changed and view.on_saved is not None:
                        try:
                            view.on_saved()
                        except OSError as exc:  # the file is saved; the mark is written again at close
                            log.warning("setup view: cannot note the save in the state folder's mark: %s", exc)
        except (AgentError, ValueError) as exc:
            self._json(400, {"ok": False, "error": str(exc)})
            return
        if path == "/api/draft":
            self._json(200, {"ok": True})
            return
        log.info("setup view: saved %d zone(s), %d line(s), %d mask(s) to %s%s", len(cfg.zones),
                 len(cfg.lines), len(cfg.privacy.masks), view.config_path, "" if changed else " (unchanged)")
        self._json(200, {"ok": True, "changed": changed})
