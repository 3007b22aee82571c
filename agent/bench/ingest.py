"""Ingest events/s per worker (verified, stored) into SQLite and PostgreSQL, versus verify alone."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from agent.bench import emit
from agent.errors import UsageError

if TYPE_CHECKING:
    from agent.protocol.enrolment import Enrolment


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--events", type=int, default=20000, help="valid events per backend (default 20000)"
    )
    p.add_argument("--devices", type=int, default=8, help="devices the events come from")
    p.add_argument(
        "--batch", type=int, default=500, help="messages per transaction (ingest.batch_size)"
    )
    p.add_argument(
        "--no-postgres", action="store_true", help="SQLite only (no PostgreSQL is started)"
    )


Stream = list[tuple[str, bytes]]  # (topic, envelope)


def make_stream(
    devices: int, events: int, prefix: str = "edge/v1"
) -> tuple[list[Enrolment], Stream]:
    """Enrolment records and (topic, envelope) pairs of valid events, seqs interleaved by device."""
    from agent.protocol.body import Event, encode
    from agent.protocol.enrolment import enrolment
    from agent.protocol.dsse import EVENT_PAYLOAD_TYPE, SigningKey

    keys = [SigningKey.generate() for _ in range(devices)]
    records = [enrolment(k, f"bench-{i}", "bench-site") for i, k in enumerate(keys)]
    stream: Stream = []
    ts = int(time.time() * 1000)
    for n in range(events):
        i, seq = n % devices, n // devices + 1
        ev = Event(
            id=f"{n:032x}",
            device=f"bench-{i}",
            site="bench-site",
            seq=seq,
            boot=1,
            ts_ms=ts + n,
            type="count",
            model="ssd_mobilenet_v1_coco_quant",
            manifest="0" * 64,
            rule="door",
            label="person",
            direction="in",
            values={"count": 1, "entries": 1},
        )
        stream.append(
            (
                f"{prefix}/bench-site/bench-{i}/event/count",
                keys[i].envelope(EVENT_PAYLOAD_TYPE, encode(ev)),
            )
        )
    return records, stream


def run_pipeline(
    url: str, records: list[Enrolment], stream: Stream, batch: int
) -> tuple[float, int]:
    from agent.central.ingest.classify import Classifier
    from agent.central.ingest.batch import IngestPipeline, Message
    from agent.central.store import open_store
    from agent.central.verify import Verifier

    store = open_store(url)
    pipe = IngestPipeline(Classifier(Verifier(records)), store)
    now = int(time.time() * 1000)
    msgs = [Message(t, p, now) for t, p in stream]
    t0 = time.perf_counter()
    for i in range(0, len(msgs), batch):
        pipe.process(msgs[i:i + batch])
    elapsed = time.perf_counter() - t0
    stored = len(store.events())
    store.close()
    return elapsed, stored


def verify_only(records: list[Enrolment], stream: Stream) -> float:
    from agent.central.verify import Verifier

    v = Verifier(records)
    t0 = time.perf_counter()
    for topic, payload in stream:
        v.verify(payload, topic.split("/")[3])
    return time.perf_counter() - t0


def main(args: argparse.Namespace) -> int:
    if args.events < 1 or args.devices < 1 or args.batch < 1:
        raise UsageError("--events, --devices and --batch must be >= 1")
    records, stream = make_stream(args.devices, args.events)
    n = len(stream)
    figures: dict[str, object] = {
        "bench": "ingest",
        "events": n,
        "devices": args.devices,
        "batch": args.batch,
        "target_sqlite_eps": 2000,
    }
    base = verify_only(records, stream)
    figures["verify_only_eps"] = round(n / base)
    with tempfile.TemporaryDirectory() as tmp:
        elapsed, stored = run_pipeline(
            f"sqlite:///{Path(tmp) / 'ingest.db'}", records, stream, args.batch
        )
    if stored != n:
        raise RuntimeError(f"sqlite stored {stored} of {n} events")
    figures["sqlite_eps"] = round(n / elapsed)
    figures["sqlite_vs_verify_only"] = round(base / elapsed, 3)
    print(f"sqlite: {n} events verified and stored in {elapsed:.2f} s "
          f"({n / elapsed:.0f}/s, one worker)")
    if not args.no_postgres:
        from agent.bench.pgtemp import start_postgres

        pg = start_postgres(durable=True)
        try:
            elapsed, stored = run_pipeline(pg.create_database("bench"), records, stream, args.batch)
        finally:
            pg.stop()
        if stored != n:
            raise RuntimeError(f"postgresql stored {stored} of {n} events")
        figures["postgresql_eps"] = round(n / elapsed)
        figures["postgresql_vs_verify_only"] = round(base / elapsed, 3)
        print(f"postgresql: {n} events verified and stored in {elapsed:.2f} s "
              f"({n / elapsed:.0f}/s, one worker)")
    print(f"verify alone: {n / base:.0f}/s")
    emit(figures)
    return 0
