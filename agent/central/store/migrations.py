"""The ingest database's schema: one migration list for SQLite and PostgreSQL."""

from __future__ import annotations

# (version, statements). {blob} and {id} differ per backend; everything else is shared SQL.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        """CREATE TABLE events (
            device TEXT NOT NULL,
            seq BIGINT NOT NULL,
            site TEXT NOT NULL,
            type TEXT NOT NULL,
            boot BIGINT NOT NULL,
            ts_ms BIGINT NOT NULL,
            event_id TEXT NOT NULL,
            rule TEXT,
            label TEXT,
            topic TEXT NOT NULL,
            received_ms BIGINT NOT NULL,
            worker TEXT NOT NULL,
            body TEXT NOT NULL,
            envelope {blob} NOT NULL,
            CONSTRAINT events_device_seq UNIQUE (device, seq)
        )""",
        "CREATE INDEX events_by_type ON events (device, type)",
        """CREATE TABLE devices (
            device TEXT PRIMARY KEY,
            site TEXT NOT NULL,
            contiguous BIGINT NOT NULL DEFAULT 0,
            max_seq BIGINT NOT NULL DEFAULT 0,
            replayed BIGINT NOT NULL DEFAULT 0,
            last_received_ms BIGINT NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE quarantine (
            id {id},
            received_ms BIGINT NOT NULL,
            topic TEXT NOT NULL,
            device TEXT,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            size BIGINT NOT NULL,
            raw {blob} NOT NULL
        )""",
        "CREATE INDEX quarantine_by_reason ON quarantine (reason)",
    ]),
    # Seq ranges a device reports it dropped (heartbeat values dropped_seq_first/last, signed by
    # the device): they will never arrive, so the contiguous mark may step over them.
    (2, [
        """CREATE TABLE dropped (
            device TEXT NOT NULL,
            first_seq BIGINT NOT NULL,
            last_seq BIGINT NOT NULL,
            reported_seq BIGINT NOT NULL,
            CONSTRAINT dropped_range UNIQUE (device, first_seq, last_seq)
        )""",
    ]),
    # Seq conflicts: a validly signed event whose seq is already stored with another body (a
    # re-imaged device restarting at seq 1 under an old device id). conflict_seq is the lowest
    # such seq; the device is never acked at or past it until an operator clears it.
    (3, [
        "ALTER TABLE devices ADD COLUMN conflicts BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE devices ADD COLUMN conflict_seq BIGINT NOT NULL DEFAULT 0",
    ]),
    # Signed privacy manifests (the device's retained .../manifest), verified, by body SHA-256:
    # what the events' "manifest" field cites. A retained copy received again is not a reject.
    (4, [
        """CREATE TABLE manifests (
            sha256 TEXT PRIMARY KEY,
            device TEXT NOT NULL,
            site TEXT NOT NULL,
            received_ms BIGINT NOT NULL,
            envelope {blob} NOT NULL
        )""",
    ]),
    # Events made from recorded footage (`edge-agent replay`, signed `source: replay` in the body):
    # stored, deduped and acked like live ones, but counted apart so they are never taken for live.
    (5, [
        "ALTER TABLE events ADD COLUMN source TEXT NOT NULL DEFAULT 'live'",
    ]),
]
# Coverage of count events (values observed_s and interval_s, signed by the device): one row per
# stored count event that carries them, so `ingest stats` can say how much of each hour a device
# was really looking. Filled for events stored from this version on.
MIGRATIONS.append((6, [
    """CREATE TABLE coverage (
        device TEXT NOT NULL,
        seq BIGINT NOT NULL,
        end_ms BIGINT NOT NULL,
        interval_s BIGINT NOT NULL,
        observed_s BIGINT NOT NULL,
        CONSTRAINT coverage_device_seq UNIQUE (device, seq)
    )""",
    "CREATE INDEX coverage_by_time ON coverage (device, end_ms)",
]))
# The same rejected message again (a revoked or unknown device re-sends what the ingest never acks,
# every resend_s, for ever; a retained manifest comes back at each restart) is one quarantine row
# whose copies and last_ms grow: the table grows with distinct messages, not with time. Rows from
# before keep digest NULL (never equal), so they stay as they were.
MIGRATIONS.append((7, [
    "ALTER TABLE quarantine ADD COLUMN digest TEXT",
    "ALTER TABLE quarantine ADD COLUMN copies BIGINT NOT NULL DEFAULT 1",
    "ALTER TABLE quarantine ADD COLUMN last_ms BIGINT NOT NULL DEFAULT 0",
    "CREATE UNIQUE INDEX quarantine_by_digest ON quarantine (reason, digest)",
]))
SCHEMA_VERSION = MIGRATIONS[-1][0]
