"""The ingest store on SQLite (WAL): the embedded default."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Sequence

from agent.central.store.base import Store
from agent.central.store.rows import EVENT_COLUMNS, EventRow
from agent.errors import StateError


class SQLiteStore(Store):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        path = Path(url[len("sqlite:///"):])
        if str(path) != ":memory:" and not path.parent.is_dir():
            # never made on the operator's behalf: a typo in the URL would start a second, empty
            # database beside the real one, and the ingest would store there without a word
            hint = ""
            if not path.is_absolute() and Path("/", path.parts[0]).is_dir():
                hint = f"; for the absolute path /{path} write four slashes: sqlite:////{path}"
            raise StateError(f"the folder {str(path.parent.absolute())!r} for the ingest database does not exist "
                             f"(from {url!r}){hint}; create it first or fix [ingest] database")
        self.path = path.absolute()
        try:
            self.conn = sqlite3.connect(
                str(path), isolation_level=None, timeout=30, check_same_thread=False
            )
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as exc:
            raise StateError(f"cannot open the ingest database {str(path)!r}: {exc}") from None
        except OSError as exc:  # the folder cannot be used (read-only, /proc, a file in the way)
            raise StateError(
                f"cannot open the ingest database {str(path)!r}: {exc.strerror or exc}"
            ) from None

    def retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)

    def _begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def _commit(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def _insert_events(self, cur: Any, rows: Sequence[EventRow]) -> set[tuple[str, int]]:
        sql = (f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES "
               f"({', '.join('?' * len(EVENT_COLUMNS))}) ON CONFLICT (device, seq) DO NOTHING")
        inserted = set()
        for r in rows:
            cur.execute(sql, r.values())
            if cur.rowcount == 1:
                inserted.add((r.device, r.seq))
        return inserted

    def _exec(self, text: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(text, params)
