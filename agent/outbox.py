"""A durable SQLite (WAL) outbox of exact envelope bytes; it also owns the seq and boot counters.

A seq is allocated and its envelope stored in one transaction, so after a power cut a seq is
either stored or was never handed out: never lost, never reused. Rows leave only by ack() or by
the drop policy when the outbox is full; every drop is counted (total, plus the pending count and
seq range that the next heartbeat reports), so a gap in seq is always explained.

Drop policy when a bound (rows or bytes) is exceeded: the least important priority goes first
(periodic heartbeats and counts, then events, alarms last), oldest seq first within a priority.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from agent.errors import StateError

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
"""

# Lower number = more important; kept longest when the outbox is full.
PRIORITY_ALARM = 0
PRIORITY_EVENT = 1
PRIORITY_PERIODIC = 2

HEARTBEAT_SUFFIX = "/event/heartbeat"


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
    bytes: int
    oldest_ms: int | None
    last_seq: int
    dropped: int
    boot: int
    last_ack: int = 0
    last_ack_ms: int = 0


@dataclass(frozen=True)
class DropReport:
    """Drops not yet reported in a heartbeat: how many, and the seq range they fall in (0 if none)."""

    count: int
    first: int
    last: int


class Outbox:
    """One connection shared by the frame loop and the sender thread, serialized by a lock."""

    def __init__(self, path: Path, max_rows: int = 0, max_bytes: int = 0) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
            rows, size = self.db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0) FROM outbox"
            ).fetchone()
        except sqlite3.Error as exc:
            raise StateError(f"cannot open the outbox {str(path)!r}: {exc}") from None
        self.path = path
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._rows = int(rows)
        self._bytes = int(size)
        self._lock = threading.RLock()
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
        with self._txn():
            boot = self._meta("boot") + 1
            self._set_meta("boot", boot)
        return boot

    def append(self, build: Callable[[int], tuple[str, bytes]], priority: int = PRIORITY_EVENT) -> int:
        """Allocate the next seq, build (topic, envelope) for it and store both atomically.

        When the outbox is over a bound afterwards, rows are dropped by the policy in the same
        transaction and counted.
        """
        with self._txn() as txn:
            seq = self._meta("seq") + 1
            topic, envelope = build(seq)
            self.db.execute(
                "INSERT INTO outbox (seq, topic, priority, envelope, created_ms) VALUES (?, ?, ?, ?, ?)",
                (seq, topic, priority, envelope, int(time.time() * 1000)),
            )
            self._set_meta("seq", seq)
            if topic.endswith(HEARTBEAT_SUFFIX) and self._meta("report_open"):
                self._settle_report(seq)
            rows, size = self._rows + 1, self._bytes + len(envelope)
            dropped: list[int] = []
            while (self.max_rows and rows > self.max_rows) or (self.max_bytes and size > self.max_bytes):
                victim = self.db.execute(
                    "SELECT seq, LENGTH(envelope) FROM outbox ORDER BY priority DESC, seq LIMIT 1"
                ).fetchone()
                self.db.execute("DELETE FROM outbox WHERE seq = ?", (victim[0],))
                dropped.append(int(victim[0]))
                rows, size = rows - 1, size - int(victim[1])
            if dropped:
                self._count_drops(dropped)
            txn.on_commit = (rows, size)
        self._rows, self._bytes = txn.on_commit
        if self.on_append is not None:
            self.on_append()
        return seq

    def _count_drops(self, seqs: list[int]) -> None:
        self._set_meta("dropped", self._meta("dropped") + len(seqs))
        carrier = self._meta("carrier_seq")
        if carrier and carrier in seqs:
            # the stored heartbeat that reported earlier drops is itself dropped: report them again
            self._set_meta("carrier_seq", 0)
            self._pend(self._meta("carrier_count"), self._meta("carrier_first"), self._meta("carrier_last"))
        self._pend(len(seqs), min(seqs), max(seqs), also_new=True)

    def _pend(self, count: int, lo: int, hi: int, also_new: bool = False) -> None:
        if not count:
            return
        self._set_meta("drop_pending", self._meta("drop_pending") + count)
        keys = (("drop_first", "drop_last"), ("drop_new_first", "drop_new_last")) if also_new else (
            ("drop_first", "drop_last"),)
        for first_key, last_key in keys:
            cur = self._meta(first_key)
            self._set_meta(first_key, min(cur, lo) if cur else lo)
            self._set_meta(last_key, max(self._meta(last_key), hi))

    def peek_drops(self) -> DropReport:
        """The drops the heartbeat being built should report.

        They are settled in the transaction that stores the next heartbeat (a topic ending in
        /event/heartbeat), so a crash in between loses nothing; if that heartbeat is later dropped
        by the policy, its drops become pending again and the following heartbeat reports them.
        """
        with self._txn():
            report = DropReport(self._meta("drop_pending"), self._meta("drop_first"), self._meta("drop_last"))
            for key, value in (("report_open", 1), ("report_count", report.count), ("report_first", report.first),
                               ("report_last", report.last), ("drop_new_first", 0), ("drop_new_last", 0)):
                self._set_meta(key, value)
        return report

    def _settle_report(self, carrier: int) -> None:
        count = self._meta("report_count")
        left = max(0, self._meta("drop_pending") - count)
        self._set_meta("drop_pending", left)
        self._set_meta("drop_first", self._meta("drop_new_first") if left else 0)
        self._set_meta("drop_last", self._meta("drop_new_last") if left else 0)
        for key, value in (("report_open", 0), ("carrier_seq", carrier if count else 0), ("carrier_count", count),
                           ("carrier_first", self._meta("report_first")), ("carrier_last", self._meta("report_last"))):
            self._set_meta(key, value)

    def drop_report(self) -> DropReport:
        """The unreported drops, read only (for `edge-agent outbox stats`)."""
        with self._lock:
            return DropReport(self._meta("drop_pending"), self._meta("drop_first"), self._meta("drop_last"))

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
                gone, size = gone + int(n), size + int(b)
            self._set_meta("last_ack", max(max(seqs), self._meta("last_ack")))
            self._set_meta("last_ack_ms", int(time.time() * 1000))
            txn.on_commit = (gone, size)
        gone, size = txn.on_commit
        self._rows, self._bytes = self._rows - gone, self._bytes - size
        return gone

    def ack_upto(self, seq: int) -> int:
        """Remove every row with a seq <= seq (the ingest's highest contiguous seq stored)."""
        with self._txn() as txn:
            n, b = self.db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0) FROM outbox WHERE seq <= ?", (seq,)
            ).fetchone()
            self.db.execute("DELETE FROM outbox WHERE seq <= ?", (seq,))
            self._set_meta("last_ack", max(seq, self._meta("last_ack")))
            self._set_meta("last_ack_ms", int(time.time() * 1000))
            txn.on_commit = (int(n), int(b))
        gone, size = txn.on_commit
        self._rows, self._bytes = self._rows - gone, self._bytes - size
        return gone

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def bytes(self) -> int:
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

    def all_envelopes(self) -> list[bytes]:
        with self._lock:
            return [bytes(r[0]) for r in self.db.execute("SELECT envelope FROM outbox ORDER BY seq")]

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def _txn(self) -> _Txn:
        return _Txn(self.db, self._lock)


class _Txn:
    """BEGIN IMMEDIATE ... COMMIT under the outbox lock; on_commit carries values to apply after."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self.db = db
        self.lock = lock
        self.on_commit: tuple[int, int] = (0, 0)

    def __enter__(self) -> _Txn:
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
        try:
            if exc_type is None:
                self.db.execute("COMMIT")
            else:
                self.db.execute("ROLLBACK")
        finally:
            self.lock.release()
