"""What remote configuration this device runs, in SQLite: version, settings, applied digests.

The version, the merged settings and the change's digest are written in one transaction, so after a
power cut the device runs either the old version with the old settings or the new with the new: an
older or replayed change stays refused across restarts.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from agent.errors import StateError
from agent.device.private import private_dir, private_file, tighten

STATE_FILE = "remote.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS current (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    digest TEXT NOT NULL,
    settings TEXT NOT NULL,
    file_geometry TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS applied (
    digest TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    applied_ms INTEGER NOT NULL,
    envelope BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class Current:
    version: int = 0
    digest: str = ""
    settings: Mapping[str, Any] = field(
        default_factory=dict
    )  # every remote setting in force, merged
    file_geometry: str = ""  # the config file's zones and lines when settings were last written ("": unknown)


class RemoteState:
    """The remote-configuration state file (state_dir/remote.db), 0600."""

    def __init__(self, path: Path) -> None:
        try:
            private_dir(path.parent)
            private_file(path)
            for side in ("-wal", "-shm"):
                tighten(path.with_name(path.name + side))
            self.db = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=30
            )
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
            columns = {row[1] for row in self.db.execute("PRAGMA table_info(current)")}
            if "file_geometry" not in columns:  # a state file written before this column existed
                self.db.execute("ALTER TABLE current ADD COLUMN file_geometry TEXT NOT NULL DEFAULT ''")
        except sqlite3.Error as exc:
            raise StateError(
                f"cannot open the remote configuration state {str(path)!r}: {exc}"
            ) from None
        self.path = path
        self._lock = threading.Lock()

    def current(self) -> Current:
        try:
            row = self.db.execute(
                "SELECT version, digest, settings, file_geometry FROM current WHERE id = 1"
            ).fetchone()
        except sqlite3.Error as exc:
            raise StateError(f"cannot read {str(self.path)!r}: {exc}") from None
        if row is None:
            return Current()
        return Current(int(row[0]), str(row[1]), json.loads(row[2]), str(row[3]))

    def was_applied(self, digest: str) -> bool:
        try:
            row = self.db.execute("SELECT 1 FROM applied WHERE digest = ?", (digest,)).fetchone()
        except sqlite3.Error as exc:
            raise StateError(f"cannot read {str(self.path)!r}: {exc}") from None
        return row is not None

    def commit(
        self, version: int, digest: str, settings: Mapping[str, Any], envelope: bytes, now_ms: int,
        file_geometry: str = "",
    ) -> None:
        """Record version, merged settings and digest together; refuse to go backwards."""
        with self._transaction("record remote configuration"):
            row = self.db.execute("SELECT version FROM current WHERE id = 1").fetchone()
            if row is not None and int(row[0]) >= version:
                raise StateError(f"remote configuration version {version} is not above {row[0]}")
            self.db.execute(
                "INSERT INTO current (id, version, digest, settings, file_geometry) "
                "VALUES (1, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET version = excluded.version, "
                "digest = excluded.digest, settings = excluded.settings, "
                "file_geometry = excluded.file_geometry",
                (version, digest, json.dumps(dict(settings), sort_keys=True), file_geometry),
            )
            self.db.execute(
                "INSERT INTO applied (digest, version, applied_ms, envelope) VALUES (?, ?, ?, ?)",
                (digest, version, now_ms, envelope),
            )

    def local_geometry(self, file_geometry: str, supersede: tuple[str, ...]) -> list[str]:
        """The config file's zones and lines are now file_geometry; remote settings named in
        supersede are set aside (the file's are newer). Version and digest stay, so older changes
        stay refused. Returns the settings set aside; nothing is written before any remote change."""
        dropped: list[str] = []
        with self._transaction("record the config file's geometry"):
            row = self.db.execute("SELECT settings FROM current WHERE id = 1").fetchone()
            if row is not None:
                settings = json.loads(row[0])
                dropped = sorted(k for k in supersede if k in settings)
                for key in dropped:
                    del settings[key]
                self.db.execute(
                    "UPDATE current SET settings = ?, file_geometry = ? WHERE id = 1",
                    (json.dumps(settings, sort_keys=True), file_geometry),
                )
        return dropped

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[None]:
        """One write transaction, rolled back on any error; SQLite's errors as one StateError."""
        with self._lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    yield
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
                self.db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StateError(f"cannot {what} in {str(self.path)!r}: {exc}") from None

    def close(self) -> None:
        self.db.close()
