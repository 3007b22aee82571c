"""`edge-agent ingest --config FILE` (a worker) and `edge-agent ingest stats` (the report)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from agent.central import config
from agent.central.config import IngestConfig
from agent.errors import UsageError

if TYPE_CHECKING:
    from agent.central.store.base import Store


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ingest", help="central ingest: verify, dedupe, store and ack device events")
    p.add_argument("--config", metavar="FILE", help="TOML config with an [ingest] section")
    p.add_argument("--database", metavar="URL", help="override ingest.database (sqlite:///PATH, postgresql://...)")
    p.set_defaults(func=cmd_ingest)
    isub = p.add_subparsers(dest="ingest_command", metavar="[ACTION]")
    q = isub.add_parser("stats", help="events per device and type, gaps, rejects by reason")
    q.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="TOML config with [ingest]")
    q.add_argument("--database", metavar="URL", default=argparse.SUPPRESS, help="override ingest.database")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.add_argument("--uncertain-below", metavar="PCT", type=int, default=75,
                   help="mark hours whose coverage is under PCT percent as uncertain (default 75)")
    q.set_defaults(func=cmd_stats)
    c = isub.add_parser("clear-conflict", help="ack a device again after its seq conflict was dealt with")
    c.add_argument("device", help="device id")
    c.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="TOML config with [ingest]")
    c.add_argument("--database", metavar="URL", default=argparse.SUPPRESS, help="override ingest.database")
    c.set_defaults(func=cmd_clear_conflict)


def ingest_config(args: argparse.Namespace) -> IngestConfig:
    cfg = config.load(getattr(args, "config", None))
    if getattr(args, "database", None):
        cfg = config.replace(cfg, database=args.database)
    return cfg


def cmd_ingest(args: argparse.Namespace) -> int:
    from agent.central.ingest.worker import IngestWorker

    cfg = ingest_config(args)
    if not cfg.key and not getattr(args, "config", None):
        raise UsageError("ingest needs its config: give --config FILE with an [ingest] section (key, registry, "
                         "database, broker); README, 'Central ingest'")
    worker = IngestWorker.from_config(cfg)
    worker.install_signals()
    worker.run()
    return 0


def existing_store(args: argparse.Namespace) -> Store:
    """The configured store; an SQLite file must exist (reports never create a database)."""
    from agent.central.store import open_store

    url = ingest_config(args).database
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        # A missing file means a wrong --config or --database, not an empty ingest.
        raise UsageError(f"no ingest database at {url[len('sqlite:///'):]!r}; "
                         "give --config FILE (with [ingest] database) or --database URL")
    return open_store(url)


def cmd_clear_conflict(args: argparse.Namespace) -> int:
    store = existing_store(args)
    try:
        seq = store.clear_conflict(args.device)
    finally:
        store.close()
    if seq < 0:
        raise UsageError(f"the ingest has stored nothing of device {args.device!r}; check the id "
                         f"(`edge-agent ingest stats` lists the devices)")
    if not seq:
        raise UsageError(f"device {args.device!r} has no seq conflict")
    print(f"{args.device}: seq conflict from seq {seq} cleared; acks resume at the next batch "
          "(the conflicting envelopes stay in the quarantine table)")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from agent.central.ingest.stats import lines, report

    if not 0 <= args.uncertain_below <= 100:
        raise UsageError("--uncertain-below must be a percentage, 0 to 100")
    store = existing_store(args)
    try:
        rep = report(store, args.uncertain_below)
    finally:
        store.close()
    if args.json:
        print(json.dumps(rep, sort_keys=True))
    else:
        print("\n".join(lines(rep)))
    return 0
