"""A durable SQLite (WAL) outbox of exact envelope bytes; it also owns the seq and boot counters.

A seq is allocated and its envelope stored in one transaction, so after a power cut a seq is
either stored or was never handed out: never lost, never reused. Rows leave only by ack() or by
the drop policy when the outbox is full; every drop is counted (a total, plus exact contiguous runs
of dropped seqs that heartbeats report, one run per heartbeat), so a gap in seq is always explained.
A reported run is exactly the seqs dropped, never wider: the ingest steps its contiguous mark over it.
An append the disk has no room for is counted (lost_disk_full) and raises DiskFull; any other SQLite
failure becomes a one-line StateError.

Drop policy when a bound (rows or bytes) is exceeded: the least important priority goes first
(periodic heartbeats and counts, then events, alarms last), oldest seq first within a priority.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Callable

from agent.errors import StateError
from agent.private import private_dir, private_file, tighten

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    priority INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_priority ON outbox (priority, seq);
-- contiguous runs first..last of dropped seqs; carrier = 0 while unreported, else the seq of the
-- stored heartbeat that reports the run (the run goes when that heartbeat leaves by an ack, and
-- is pending again if the heartbeat is itself dropped)
CREATE TABLE IF NOT EXISTS drops (
    first INTEGER PRIMARY KEY,
    last INTEGER NOT NULL,
    carrier INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS drops_by_carrier ON drops (carrier);
"""

# The next row the drop policy removes: the oldest of the most droppable priority. Written as
# an equality on MAX(priority) so both steps are index searches; "ORDER BY priority DESC, seq"
# cannot use the (priority, seq) index and sorted the whole table on every over-limit append.
VICTIM = (
    "SELECT seq, LENGTH(envelope) FROM outbox"
    " WHERE priority = (SELECT MAX(priority) FROM outbox) ORDER BY seq LIMIT 1"
)

# meta keys of the earlier single-range report (one min..max range, wider than the drops)
_LEGACY_KEYS = ("drop_pending", "drop_first", "drop_last", "drop_new_first", "drop_new_last", "report_open",
                "report_count", "report_first", "report_last", "carrier_seq", "carrier_count", "carrier_first",
                "carrier_last")

# Lower number = more important; kept longest when the outbox is full.
PRIORITY_ALARM = 0
PRIORITY_EVENT = 1
PRIORITY_PERIODIC = 2


@dataclass(frozen=True)
class Row:
    seq: int
    topic: str
    priority: int
    envelope: bytes
    created_ms: int


@dataclass(frozen=True)
class Stats:
    rows: int
    size_bytes: int
    oldest_ms: int | None
    last_seq: int
    dropped: int
    boot: int
    last_ack: int = 0
    last_ack_ms: int = 0


@dataclass(frozen=True)
class DropReport:
    """A contiguous run of dropped seqs first..last (count == last - first + 1), or (0, 0, 0) for none."""

    count: int
    first: int
    last: int

    @classmethod
    def run(cls, first: int, last: int) -> DropReport:
        return cls(last - first + 1, first, last)


NO_DROPS = DropReport(0, 0, 0)


class DiskFull(StateError):
    """An append found no room on the disk: the event was never stored and never got a seq."""


