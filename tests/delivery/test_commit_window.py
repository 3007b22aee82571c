"""The outbox's group-commit window (outbox.commit_interval_s): what a power cut may cost, and that it
is never silent. A child process holds appends in its window and is SIGKILLed; the next start never
reuses a seq anyone could have seen, re-sends acked rows whose deletes were still waiting (the
ingest keeps one copy), counts the unclean stop in the heartbeat, and the coverage alive mark only
ever follows what was committed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from agent.central.ingest.batch import IngestPipeline, Message
from agent.central.ingest.classify import Classifier
from agent.central.store import open_store
from agent.central.verify import Verifier
from agent.config import HealthConfig
from agent.device.coverage import Coverage, CoveredCounts
from agent.delivery.heartbeat import Health
from agent.delivery.outbox import PRIORITY_ALARM, Outbox
from agent.protocol.dsse import SigningKey
from agent.protocol.enrolment import enrolment
from agent.types import Observation
from tests.ingest.ingest_streams import SITE, topic

ROOT = Path(__file__).resolve().parents[2]
SEED = b"w" * 32

# The child: commits seqs 1-3, acks them (their deletes wait for the window), then appends two more
# into the window; reports what it did on stdout and blocks on stdin until it is killed.
CHILD = """
import json, sys
from pathlib import Path
from agent.delivery.outbox import Outbox
from agent.protocol.body import encode
from agent.protocol.dsse import EVENT_PAYLOAD_TYPE, SigningKey
from tests.ingest.ingest_streams import event, topic

key = SigningKey.from_seed(b"w" * 32)
ob = Outbox(Path(sys.argv[1]), commit_interval_s=3600.0)
ob.start_boot()
build = lambda seq: (topic("cam-1"), key.envelope(EVENT_PAYLOAD_TYPE, encode(event("cam-1", seq))))
committed = [ob.append(build) for _ in range(3)]
ob.commit()
sent = [r.envelope.decode() for r in ob.peek(10)]
ob.ack(committed)  # PUBACKs: hidden at once, deleted with the next commit
if sys.argv[2] == "emptied":
    ob.commit()  # the table is empty now: only meta remembers the counter
held = [ob.append(build) for _ in range(2)]
print(json.dumps({"committed": committed, "held": held, "sent": sent, "peek": [r.seq for r in ob.peek(10)],
                  "rows": ob.rows}), flush=True)
sys.stdin.read()
"""


def crash_mid_window(path: Path, mode: str) -> dict[str, list[int]]:
    """Run the child until it has filled its window, then SIGKILL it (a power cut)."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), mode], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    line = proc.stdout.readline()  # waits on the child's own report
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert line, "the child died before filling its window"
    report: dict[str, list[int]] = json.loads(line)
    return report


def test_a_crash_mid_window_never_reuses_a_seq_anyone_saw(tmp_path: Path) -> None:
    for mode in ("acked", "emptied"):
        path = tmp_path / mode / "outbox.db"
        seen = crash_mid_window(path, mode)
        assert seen["committed"] == [1, 2, 3] and seen["held"] == [4, 5]
        assert seen["peek"] == [] and seen["rows"] == 2  # held rows are counted but never visible to the sender

        ob = Outbox(path, commit_interval_s=3600.0)
        ob.start_boot()
        assert ob.previous_unclean and ob.unclean_stops == 1
        # 4 and 5 died with the window (never stored, never peeked, so never sent): handing 4 out again
        # reuses no seq anyone saw; 1-3 (committed, sent) are never handed out again, stored or not
        assert ob.append(lambda s: ("t", b"after")) == 4
        ob.commit()
        left = [r.seq for r in ob.peek(10)]
        assert left == ([1, 2, 3, 4] if mode == "acked" else [4])  # acked deletes were lost with the window
        ob.close()


def test_acked_rows_sent_again_after_a_crash_are_kept_once_by_the_ingest(tmp_path: Path) -> None:
    seen = crash_mid_window(tmp_path / "outbox.db", "acked")
    key = SigningKey.from_seed(SEED)
    store = open_store(f"sqlite:///{tmp_path / 'ingest.db'}")
    pipe = IngestPipeline(Classifier(Verifier([enrolment(key, "cam-1", SITE)])), store)
    first = pipe.process(Message(topic("cam-1"), e.encode(), 1) for e in seen["sent"])
    assert first.stored == 3

    ob = Outbox(tmp_path / "outbox.db", commit_interval_s=3600.0)
    ob.start_boot()
    again = ob.peek(10)  # what the sender publishes after the restart: the acked rows once more
    assert [r.seq for r in again] == [1, 2, 3]
    second = pipe.process(Message(r.topic, r.envelope, 2) for r in again)
    assert second.stored == 0 and second.quarantined == {"replayed": 3}
    assert [e for _, _, e in store.events("cam-1")] == [e.encode() for e in seen["sent"]]
    store.close()
    ob.close()


