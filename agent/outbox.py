"""A durable SQLite (WAL) outbox of exact envelope bytes; it also owns the seq and boot counters.

A seq is allocated and its envelope stored in one transaction, so after a power cut a seq is
either stored or was never handed out: never lost, never reused. Rows leave only by ack().
"""

from __future__ import annotations

import sqlite3
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


class Outbox:
    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open the outbox {str(path)!r}: {exc}") from None
        self.path = path

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
        """Allocate the next seq, build (topic, envelope) for it and store both atomically."""
        with self._txn():
            seq = self._meta("seq") + 1
            topic, envelope = build(seq)
            self.db.execute(
                "INSERT INTO outbox (seq, topic, priority, envelope, created_ms) VALUES (?, ?, ?, ?, ?)",
                (seq, topic, priority, envelope, int(time.time() * 1000)),
            )
            self._set_meta("seq", seq)
        return seq

    def peek(self, limit: int = 100, after_seq: int = 0) -> list[Row]:
        """Oldest rows first by priority, then seq."""
        cur = self.db.execute(
            "SELECT seq, topic, priority, envelope, created_ms FROM outbox WHERE seq > ? "
            "ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [Row(*r) for r in cur.fetchall()]

    def ack(self, seqs: list[int]) -> int:
        """Remove acknowledged rows."""
        with self._txn():
            cur = self.db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
        return cur.rowcount

    def ack_upto(self, seq: int) -> int:
        with self._txn():
            cur = self.db.execute("DELETE FROM outbox WHERE seq <= ?", (seq,))
            self._set_meta("last_ack", max(seq, self._meta("last_ack")))
        return cur.rowcount

    def stats(self) -> Stats:
        rows, size, oldest = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0), MIN(created_ms) FROM outbox"
        ).fetchone()
        return Stats(rows, size, oldest, self._meta("seq"), self._meta("dropped"), self._meta("boot"))

    def all_envelopes(self) -> list[bytes]:
        return [bytes(r[0]) for r in self.db.execute("SELECT envelope FROM outbox ORDER BY seq")]

    def close(self) -> None:
        self.db.close()

    def _txn(self):  # type: ignore[no-untyped-def]
        return _Txn(self.db)


class _Txn:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")
