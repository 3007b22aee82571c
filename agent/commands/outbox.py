"""`edge-agent outbox stats`: depth, oldest age, bytes, drops, last ack, for technicians."""

from __future__ import annotations

import argparse
import json
import time

from agent.commands import add_config_args, load_config
from agent.errors import UsageError
from agent.delivery.outbox import Outbox, OutboxBusy


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("outbox", help="inspect the local outbox")
    osub = p.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)
    q = osub.add_parser("stats", help="depth, oldest age, bytes, drops, last ack")
    add_config_args(q)
    q.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    q.set_defaults(func=cmd_stats)


def stats(ob: Outbox, now_ms: int) -> dict[str, int | str]:
    s = ob.stats()
    report = ob.drop_report()
    return {
        "rows": s.rows,
        "bytes": s.size_bytes,
        "oldest_age_s": max(0, (now_ms - s.oldest_ms) // 1000) if s.oldest_ms else 0,
        "last_seq": s.last_seq,
        "dropped": s.dropped,
        "dropped_unreported": report.count,
        "dropped_seq_range": f"{report.first}-{report.last}" if report.count else "",
        "last_ack_seq": s.last_ack,
        "last_ack_age_s": max(0, (now_ms - s.last_ack_ms) // 1000) if s.last_ack_ms else -1,
        "boot": s.boot,
    }


def cmd_stats(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    path = cfg.state_dir / "outbox.db"
    if not path.is_file():
        raise UsageError(f"no outbox at {path}; give the agent's --state or --config")
    try:  # a folder it cannot write is one line with the fix (SQLite WAL writes beside it)
        ob = Outbox(path)
    except OutboxBusy:  # the running agent owns the outbox: read beside it, write nothing
        ob = Outbox(path, readonly=True)
    try:
        data = stats(ob, int(time.time() * 1000))
    finally:
        ob.close()
    if args.json:
        print(json.dumps(data, sort_keys=True))
    else:
        print(f"outbox: {path}")
        for k, v in data.items():
            print(f"{k}: {v}")
    return 0
