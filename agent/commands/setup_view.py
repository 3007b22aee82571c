"""`edge-agent setup-view`: a local, one-viewer, time-limited page to draw zones, lines and masks."""

from __future__ import annotations

import argparse
import ipaddress
import secrets
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from agent.commands import add_config_args, load_config_for_board
from agent.errors import UsageError
from agent.setupview.marker import RULE  # the rule id the two audit events carry


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("setup-view", help="show a live picture on the local network for at most 10 minutes, "
                                          "behind a one-time code, to draw zones, lines and privacy masks")
    add_config_args(p)
    p.add_argument("--bind", metavar="ADDR", default="127.0.0.1",
                   help="address to listen on: localhost (default) or this device's LAN address; never 0.0.0.0")
    p.add_argument("--port", type=int, default=8321, help="TCP port (0: any free port)")
    p.add_argument("--minutes", type=float, default=10.0, help="close after this many minutes (at most 10)")
    p.add_argument("--no-qr", action="store_true", help="do not print the address as a QR code")
    p.set_defaults(func=cmd_setup_view)


def say(text: str) -> None:
    sys.stderr.write(f"edge-agent: {text}\n")


def check_bind(addr: str) -> str:
    """localhost or a LAN (private, link-local) address; never the wildcard, never a public address."""
    if addr == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise UsageError(f"--bind {addr!r} is not an IP address; give 127.0.0.1 or this device's LAN address") from None
    if ip.is_unspecified:
        raise UsageError(f"--bind {addr} would listen on every interface; give 127.0.0.1 or one LAN address "
                         f"of this device (see `ip -brief address`)")
    if not (ip.is_loopback or ip.is_private or ip.is_link_local) or ip.is_multicast:
        raise UsageError(f"--bind {addr} is not a local-network address; the setup view is for the LAN only")
    return str(ip)


def cmd_setup_view(args: argparse.Namespace) -> int:
    from agent import config
    from agent.assembly import load_or_create_key, open_outbox, publishing
    from agent.capture import open_source
    from agent.delivery.outbox import OutboxBusy
    from agent.detect.factory import build_detector
    from agent.privacy import manifest as privacy_manifest
    from agent.rules import build_rules
    from agent.setupview import gate as gates
    from agent.setupview import marker, shapes
    from agent.setupview.live import Live, with_geometry
    from agent.setupview.server import Server, View
    from agent.track import ByteTracker
    from agent.types import Observation

    if not args.config:
        raise UsageError("setup-view needs --config FILE: the zones, lines and masks are saved there")
    path = Path(args.config)
    if not path.is_file():
        raise UsageError(f"config file {str(path)!r} not found")
    if not 0 < args.minutes <= gates.MAX_SECONDS / 60:
        raise UsageError("--minutes must be more than 0 and at most 10")
    if not 0 <= args.port < 65536:
        raise UsageError(f"--port {args.port} is not a TCP port")
    host = check_bind(args.bind)
    cfg, _ = load_config_for_board(args)
    if cfg.source.kind == "replay":  # a file plays at recorded speed, round and round, like a camera
        cfg = config.replace(cfg, source={"realtime": True, "loop": True, "max_frames": 0})
    key = load_or_create_key(cfg, say)  # the audit events are signed as this device
    detector = build_detector(cfg)
    source = open_source(cfg.source)
    live = Live(cfg, source, detector, ByteTracker(cfg.tracker), build_rules)
    seconds = args.minutes * 60
    gate = gates.Gate.open(time.monotonic(), seconds)
    view = View(gate, live, path, lambda new: live.use(with_geometry(cfg, new)), saved_shapes=shapes.of_config(cfg))
    try:
        server = Server((host, args.port), view)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{args.port}: {exc.strerror or exc}") from None

    # One process writes an outbox. With `edge-agent run` running (it holds the outbox), the view
    # neither queues nor sends anything (no second MQTT session under the device's client id):
    # its mark carries the audit events and the agent signs and sends them.
    try:
        outbox = open_outbox(cfg)
    except OutboxBusy:
        outbox = None
        say("the running agent owns the outbox: it signs and sends this view's audit events")
    pub = None
    if outbox is not None:
        doc = privacy_manifest.build(cfg, detector.model_sha256, detector.model_id)
        try:
            pub = publishing(cfg, key, doc, detector.model_id, outbox=outbox)
        except BaseException:
            outbox.close()
            raise
        pub.start()
    opened_wall = time.time()
    opened_ms = int(opened_wall * 1000)
    session = secrets.token_hex(8)

    def mark(closed_ms: int = 0) -> None:
        with mark_lock:  # the save handler and the main thread both write it
            marker.write(cfg.state_dir, opened_ms + int(seconds * 1000), session=session, opened_ms=opened_ms,
                         duration_s=int(seconds), audit=marker.SELF if pub is not None else marker.AGENT,
                         closed_ms=closed_ms, config_changed=view.saved)

    mark_lock = threading.Lock()
    view.on_saved = mark  # a crash after a save still tells the agent the config changed
    mark()
    if pub is not None:
        pub.emitter.emit([Observation("setup_view_opened", RULE, "", 0.0, {"duration_s": int(seconds)})])
    live.start()
    thread = threading.Thread(target=server.serve_forever, name="setup-view-http", daemon=True)
    thread.start()

    port = server.server_address[1]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
    span = f"{seconds / 60:g} minute{'' if seconds == 60 else 's'}"
    print(f"setup view open at {url} for {span} (one viewer)", flush=True)
    print(f"code: {gate.code}", flush=True)
    if not args.no_qr:
        _print_qr(url)
    say("the picture stays in this process's memory; Done on the page or Ctrl-C closes the view")

    stopped: list[str] = []  # the signal that closed the view, if one did

    def on_signal(signum: int, _frame: Any) -> None:
        stopped.append(signal.Signals(signum).name)
        view.done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    reason = "deadline"
    try:
        while not view.done.wait(max(0.0, gate.remaining_s(time.monotonic()))):
            if gate.remaining_s(time.monotonic()) <= 0:
                break
        else:
            reason = stopped[0] if stopped else "done"
    finally:
        gate.close()
        server.shutdown()
        server.server_close()
        live.stop()
        closed_wall = time.time()
        duration = max(0, round(closed_wall - opened_wall))
        if pub is None:  # the running agent signs the closed event from the mark, then removes it
            mark(closed_ms=int(closed_wall * 1000))
        else:
            marker.clear(cfg.state_dir)
            pub.emitter.emit([Observation("setup_view_closed", RULE, "", 0.0,
                                          {"duration_s": duration, "config_changed": int(view.saved)})])
            pub.close(flush_s=10.0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    changed = "saved to " + str(path) + f" (previous kept as {path.name}.bak)" if view.saved else "config unchanged"
    print(f"setup view closed ({reason}) after {duration} s; {changed}", flush=True)
    return 0


def _print_qr(url: str) -> None:
    try:
        import segno
    except ImportError:  # segno is a dependency; a trimmed install still works without the QR code
        return
    segno.make(url, error="m").terminal(out=sys.stdout, compact=True)
    sys.stdout.flush()
