"""Ingest fixtures: a database URL per backend (SQLite file, or a fresh database on a real PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.postgres import fresh_database, postgres  # noqa: F401  (session fixture)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ingest.db'}"
    return fresh_database(request.getfixturevalue("postgres"))
