"""`edge-agent bench NAME`: benchmarks that measure ratios in one run and end with one JSON line."""

from __future__ import annotations

import argparse
import importlib

# name -> module with register(parser) and run(args) -> dict; later issues add theirs here.
BENCHES = {
    "events": "agent.bench.events",
    "ingest": "agent.bench.ingest",
    "delivery": "agent.bench.delivery",
    "scene": "agent.bench.scene",
    "detect": "agent.bench.detect",
    "footprint": "agent.bench.footprint",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", help="benchmarks; each ends by printing one JSON line of figures")
    bsub = p.add_subparsers(dest="bench_name", metavar="NAME", required=True)
    for name, module in BENCHES.items():
        mod = importlib.import_module(module)
        q = bsub.add_parser(name, help=(mod.__doc__ or "").strip().splitlines()[0])
        mod.register(q)
        q.set_defaults(func=mod.main)
