"""The ingest database: open_store() picks the backend (SQLite, PostgreSQL) by URL, migrates it.

Events are deduplicated by the database (UNIQUE (device, seq)); each device's contiguous
high-water mark is advanced in a separate transaction after the events are committed, so two
workers writing the same device at once always leave the right mark behind.
"""

from __future__ import annotations

import sqlite3

from agent.central.store.base import Store
from agent.central.store.postgres import PostgresStore
from agent.central.store.sqlite import SQLiteStore
from agent.errors import StateError, UsageError


def open_store(url: str, migrate: bool = True) -> Store:
    """A store for sqlite:///PATH or postgresql://..., migrated to the current schema."""
    store: Store
    if url.startswith("sqlite:///"):
        store = SQLiteStore(url)
    elif url.startswith(("postgresql://", "postgres://")):
        store = PostgresStore(url)
    else:
        raise UsageError(f"database URL {url!r} must start with sqlite:/// or postgresql://")
    if migrate:
        try:
            store.migrate()
        except Exception as exc:
            store.close()
            if isinstance(exc, (sqlite3.Error,)) or type(exc).__module__.startswith("psycopg"):
                raise StateError(f"cannot prepare the ingest database: {exc}") from None
            raise
    return store
