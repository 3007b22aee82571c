"""`ingest stats` shows coverage per device per hour and marks hours under the threshold uncertain."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import cli

from agent.assembly import open_outbox, publishing
from agent.central.ingest.batch import IngestPipeline, Message
from agent.central.ingest.classify import Classifier
from agent.central.ingest.stats import hourly_coverage, report
from agent.central.store import open_store
from agent.central.verify import Verifier
from agent.config import Config, DeviceConfig
from agent.protocol.dsse import SigningKey
from agent.protocol.enrolment import enrolment
from agent.types import Observation

HOUR = 3_600_000
T0 = 1_764_000_000_000 - 1_764_000_000_000 % HOUR  # the start of a UTC hour


def count(t_ms: int, observed: int, covered: int) -> Observation:
    values = {"entries": 1, "exits": 1, "interval_s": 60, "observed_s": observed, "blind_covered_s": covered,
              "blind_camera_lost_s": 0, "blind_low_fps_s": 0, "blind_overload_s": 0, "blind_not_running_s": 0}
    return Observation("count", "door", "person", t_ms / 1000, values)


def test_hourly_coverage_spreads_intervals_over_hours() -> None:
    rows = [("d", T0 + 30_000, 60, 60), ("d", T0 + HOUR + 60_000, 60, 0)]  # the first straddles T0
    got = hourly_coverage(rows, 75)["d"]
    assert [(h["hour_ms"], h["coverage_pct"], h["uncertain"]) for h in got] == [
        (T0 - HOUR, 100, False), (T0, 100, False), (T0 + HOUR, 0, True)]


def test_stats_per_device_per_hour_with_uncertain_hours(tmp_path: Path, db_url: str) -> None:
    key = SigningKey.generate()
    cfg = Config(device=DeviceConfig("cam-1", "lab", state_dir=str(tmp_path)))
    now = [T0]
    pub = publishing(cfg, key, {"v": 1}, "m", outbox=open_outbox(cfg), clock_ms=lambda: now[0],
                     check_manifest=False)
    for minute in range(1, 121):  # hour 1 fully observed, hour 2 half covered
        now[0] = T0 + minute * 60_000
        observed = 60 if minute <= 60 else 30
        pub.emitter.emit([count(now[0], observed, 60 - observed)])
    rows = pub.outbox.peek(1000)
    pub.close(0)
    store = open_store(db_url)
    try:
        pipe = IngestPipeline(Classifier(Verifier([enrolment(key, "cam-1", "lab")]), worker="w"), store)
        pipe.process([Message(r.topic, r.envelope, 1) for r in rows])
        assert pipe.totals.stored == 120
        hours = report(store)["devices"]["cam-1"]["coverage_by_hour"]
        assert [(h["hour_ms"], h["coverage_pct"], h["uncertain"]) for h in hours] == [
            (T0, 100, False), (T0 + HOUR, 50, True)]
        assert [h["uncertain"] for h in report(store, 40)["devices"]["cam-1"]["coverage_by_hour"]] == [False, False]
    finally:
        store.close()
    if db_url.startswith("sqlite"):
        r = cli("ingest", "stats", "--database", db_url)
        assert r.returncode == 0, r.stderr
        line = next(ln for ln in r.stdout.splitlines() if "coverage by hour" in ln)
        assert "uncertain below 75%" in line and " 100%," in line and " 50% UNCERTAIN" in line
        doc = json.loads(cli("ingest", "stats", "--database", db_url, "--json", "--uncertain-below", "40").stdout)
        assert doc["uncertain_below_pct"] == 40
        assert cli("ingest", "stats", "--database", db_url, "--uncertain-below", "140").returncode == 2
