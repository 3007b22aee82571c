"""`edge-agent outbox stats`: depth, oldest age, bytes, drops, last ack, for technicians."""

from __future__ import annotations

import argparse
import json
import time

from agent.commands import add_config_args, load_config
from agent.outbox import Outbox


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("outbox", help="inspect the local outbox")
    osub = p.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)
    q = osub.add_parser("stats", help="depth, oldest age, bytes, drops")
    add_config_args(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_stats)


def cmd_stats(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    ob = Outbox(cfg.state_dir / "outbox.db")
    s = ob.stats()
    ob.close()
    oldest_s = int(time.time() - s.oldest_ms / 1000) if s.oldest_ms else 0
    data = {"rows": s.rows, "bytes": s.bytes, "oldest_age_s": oldest_s, "last_seq": s.last_seq,
            "dropped": s.dropped, "boot": s.boot}
    if args.json:
        print(json.dumps(data))
    else:
        for k, v in data.items():
            print(f"{k}: {v}")
    return 0
