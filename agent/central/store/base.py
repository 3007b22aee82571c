"""The ingest store's logic, shared by every database: migrate, store a batch, advance marks, report.

Events are deduplicated by the database (UNIQUE (device, seq)); each device's contiguous
high-water mark is advanced in a separate transaction after the events are committed, so two
workers writing the same device at once always leave the right mark behind.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from agent.central.store.migrations import MIGRATIONS
from agent.central.store.rows import DeviceMark, EventRow, ManifestRow, QuarantineRow, reject_digest


@dataclass
class DeviceTally:
    """What one batch adds to a device's row in `devices` (merged into it by an upsert)."""

    site: str
    max_seq: int = 0  # highest new seq
    replayed: int = 0
    last_received_ms: int = 0
    conflicts: int = 0
    conflict_seq: int = 0  # lowest seq stored with another body (0: none)

    def row(self, device: str) -> tuple[str, str, int, int, int, int, int]:
        return (device, self.site, self.max_seq, self.replayed, self.last_received_ms,
                self.conflicts, self.conflict_seq)


class Store:
    """Backend-neutral logic; subclasses supply the connection and a few dialect details."""

    placeholder = "?"
    greatest = "MAX"
    least = "MIN"
    blob = "BLOB"
    id_column = "INTEGER PRIMARY KEY AUTOINCREMENT"

    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(self, url: str) -> None:
        self.conn: Any = None
        self.last_conflicts: list[EventRow] = []  # seq conflicts of the last store_batch

    # -- dialect hooks

    def _begin(self) -> None:
        raise NotImplementedError

    def _commit(self) -> None:
        self.conn.commit()

    def _rollback(self) -> None:
        self.conn.rollback()

    def _insert_events(self, cur: Any, rows: Sequence[EventRow]) -> set[tuple[str, int]]:
        raise NotImplementedError

    def retryable(self, exc: BaseException) -> bool:
        """A transient conflict between workers (deadlock, busy database): run the batch again."""
        return False

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # -- shared

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def _exec(self, text: str, params: Sequence[Any] = ()) -> Any:
        cur = self.conn.cursor()
        cur.execute(self.sql(text), params)
        return cur

    def migrate(self) -> int:
        """Apply every migration above the stored schema_version, each in its own transaction."""
        self._begin()
        try:
            self._exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            self._commit()
        except Exception:
            self._rollback()
            raise
        for version, statements in MIGRATIONS:
            self._begin()
            try:
                row = self._exec("SELECT MAX(version) FROM schema_version").fetchone()
                current = row[0] or 0
                if version <= current:
                    self._commit()
                    continue
                for stmt in statements:
                    self._exec(stmt.format(blob=self.blob, id=self.id_column))
                self._exec("INSERT INTO schema_version (version) VALUES (?)", (version,))
                self._commit()
            except Exception:
                self._rollback()
                raise
        return self.schema_version()

    def schema_version(self) -> int:
        row = self._exec("SELECT MAX(version) FROM schema_version").fetchone()
        self._commit()
        return int(row[0] or 0)

    def store_batch(
        self, events: Sequence[EventRow], quarantine: Sequence[QuarantineRow], raw_cap: int = 4096,
        manifests: Sequence[ManifestRow] = (),
    ) -> tuple[list[EventRow], list[EventRow]]:
        """Store a batch in ONE transaction: events (the unique constraint skips seqs already
        stored: the same body again is quarantined as 'replayed', another body under that seq as
        'seq-conflict', in the same transaction) and the quarantine rows.

        Returns (new events, replayed events); the conflicts are in self.last_conflicts.
        """
        self._begin()
        try:
            cur = self.conn.cursor()
            inserted = self._insert_events(cur, events) if events else set()
            # The body each skipped (or twice-sent) seq has in the database, to tell a replay from
            # a conflict. Keys in order, so concurrent workers read in the same order.
            counts: dict[tuple[str, int], int] = {}
            for e in events:
                counts[(e.device, e.seq)] = counts.get((e.device, e.seq), 0) + 1
            stored: dict[tuple[str, int], str] = {}
            for key in sorted(k for k, n in counts.items() if n > 1 or k not in inserted):
                row = self._exec("SELECT body FROM events WHERE device = ? AND seq = ?", key).fetchone()
                if row is not None:
                    stored[key] = row[0]
            new: list[EventRow] = []
            replayed: list[EventRow] = []
            conflicts: list[EventRow] = []
            for e in events:
                key = (e.device, e.seq)
                if key in inserted and stored.get(key, e.body) == e.body:
                    inserted.discard(key)  # a second copy in the same batch is a replay
                    new.append(e)
                elif stored.get(key, e.body) == e.body:
                    replayed.append(e)
                else:
                    conflicts.append(e)
            self.last_conflicts = conflicts
            rows = [*quarantine, *(
                QuarantineRow(e.received_ms, e.topic, e.device, "replayed",
                              f"seq {e.seq} of {e.device} is already stored", len(e.envelope),
                              e.envelope[:raw_cap], reject_digest(e.topic, e.envelope))
                for e in replayed), *(
                QuarantineRow(e.received_ms, e.topic, e.device, "seq-conflict",
                              f"seq {e.seq} of {e.device} is stored with another body (event "
                              f"{e.event_id[:32]}); not acked past it", len(e.envelope), e.envelope[:raw_cap],
                              reject_digest(e.topic, e.envelope))
                for e in conflicts)]
            if rows:
                # The same message again (a revoked device re-sending what is never acked, a retained
                # manifest at every restart) is one row whose copies and last_ms grow, not a new row.
                cur.executemany(
                    self.sql("INSERT INTO quarantine (received_ms, topic, device, reason, detail, size, raw, digest, "
                             "copies, last_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                             "ON CONFLICT (reason, digest) DO UPDATE SET copies = quarantine.copies + "
                             "excluded.copies, last_ms = excluded.last_ms"),
                    [(q.received_ms, q.topic, q.device, q.reason, q.detail, q.size, q.raw, q.digest or None,
                      q.copies, q.received_ms) for q in rows],
                )
            if manifests:
                cur.executemany(
                    self.sql("INSERT INTO manifests (sha256, device, site, received_ms, envelope) VALUES "
                             "(?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING"),
                    [(m.sha256, m.device, m.site, m.received_ms, m.envelope)
                     for m in sorted(manifests, key=lambda m: m.sha256)],
                )
            reports = [(e.device, e.dropped[0], e.dropped[1], e.seq) for e in new if e.dropped]
            if reports:
                cur.executemany(
                    self.sql("INSERT INTO dropped (device, first_seq, last_seq, reported_seq) VALUES "
                             "(?, ?, ?, ?) ON CONFLICT (device, first_seq, last_seq) DO NOTHING"),
                    reports,
                )
            covered = [(e.device, e.seq, e.ts_ms, *e.coverage) for e in new if e.coverage]
            if covered:
                cur.executemany(
                    self.sql("INSERT INTO coverage (device, seq, end_ms, interval_s, observed_s) VALUES "
                             "(?, ?, ?, ?, ?) ON CONFLICT (device, seq) DO NOTHING"),
                    covered,
                )
            per_device: dict[str, DeviceTally] = {}
            for e in new:
                t = per_device.setdefault(e.device, DeviceTally(e.site))
                t.max_seq = max(t.max_seq, e.seq)
                t.last_received_ms = max(t.last_received_ms, e.received_ms)
            for e in replayed:
                t = per_device.setdefault(e.device, DeviceTally(e.site))
                t.replayed += 1
                t.last_received_ms = max(t.last_received_ms, e.received_ms)
            for e in conflicts:
                t = per_device.setdefault(e.device, DeviceTally(e.site))
                t.last_received_ms = max(t.last_received_ms, e.received_ms)
                t.conflicts += 1
                t.conflict_seq = min(t.conflict_seq, e.seq) if t.conflict_seq else e.seq
            for device, tally in sorted(per_device.items()):
                cur.execute(
                    self.sql("INSERT INTO devices (device, site, max_seq, replayed, last_received_ms, "
                             "conflicts, conflict_seq) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET "
                             f"max_seq = {self.greatest}(devices.max_seq, excluded.max_seq), "
                             "replayed = devices.replayed + excluded.replayed, "
                             f"last_received_ms = {self.greatest}(devices.last_received_ms, "
                             "excluded.last_received_ms), "
                             "conflicts = devices.conflicts + excluded.conflicts, "
                             "conflict_seq = CASE WHEN devices.conflict_seq = 0 THEN excluded.conflict_seq "
                             "WHEN excluded.conflict_seq = 0 THEN devices.conflict_seq "
                             f"ELSE {self.least}(devices.conflict_seq, excluded.conflict_seq) END"),
                    tally.row(device),
                )
            self._commit()
        except Exception:
            self._rollback()
            raise
        return new, replayed

    def advance(self, devices: Iterable[str]) -> dict[str, DeviceMark]:
        """Move each device's contiguous mark over the seqs now stored; return the marks.

        Call after the batch is committed, so a mark never counts an uncommitted event and the
        later of two concurrent workers always sees both workers' events.
        """
        out: dict[str, DeviceMark] = {}
        self._begin()
        try:
            for device in sorted(set(devices)):
                row = self._exec(
                    "SELECT site, contiguous, max_seq, replayed, conflicts, conflict_seq FROM devices "
                    "WHERE device = ?", (device,)
                ).fetchone()
                if row is None:
                    continue
                site, start, max_seq, replayed = row[0], int(row[1]), int(row[2]), int(row[3])
                conflicts, conflict_seq = int(row[4]), int(row[5])
                ranges = [(int(a), int(b)) for a, b in self._exec(
                    "SELECT first_seq, last_seq FROM dropped WHERE device = ? AND last_seq > ?", (device, start)
                ).fetchall()]
                mark = skip_dropped(start, ranges)
                done = False
                while not done and mark < max_seq:
                    seqs = [int(r[0]) for r in self._exec(
                        "SELECT seq FROM events WHERE device = ? AND seq > ? ORDER BY seq LIMIT 1000",
                        (device, mark),
                    ).fetchall()]
                    for s in seqs:
                        mark = skip_dropped(mark, ranges)
                        if s <= mark:
                            continue
                        if s != mark + 1:
                            done = True
                            break
                        mark = s
                    else:
                        mark = skip_dropped(mark, ranges)
                        done = len(seqs) < 1000
                if mark > start:
                    self._exec(
                        f"UPDATE devices SET contiguous = {self.greatest}(contiguous, ?) WHERE device = ?",
                        (mark, device),
                    )
                out[device] = DeviceMark(device, site, mark, max_seq, replayed, conflicts, conflict_seq)
            self._commit()
        except Exception:
            self._rollback()
            raise
        return out

    # -- reading

    def dropped(self, device: str) -> list[tuple[int, int]]:
        rows = self._exec("SELECT first_seq, last_seq FROM dropped WHERE device = ? ORDER BY first_seq",
                          (device,)).fetchall()
        self._commit()
        return [(int(a), int(b)) for a, b in rows]

    def marks(self) -> list[DeviceMark]:
        rows = self._exec(
            "SELECT device, site, contiguous, max_seq, replayed, conflicts, conflict_seq FROM devices "
            "ORDER BY device"
        ).fetchall()
        self._commit()
        return [DeviceMark(r[0], r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6])) for r in rows]

    def clear_conflict(self, device: str) -> int:
        """An operator's decision after a seq conflict: ack the device normally again. Returns
        the conflict seq that was set (0: none; -1: the ingest has never stored anything of this device)."""
        self._begin()
        try:
            row = self._exec("SELECT conflict_seq FROM devices WHERE device = ?", (device,)).fetchone()
            self._exec("UPDATE devices SET conflict_seq = 0 WHERE device = ?", (device,))
            self._commit()
        except Exception:
            self._rollback()
            raise
        return int(row[0]) if row else -1

    def gaps(self, device: str, limit: int = 100) -> list[tuple[int, int]]:
        """Missing seq ranges (inclusive) between 1 and the highest stored seq."""
        rows = self._exec(
            "SELECT seq, next_seq FROM (SELECT seq, LEAD(seq) OVER (ORDER BY seq) AS next_seq "
            "FROM events WHERE device = ?) AS t WHERE next_seq > seq + 1 ORDER BY seq LIMIT ?",
            (device, limit),
        ).fetchall()
        first = self._exec("SELECT MIN(seq) FROM events WHERE device = ?", (device,)).fetchone()[0]
        self._commit()
        out = [(1, int(first) - 1)] if first is not None and int(first) > 1 else []
        return out + [(int(a) + 1, int(b) - 1) for a, b in rows]

    def event_counts(self) -> list[tuple[str, str, int]]:
        rows = self._exec(
            "SELECT device, type, COUNT(*) FROM events GROUP BY device, type ORDER BY device, type"
        ).fetchall()
        self._commit()
        return [(r[0], r[1], int(r[2])) for r in rows]

    def by_worker(self) -> dict[str, tuple[int, int, int]]:
        """{worker: (first received_ms, last received_ms, events)}: who in a group stored what."""
        rows = self._exec("SELECT worker, MIN(received_ms), MAX(received_ms), COUNT(*) FROM events "
                          "GROUP BY worker ORDER BY worker").fetchall()
        self._commit()
        return {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in rows}

    def replay_counts(self) -> dict[str, int]:
        """Events per device that the device made from recorded footage (source 'replay')."""
        rows = self._exec("SELECT device, COUNT(*) FROM events WHERE source = 'replay' GROUP BY device").fetchall()
        self._commit()
        return {r[0]: int(r[1]) for r in rows}

    def reject_counts(self) -> dict[str, int]:
        rows = self._exec("SELECT reason, SUM(copies) FROM quarantine GROUP BY reason ORDER BY reason").fetchall()
        self._commit()
        return {r[0]: int(r[1]) for r in rows}

    def events(self, device: str | None = None) -> list[tuple[str, int, bytes]]:
        """(device, seq, envelope) in order; for tests and audits."""
        where, params = ("WHERE device = ?", (device,)) if device else ("", ())
        rows = self._exec(f"SELECT device, seq, envelope FROM events {where} ORDER BY device, seq",
                          params).fetchall()
        self._commit()
        return [(r[0], int(r[1]), bytes(r[2])) for r in rows]

    def coverage(self) -> list[tuple[str, int, int, int]]:
        """(device, end_ms, interval_s, observed_s) of every count event that carried coverage."""
        rows = self._exec("SELECT device, end_ms, interval_s, observed_s FROM coverage "
                          "ORDER BY device, end_ms").fetchall()
        self._commit()
        return [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows]

    def manifest_count(self) -> int:
        n = self._exec("SELECT COUNT(*) FROM manifests").fetchone()[0]
        self._commit()
        return int(n)

    def manifests(self) -> list[ManifestRow]:
        rows = self._exec("SELECT sha256, device, site, received_ms, envelope FROM manifests "
                          "ORDER BY device, received_ms").fetchall()
        self._commit()
        return [ManifestRow(r[0], r[1], r[2], int(r[3]), bytes(r[4])) for r in rows]

    def quarantined(self) -> list[QuarantineRow]:
        rows = self._exec(
            "SELECT received_ms, topic, device, reason, detail, size, raw, digest, copies FROM quarantine ORDER BY id"
        ).fetchall()
        self._commit()
        return [QuarantineRow(int(r[0]), r[1], r[2], r[3], r[4], int(r[5]), bytes(r[6]), r[7] or "", int(r[8]))
                for r in rows]


def skip_dropped(mark: int, ranges: list[tuple[int, int]]) -> int:
    """Step the mark over dropped ranges that start at or before mark + 1."""
    moved = True
    while moved:
        moved = False
        for a, b in ranges:
            if a <= mark + 1 <= b:
                mark, moved = b, True
    return mark
