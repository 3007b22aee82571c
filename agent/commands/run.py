"""`edge-agent run` (the configured camera) and `edge-agent replay VIDEO` (a file, same pipeline)."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from pathlib import Path

from agent import config
from agent.commands import add_config_args, load_config_for_board
from agent.errors import AgentError, BrokerError, SourceError, UsageError

# Exit code after a signed "restart" command (EX_TEMPFAIL): the unit's Restart=always starts the
# service again; by hand it tells a restart asked for from a failure.
RESTART_EXIT = 75


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the agent on the configured source")
    add_config_args(p)
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0: run until stopped)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("replay", help="run the device pipeline on a video file and print a summary")
    p.add_argument("video", help="video file or folder of images")
    add_config_args(p)
    p.add_argument("--events-out", metavar="FILE.jsonl", help="write every envelope, one per line, as published")
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames")
    p.add_argument("--realtime", action="store_true", help="replay at recorded speed")
    p.add_argument("--detections", metavar="FILE.jsonl",
                   help='scripted detections instead of the model (detector.backend = "scripted")')
    p.add_argument("--publish", action="store_true",
                   help="publish to the configured [mqtt] broker (events are marked as replayed either way)")
    p.set_defaults(func=cmd_replay)


def say(text: str) -> None:
    sys.stderr.write(f"edge-agent: {text}\n")


def _run(cfg: config.Config, events_out: Path | None, throwaway_key: bool = False, board: str = "",
         replay: bool = False, config_path: Path | None = None) -> int:
    from agent.assembly import assemble
    from agent.device.systemd import Supervisor

    asm = assemble(cfg, say, events_out, throwaway_key, heartbeat=True, replay=replay)
    if config_path is not None and asm.live is not None and asm.coverage is not None:
        # zones, lines and masks saved to the file (setup-view) apply at a frame boundary
        from agent.device.config_watch import ConfigWatch

        watch = ConfigWatch(config_path, asm.live, asm.coverage, remote=asm.remote, loaded=cfg)
        asm.pipeline.frame_stages.insert(0, watch)
    if board:
        say(board)  # once everything is built: a start-up error stays one line
    # publishing runs in its own thread; without [mqtt] events stay in the outbox
    asm.publishing.start()
    sender = asm.publishing.sender
    emitter = asm.publishing.emitter
    # Under systemd (NOTIFY_SOCKET): READY after the first frame, watchdog fed while both threads progress.
    supervisor = Supervisor.from_env(
        lambda: asm.pipeline.frames, lambda: asm.outbox.rows,
        (lambda: sender.turns) if sender is not None else None,
    )
    if supervisor is not None:
        asm.pipeline.add_periodic(supervisor.probe)
        supervisor.start()

    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if not stopping.is_set():
            say(f"stopping ({signal.Signals(signum).name}): closing open visits and flushing the outbox")
        stopping.set()

    # systemctl stop sends SIGTERM: end the loop cleanly, so open visits get their end events,
    # partial counts are reported and the sender flushes, instead of dying mid-frame.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    remote = asm.remote

    def stop() -> bool:
        return stopping.is_set() or (remote is not None and remote.restart_requested)

    said = False  # an error said in one line (a bad file in a replayed folder): an orderly stop
    try:
        summary = asm.pipeline.run(stop=stop)
    except AgentError:
        said = True
        raise
    finally:
        if supervisor is not None:
            supervisor.stop()
        emitter.emit(asm.publishing.stop())
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if asm.events_out is not None:
            asm.events_out.close()
        if said:  # not counted as an unclean stop at the next start; a crash still is
            asm.outbox.close()
    for line in summary.lines():
        print(line)
    stats = asm.outbox.stats()
    print(f"outbox: {stats.rows} envelopes waiting in {cfg.state_dir / 'outbox.db'} (last seq {stats.last_seq})")
    asm.outbox.close()
    if sender is not None and not sender.reconnects and sender.last_error:
        raise BrokerError(f"{sender.last_error}; the events stay in the outbox")
    if remote is not None and remote.restart_requested and not stopping.is_set():
        say(f"restarting as a signed configuration change asked (exit {RESTART_EXIT})")
        return RESTART_EXIT
    shortfall = getattr(asm.pipeline.source, "shortfall", None)
    short = shortfall() if callable(shortfall) else None
    if short:
        raise SourceError(short)  # a short input is said, never passed off as the whole video
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.max_frames < 0:
        raise UsageError("--max-frames must be >= 0")
    cfg, board = load_config_for_board(args)
    if cfg.source.kind == "replay" and not cfg.source.path:
        raise UsageError(
            "run needs a camera: give --config FILE with a [source] section (kind = \"v4l2\", \"rtsp\" or "
            "\"picamera2\", and its path); to process a video file use `edge-agent replay VIDEO`")
    if args.max_frames:
        cfg = config.replace(cfg, source={"max_frames": args.max_frames})
    return _run(cfg, None, board=board.line(), config_path=Path(args.config) if args.config else None)


def cmd_replay(args: argparse.Namespace) -> int:
    if args.max_frames < 0:
        raise UsageError("--max-frames must be >= 0")
    cfg, board = load_config_for_board(args)
    cfg = config.replace(
        cfg,
        source={"kind": "replay", "path": args.video, "max_frames": args.max_frames, "realtime": args.realtime},
    )
    if args.detections:
        cfg = config.replace(cfg, detector={"backend": "scripted", "script": args.detections})
    if args.publish and cfg.mqtt is None:
        raise UsageError("--publish needs an [mqtt] section in the config (the broker to publish to)")
    if not args.publish and cfg.mqtt is not None:
        from agent.delivery.mqtt import check_files

        check_files(cfg.mqtt)  # the same config runs the camera later: its mistakes are said now
        # recorded footage goes to a broker only when asked; its events are marked either way
        cfg = dataclasses.replace(cfg, mqtt=None)
    return _run(cfg, Path(args.events_out) if args.events_out else None, throwaway_key=True, replay=True,
                board=board.line())
