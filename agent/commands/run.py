"""`edge-agent run` (the configured camera) and `edge-agent replay VIDEO` (a file, same pipeline)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from agent import config
from agent.commands import add_config_args, load_config_for_board
from agent.errors import BrokerError, UsageError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    p.set_defaults(func=cmd_replay)


def say(text: str) -> None:
    sys.stderr.write(f"edge-agent: {text}\n")


def _run(cfg: config.Config, events_out: Path | None, throwaway_key: bool = False, board: str = "",
         config_path: Path | None = None) -> int:
    from agent.assembly import assemble
    from agent.systemd import Supervisor

    asm = assemble(cfg, say, events_out, throwaway_key, heartbeat=True)
    if config_path is not None:  # zones, lines and masks saved to the file (setup-view) apply at a frame boundary
        from agent.config_watch import ConfigWatch

        asm.pipeline.frame_stages.insert(0, ConfigWatch(config_path, cfg, asm.pipeline, asm.coverage, asm.alive))
    if board:
        say(board)  # once everything is built: a start-up error stays one line
    # publishing runs in its own thread; without [mqtt] events stay in the outbox
    asm.publishing.start()
    sender = asm.publishing.sender
    emitter = asm.publishing.emitter
    # Under systemd (NOTIFY_SOCKET): READY after the first frame, watchdog fed while both threads progress.
    supervisor = Supervisor.from_env(
        lambda: asm.pipeline.frames, lambda: asm.outbox.rows,
        (lambda: sender.turns) if sender is not None else None,  # type: ignore[union-attr]
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
    try:
        summary = asm.pipeline.run(stop=stopping.is_set)
    finally:
        if supervisor is not None:
            supervisor.stop()
        emitter.emit(asm.publishing.stop())
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if asm.events_out is not None:
            asm.events_out.close()
    for line in summary.lines():
        print(line)
    stats = asm.outbox.stats()
    print(f"outbox: {stats.rows} envelopes waiting in {cfg.state_dir / 'outbox.db'} (last seq {stats.last_seq})")
    asm.outbox.close()
    if sender is not None and not sender.reconnects and sender.last_error:
        raise BrokerError(f"{sender.last_error}; the events stay in the outbox")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.max_frames < 0:
        raise UsageError("--max-frames must be >= 0")
    cfg, board = load_config_for_board(args)
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
    return _run(cfg, Path(args.events_out) if args.events_out else None, throwaway_key=True, board=board.line())
