"""The ingest store on PostgreSQL (psycopg 3, imported only when chosen)."""

from __future__ import annotations

from typing import Any, Sequence

from agent.central.store.base import Store
from agent.central.store.rows import EVENT_COLUMNS, EventRow
from agent.errors import StateError, UsageError


class PostgresStore(Store):
    placeholder = "%s"
    greatest = "GREATEST"
    least = "LEAST"
    blob = "BYTEA"
    id_column = "BIGSERIAL PRIMARY KEY"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        try:
            import psycopg
        except ImportError:
            raise UsageError("PostgreSQL needs psycopg: pip install 'edge-agent[postgres]'") from None
        self.errors = (psycopg.Error,)
        try:
            self.conn = psycopg.connect(url, autocommit=False, connect_timeout=10)
        except psycopg.Error as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StateError(f"cannot connect to PostgreSQL: {msg}") from None

    def retryable(self, exc: BaseException) -> bool:
        import psycopg.errors

        return isinstance(exc, (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure))

    def _begin(self) -> None:
        pass  # psycopg opens a transaction with the first statement

    def _insert_events(self, cur: Any, rows: Sequence[EventRow]) -> set[tuple[str, int]]:
        # One round trip for the whole batch: arrays unnested, duplicates skipped, new rows returned.
        types = ("text", "bigint", "text", "text", "bigint", "bigint", "text", "text", "text",
                 "text", "bigint", "text", "text", "bytea", "text")
        columns = list(zip(*(r.values() for r in rows)))
        cur.execute(
            f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) SELECT * FROM unnest("
            + ", ".join(f"%s::{t}[]" for t in types)
            + ") ON CONFLICT (device, seq) DO NOTHING RETURNING device, seq",
            [list(c) for c in columns],
        )
        return {(d, int(s)) for d, s in cur.fetchall()}