def test_the_unclean_stop_is_in_the_heartbeat_and_an_orderly_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    crash_mid_window(path, "acked")
    ob = Outbox(path, commit_interval_s=5.0)
    ob.start_boot()
    beat = Health(ob, HealthConfig(heartbeat_s=60.0)).heartbeat(0.0)
    assert beat.values["unclean_stops"] == 1
    ob.close()  # orderly: commits and marks the clean stop
    ob = Outbox(path, commit_interval_s=5.0)
    ob.start_boot()
    assert not ob.previous_unclean
    assert Health(ob, HealthConfig(heartbeat_s=60.0)).heartbeat(0.0).values["unclean_stops"] == 1
    ob.close()


def test_the_window_commits_when_due_and_alarms_at_once(tmp_path: Path) -> None:
    now = [0.0]
    woken: list[int] = []
    ob = Outbox(tmp_path / "o.db", commit_interval_s=10.0, clock=lambda: now[0], autocommit=False)
    ob.on_append = lambda: woken.append(ob.rows)
    ob.append(lambda s: ("t", b"event"))
    assert ob.peek() == [] and ob.commit_due() == 10.0 and woken == []
    now[0] = 10.0
    ob.commit_due()
    assert [r.seq for r in ob.peek()] == [1] and woken == [1]
    ob.append(lambda s: ("t", b"event"))
    ob.append(lambda s: ("t", b"alarm"), PRIORITY_ALARM)  # never held back: commits the window with it
    assert [r.seq for r in ob.peek()] == [1, 2, 3] and ob.uncommitted == 0
    ob.ack([1, 2])  # hidden at once, deleted with the next commit
    assert [r.seq for r in ob.peek()] == [3] and ob.rows == 1 and ob.stats().last_ack == 2
    ob.close()


def test_the_coverage_alive_mark_follows_the_commit_of_its_count(tmp_path: Path) -> None:
    """With a window, the alive mark is written only once the count event it follows is stored, so a
    power cut before that commit leaves the older mark and the next boot counts the gap as not_running."""
    now = [0.0]
    ob = Outbox(tmp_path / "o.db", commit_interval_s=10.0, clock=lambda: now[0], autocommit=False)
    alive = tmp_path / "alive_ms"

    class Interval:  # a counting rule that closes an interval on every update
        def update(self, tracks: object, now_s: float) -> list[Observation]:
            return [Observation("count", "door", "person", now_s, {"count": 0, "interval_s": 60})]

    rule = CoveredCounts(Interval(), Coverage(), alive, lambda: 1234, durable=ob.when_committed)
    counts = rule.update([], 60.0)
    assert not alive.exists()  # nothing is stored yet
    for _ in counts:
        ob.append(lambda s: ("t", b"count"))
    ob.end_batch()  # the emitter's batch that stored the count ended, the window still holds it
    assert not alive.exists()
    now[0] = 10.0
    ob.commit_due()
    assert alive.read_text().strip() == "1234"
    ob.close()


def test_an_orderly_stop_commits_the_window(tmp_path: Path) -> None:
    from agent.assembly import publishing
    from agent.config import Config, DeviceConfig, OutboxConfig

    cfg = Config(device=DeviceConfig("cam-1", SITE, state_dir=str(tmp_path)),
                 outbox=OutboxConfig(commit_interval_s=60.0))
    pub = publishing(cfg, SigningKey.from_seed(SEED), {"v": 1, "device": "cam-1"}, "m", check_manifest=False)
    seqs = pub.emitter.emit([Observation("line_crossing", "door", "person", 0.0, {"count": 1}, "in")])
    assert pub.outbox.peek() == [] and pub.outbox.uncommitted == 1
    pub.stop(0)  # SIGTERM's path in `run`: the window is committed before the sender flushes
    assert [r.seq for r in pub.outbox.peek()] == seqs
    pub.close(0)
    ob = Outbox(tmp_path / "outbox.db")
    ob.start_boot()
    assert not ob.previous_unclean and ob.unclean_stops == 0
    ob.close()


def test_events_a_person_acts_on_are_not_held_by_the_window(tmp_path: Path) -> None:
    """A loitering start or an unattended object goes out at once; a crossing may wait for the window."""
    from agent.delivery.emitter import Emitter
    from agent.privacy.anonymizer import Anonymizer, Identity

    ob = Outbox(tmp_path / "o.db", commit_interval_s=60.0, clock=lambda: 0.0, autocommit=False)
    ident = Identity("cam-1", SITE, 1, "m", "ab" * 32)
    emitter = Emitter(Anonymizer(ident, ("person", "backpack"), 0, 4), SigningKey.from_seed(SEED), ob,
                      clock_ms=lambda: 1_700_000_000_000)
    emitter.emit([Observation("line_crossing", "door", "person", 1.0, {"count": 1}, direction="in")])
    assert ob.peek() == [] and ob.uncommitted == 1  # waits for the window
    emitter.emit([Observation("unattended_object", "desk", "backpack", 2.0, {"stationary_s": 30},
                              position=(0.5, 0.5))])
    assert [r.seq for r in ob.peek()] == [1, 2] and ob.uncommitted == 0  # committed with it, at once
    ob.close()