class Outbox:
    """One connection shared by the frame loop and the sender thread, serialized by a lock."""

    def __init__(self, path: Path, max_rows: int = 0, max_bytes: int = 0) -> None:
        try:
            private_dir(path.parent)
            private_file(path)  # SQLite gives its -wal and -shm files the database file's mode
            for side in ("-wal", "-shm"):  # ... except ones an older version left world-readable
                tighten(path.with_name(path.name + side))
            self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
            # 1 KiB pages (new outboxes only): a commit writes whole pages, and at one event per
            # commit 4 KiB pages wrote 4x the bytes to the SD card (bench footprint)
            self.db.execute("PRAGMA page_size=1024")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
            rows, size = self.db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0) FROM outbox"
            ).fetchone()
            old = dict(self.db.execute(
                "SELECT key, value FROM meta WHERE key IN ('drop_pending', 'drop_first', 'drop_last')").fetchall())
            pending, first, last = (int(old.get(k, 0)) for k in ("drop_pending", "drop_first", "drop_last"))
            if pending and first and last - first + 1 == pending:  # the old range was exact: keep it as a run
                self.db.execute("INSERT OR IGNORE INTO drops (first, last, carrier) VALUES (?, ?, 0)", (first, last))
            elif pending:
                log.warning("the outbox held %d unreported drops in the old inexact format (seqs %d-%d); they stay "
                            "counted in 'dropped' but are not reported by seq", pending, first, last)
            self.db.execute(f"DELETE FROM meta WHERE key IN ({','.join('?' * len(_LEGACY_KEYS))})", _LEGACY_KEYS)
        except sqlite3.Error as exc:
            from agent.writable import not_writable  # SQLite (WAL) writes beside the database

            raise not_writable(Path(path).parent, "state folder",
                               f"cannot open the outbox {Path(path).name}: {exc}") from None
        self.path = path
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._rows = int(rows)
        self._bytes = int(size)
        self._lock = threading.RLock()
        self.lost_disk_full = 0  # appends lost for lack of space since this process started (no seq given)
        self._full = False  # in a disk-full episode (logged once when it starts, once when it ends)
        self.on_append: Callable[[], None] | None = None  # the sender's wake-up, called after commit

    def set_limits(self, max_rows: int, max_bytes: int) -> None:
        """Bounds for the drop policy (0: unbounded); applied on the next append."""
        self.max_rows, self.max_bytes = max_rows, max_bytes

    def _meta(self, key: str) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _set_meta(self, key: str, value: int) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def start_boot(self) -> int:
        """Count one more start of the agent and return the new boot number."""
        try:
            with self._txn():
                boot = self._meta("boot") + 1
                self._set_meta("boot", boot)
        except sqlite3.Error as exc:
            raise self._failed("count a start in", exc) from None
        return boot

    def append(
        self,
        build: Callable[[int], tuple[str, bytes]],
        priority: int = PRIORITY_EVENT,
        carries: DropReport | None = None,
    ) -> int:
        """Allocate the next seq, build (topic, envelope) for it and store both atomically.

        `carries`: the drop run the envelope reports (a heartbeat); it is settled in this same
        transaction. When the outbox is over a bound afterwards, rows are dropped by the policy in
        the same transaction and recorded as exact runs. DiskFull (counted) when there is no room.
        """
        try:
            with self._txn() as txn:
                seq = self._meta("seq") + 1
                topic, envelope = build(seq)
                self.db.execute(
                    "INSERT INTO outbox (seq, topic, priority, envelope, created_ms) VALUES (?, ?, ?, ?, ?)",
                    (seq, topic, priority, envelope, int(time.time() * 1000)),
                )
                self._set_meta("seq", seq)
                if carries is not None and carries.count:
                    self._settle(carries, seq)
                rows, size = self._rows + 1, self._bytes + len(envelope)
                dropped: list[int] = []
                while (self.max_rows and rows > self.max_rows) or (self.max_bytes and size > self.max_bytes):
                    victim = self.db.execute(VICTIM).fetchone()
                    self.db.execute("DELETE FROM outbox WHERE seq = ?", (victim[0],))
                    dropped.append(int(victim[0]))
                    rows, size = rows - 1, size - int(victim[1])
                if dropped:
                    self._count_drops(dropped)
                txn.after = lambda: self._set_counters(rows, size)
        except sqlite3.Error as exc:
            failure = self._failed("store an event in", exc)
            if isinstance(failure, DiskFull):
                self._lost_for_space()
            raise failure from None
        if self._full:
            self._full = False
            log.info("the outbox has room again; %d events were lost for lack of space", self.lost_disk_full)
        if self.on_append is not None:
            self.on_append()
        return seq

    def _set_counters(self, rows: int, size: int) -> None:
        self._rows, self._bytes = rows, size

    def _lost_for_space(self) -> None:
        """An event the full disk would not take: counted, and said once per episode."""
        self.lost_disk_full += 1
        if not self._full:
            self._full = True
            log.warning("the disk holding the outbox %s is full: events are lost (and counted in "
                        "lost_disk_full) until there is room", self.path)

    def _failed(self, doing: str, exc: sqlite3.Error) -> StateError:
        """Translate a SQLite error at the boundary: DiskFull or a one-line StateError."""
        code = getattr(exc, "sqlite_errorcode", None)
        if (code is not None and code & 0xFF == sqlite3.SQLITE_FULL) or (code is None and "full" in str(exc)):
            return DiskFull(f"no room to {doing} the outbox {str(self.path)!r}: {exc}")
        return StateError(f"cannot {doing} the outbox {str(self.path)!r}: {exc}")

    # -- drop runs

    def _count_drops(self, seqs: list[int]) -> None:
        self._set_meta("dropped", self._meta("dropped") + len(seqs))
        for seq in sorted(seqs):
            carried = self.db.execute("SELECT first, last FROM drops WHERE carrier = ?", (seq,)).fetchall()
            for first, last in carried:  # the heartbeat reporting these runs is gone: they are pending again
                self.db.execute("DELETE FROM drops WHERE first = ?", (first,))
                self._add_pending(int(first), int(last))
            self._add_pending(seq, seq)

    def _add_pending(self, first: int, last: int) -> None:
        """Record first..last as dropped and unreported, merged with pending runs it touches."""
        left = self.db.execute("SELECT first FROM drops WHERE carrier = 0 AND last = ?", (first - 1,)).fetchone()
        right = self.db.execute("SELECT last FROM drops WHERE carrier = 0 AND first = ?", (last + 1,)).fetchone()
        if left:
            self.db.execute("DELETE FROM drops WHERE first = ?", (left[0],))
            first = int(left[0])
        if right:
            self.db.execute("DELETE FROM drops WHERE first = ?", (last + 1,))
            last = int(right[0])
        self.db.execute("INSERT INTO drops (first, last, carrier) VALUES (?, ?, 0)", (first, last))

    def _settle(self, report: DropReport, carrier: int) -> None:
        """Mark the run a stored heartbeat reports as carried by it (the part of a pending run it covers)."""
        row = self.db.execute(
            "SELECT first, last FROM drops WHERE carrier = 0 AND first <= ? AND last >= ?",
            (report.first, report.last),
        ).fetchone()
        if row is None:  # already reported (a report is only ever exact, so a repeat is harmless)
            return
        first, last = int(row[0]), int(row[1])
        self.db.execute("DELETE FROM drops WHERE first = ?", (first,))
        if first < report.first:
            self.db.execute("INSERT INTO drops (first, last, carrier) VALUES (?, ?, 0)", (first, report.first - 1))
        self.db.execute("INSERT INTO drops (first, last, carrier) VALUES (?, ?, ?)",
                        (report.first, report.last, carrier))
        if report.last < last:
            self.db.execute("INSERT INTO drops (first, last, carrier) VALUES (?, ?, 0)", (report.last + 1, last))

    def pending_drops(self, limit: int = 0) -> list[DropReport]:
        """The unreported runs of dropped seqs, oldest first (at most limit if > 0): one heartbeat each.

        A run is settled in the transaction that stores the heartbeat carrying it (append(carries=)),
        so a crash in between loses nothing; if that heartbeat is later dropped by the policy, the run
        is pending again and a following heartbeat reports it.
        """
        with self._lock:
            try:
                rows = self.db.execute(
                    "SELECT first, last FROM drops WHERE carrier = 0 ORDER BY first LIMIT ?", (limit or -1,)
                ).fetchall()
            except sqlite3.Error as exc:
                raise self._failed("read the drops of", exc) from None
        return [DropReport.run(int(a), int(b)) for a, b in rows]

    def drop_report(self) -> DropReport:
        """A summary of the unreported drops for `edge-agent outbox stats`: their total and the span
        from the first to the last; the span may hold stored rows too (the runs are in pending_drops)."""
        runs = self.pending_drops()
        if not runs:
            return NO_DROPS
        return DropReport(sum(r.count for r in runs), runs[0].first, runs[-1].last)

    def peek(self, limit: int = 100, after_seq: int = 0) -> list[Row]:
        """Rows in seq order (the order they are sent in), starting after after_seq."""
        with self._lock:
            cur = self.db.execute(
                "SELECT seq, topic, priority, envelope, created_ms FROM outbox WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (after_seq, limit),
            )
            return [Row(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in cur.fetchall()]

    def ack(self, seqs: list[int]) -> int:
        """Remove acknowledged rows (the broker's PUBACKs), in one transaction."""
        if not seqs:
            return 0
        try:
            with self._txn() as txn:
                gone = 0
                size = 0
                for i in range(0, len(seqs), 500):
                    chunk = seqs[i : i + 500]
                    marks = ",".join("?" * len(chunk))
                    n, b = self.db.execute(
                        f"SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0) FROM outbox WHERE seq IN ({marks})",
                        chunk,
                    ).fetchone()
                    self.db.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", chunk)
                    self.db.execute(f"DELETE FROM drops WHERE carrier IN ({marks})", chunk)  # reports delivered
                    gone, size = gone + int(n), size + int(b)
                self._set_meta("last_ack", max(max(seqs), self._meta("last_ack")))
                self._set_meta("last_ack_ms", int(time.time() * 1000))
                txn.after = lambda: self._set_counters(self._rows - gone, self._bytes - size)
        except sqlite3.Error as exc:
            raise self._failed("delete acknowledged rows from", exc) from None
        return gone

    def ack_upto(self, seq: int) -> int:
        """Remove every row with a seq <= seq (the ingest's highest contiguous seq stored)."""
        try:
            with self._txn() as txn:
                n, b = self.db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0) FROM outbox WHERE seq <= ?", (seq,)
                ).fetchone()
                self.db.execute("DELETE FROM outbox WHERE seq <= ?", (seq,))
                self.db.execute("DELETE FROM drops WHERE carrier > 0 AND carrier <= ?", (seq,))
                self._set_meta("last_ack", max(seq, self._meta("last_ack")))
                self._set_meta("last_ack_ms", int(time.time() * 1000))
                gone, size = int(n), int(b)
                txn.after = lambda: self._set_counters(self._rows - gone, self._bytes - size)
        except sqlite3.Error as exc:
            raise self._failed("delete acknowledged rows from", exc) from None
        return gone

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def size_bytes(self) -> int:
        """Total size of the queued envelopes (kept in step with every append, ack and drop)."""
        return self._bytes

    def stats(self) -> Stats:
        with self._lock:
            rows, size, oldest = self.db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0), MIN(created_ms) FROM outbox"
            ).fetchone()
            return Stats(
                rows, size, oldest, self._meta("seq"), self._meta("dropped"), self._meta("boot"),
                self._meta("last_ack"), self._meta("last_ack_ms"),
            )

    def oldest_ms(self) -> int | None:
        with self._lock:
            row = self.db.execute("SELECT MIN(created_ms) FROM outbox").fetchone()
            return int(row[0]) if row and row[0] is not None else None

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def _txn(self) -> _Txn:
        return _Txn(self.db, self._lock)


class _Txn:
    """BEGIN IMMEDIATE ... COMMIT under the outbox lock; `after` runs once committed, still under the lock
    (so the cached counters never disagree with the table, whichever thread appends or acks)."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self.db = db
        self.lock = lock
        self.after: Callable[[], None] | None = None

    def __enter__(self) -> _Txn:
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc_type is None:
                try:
                    self.db.execute("COMMIT")
                except BaseException:
                    self._rollback()  # e.g. SQLITE_FULL at COMMIT: leave no transaction open
                    raise
                if self.after is not None:
                    self.after()
            else:
                self._rollback()
        finally:
            self.lock.release()

    def _rollback(self) -> None:
        if self.db.in_transaction:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite may have rolled back by itself (SQLITE_FULL); nothing is left to undo
