"""A durable SQLite (WAL) outbox of exact envelope bytes; it also owns the seq and boot counters.

A seq is allocated and its envelope stored in one transaction (commit_interval_s = 0, the default),
so after a power cut a seq is either stored or was never handed out: never lost, never reused.
The counter is max(highest stored seq, meta 'seq') + 1: meta 'seq' is written only by the
transactions that remove rows (acks, drops), so an append commits just its own pages.
With a group-commit window (commit_interval_s > 0, the Raspberry Pi profiles: SD cards wear out),
appends wait in memory and are committed together at most that many seconds later; only committed
rows are ever peeked (so published), so a seq lost with the window at a power cut was never seen by
anyone and the next boot may hand it out again. Such a stop is not silent: the outbox marks itself
running at start_boot and clean at close(), and the next boot counts `unclean_stops`.
With a window, deletes after acks wait for the window's commit too (or DELETE_BATCH rows): acked
rows are hidden from peek at once; after a crash they are sent again, a duplicate the ingest drops
by (device, seq). Rows leave only by ack() or by
the drop policy when the outbox is full; every drop is counted (a total, plus exact contiguous runs
of dropped seqs that heartbeats report, one run per heartbeat), so a gap in seq is always explained.
A reported run is exactly the seqs dropped, never wider: the ingest steps its contiguous mark over it.
An append the disk has no room for is counted (lost_disk_full) and raises DiskFull; any other SQLite
failure becomes a one-line StateError.

One process owns an outbox: Outbox holds an exclusive lock (flock on <name>.lock beside it, 0600)
for its life, since the seq counter lives in memory; a second writer gets one StateError line
(OutboxBusy). `Outbox(path, readonly=True)` reads beside the owner (`outbox stats`) and writes nothing.

Drop policy when a bound (rows or bytes) is exceeded: the least important priority goes first
(periodic heartbeats and counts, then events, alarms last), oldest seq first within a priority.
"""

from __future__ import annotations

import builtins
import fcntl
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Callable

from agent.errors import StateError
from agent.device.private import private_dir, private_file, tighten

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

# Acked rows are deleted at most DELETE_BATCH at a time (a bound on what peek must skip)
PAGE_SIZE = 1024
# WAL pages before a checkpoint copies them into the database: a checkpoint writes every page the
# WAL touched once more, so a longer WAL (about 10 MB) writes the queue's few pages back less often
CHECKPOINT_PAGES = 10000
# last_ack / last_ack_ms (for `outbox stats`) are written with the meta page when it is written
# anyway, else at most this old: one meta page per minute instead of one per delete commit
ACK_SAVE_S = 60.0
DELETE_BATCH = 500
# With a commit window: appends held in memory while the disk refuses commits (full) before new
# ones are refused (counted in lost_disk_full, no seq given)
MAX_UNCOMMITTED = 1000

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


class OutboxBusy(StateError):
    """Another Outbox (another process: `edge-agent run`, `replay`, `setup-view`) holds this outbox."""


def lock_path(path: Path) -> Path:
    """The lock file beside the outbox: state_dir/outbox.lock for state_dir/outbox.db."""
    return path.with_suffix(".lock")


def _take_lock(path: Path) -> IO[bytes]:
    """The open lock file, exclusively locked until it is closed (or the process ends); OutboxBusy
    when another Outbox holds it. The file names the holder's pid for the message."""
    lock = lock_path(path)
    fh = os.fdopen(os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600), "r+b")
    try:
        tighten(lock)
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = fh.read(32).decode("ascii", "replace").strip()
            by = f"process {holder}" if holder.isdigit() else "another process"
            raise OutboxBusy(f"the outbox {str(path)!r} is in use by {by} (is `edge-agent run` running?); "
                             f"one process writes an outbox at a time: stop the other first") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n".encode())
        fh.flush()
    except BaseException:
        fh.close()
        raise
    return fh


class DiskFull(StateError):
    """An append found no room on the disk: the event was never stored and never got a seq."""


@dataclass(frozen=True)
class _Pending:
    seq: int
    topic: str
    priority: int
    envelope: bytes
    created_ms: int
    carries: DropReport | None


class Outbox:
    """One connection shared by the frame loop, the sender thread and (with a commit window or
    deferred deletes) a small committer thread, serialized by a lock.

    commit_interval_s: 0 commits each append at once; > 0 holds appends in memory up to that long and
    commits them together (commit() or close() commits at once); an alarm commits the window at once.
    delete_interval_s (default: the commit window): acked rows are deleted at most that much later,
    with the window's commit (0: at once; deferring them without a window costs more than it saves,
    since a table of several rows rewrites its interior page on every append). clock: monotonic
    seconds (the bench passes a fake one with autocommit=False and calls commit_due() itself)."""

    def __init__(self, path: Path, max_rows: int = 0, max_bytes: int = 0, commit_interval_s: float = 0.0,
                 delete_interval_s: float | None = None, clock: Callable[[], float] = time.monotonic,
                 autocommit: bool = True, readonly: bool = False) -> None:
        self.readonly = readonly
        self._lockfile: IO[bytes] | None = None
        try:
            if readonly:
                self.db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                                          check_same_thread=False, timeout=30)
            else:
                private_dir(path.parent)
                self._lockfile = _take_lock(path)  # before any write: one process owns the outbox
                self._open(path)
            rows, size, top = self.db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0), COALESCE(MAX(seq), 0) FROM outbox"
            ).fetchone()
            self.path = path
            # the highest seq ever committed: the stored rows, or meta 'seq' kept by the removals
            self._committed_seq = max(int(top), self._meta("seq"))
        except (sqlite3.Error, OSError) as exc:
            self._unlock()
            from agent.device.writable import not_writable  # SQLite (WAL) writes beside the database

            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            folder = Path(path).parent
            if isinstance(exc, OSError):
                code = exc.errno
            else:  # SQLite says no errno: the folder's own probe finds the cause (read-only disk, ...)
                from agent.device.writable import probe_writable

                found = probe_writable(folder)
                code = found.errno if found is not None else None
            raise not_writable(folder, "state folder", f"cannot open the outbox {Path(path).name}: {why}",
                               code=code) from None
        except BaseException:
            self._unlock()
            raise
        self.path = path
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.commit_interval_s = max(0.0, commit_interval_s)
        self.delete_interval_s = self.commit_interval_s if delete_interval_s is None else max(0.0, delete_interval_s)
        self.clock = clock
        self.autocommit = autocommit
        self._rows = int(rows)  # committed rows in the table (acked ones not yet deleted included)
        self._bytes = int(size)
        self._lock = threading.RLock()
        self._work = threading.Condition(self._lock)  # wakes the committer thread
        self._next_seq = self._committed_seq  # the last seq handed out (committed or waiting in memory)
        self._pending: list[_Pending] = []  # appends waiting for the window's commit
        self._pending_bytes = 0
        self._pending_since: float | None = None
        self._del: dict[int, int] = {}  # acked seq -> envelope size, deleted at the next delete commit
        self._del_upto = 0  # every stored row <= this is acked (ingest acks), deleted at the next commit
        self._upto_dirty = False  # ... and some may still be stored
        self._gone_rows = 0  # rows (and bytes) acked but not yet deleted: hidden from rows/bytes/peek
        self._gone_bytes = 0
        self._del_since: float | None = None
        self._last_ack = 0  # the newest ack (seq, wall ms) not yet written to meta
        self._last_ack_ms = 0
        self._ack_saved_at = clock()
        self._marks: list[Callable[[], None]] = []  # when_committed() callbacks waiting for the batch end
        self._after_commit: list[Callable[[], None]] = []  # ... waiting for the window's commit
        self._committer: threading.Thread | None = None
        self._closing = False
        self._booted = False
        self._commit_failing = False
        self.unclean_stops = 0  # runs that ended without close() over the outbox's life (start_boot)
        self.previous_unclean = False  # the run before this one ended without close()
        self.lost_disk_full = 0  # appends lost for lack of space since this process started (no seq given)
        self._full = False  # in a disk-full episode (logged once when it starts, once when it ends)
        self.on_append: Callable[[], None] | None = None  # the sender's wake-up, called after a commit

    def _open(self, path: Path) -> None:
        """Open (and set up, or bring up to date) the database for writing, under the lock."""
        private_file(path)  # SQLite gives its -wal and -shm files the database file's mode
        for side in ("-wal", "-shm"):  # ... except ones an older version left world-readable
            tighten(path.with_name(path.name + side))
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        # 1 KiB pages (new outboxes only): a commit writes whole pages, and at one event per
        # commit 4 KiB pages wrote 4x the bytes to the SD card (bench footprint)
        self.db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA secure_delete=FAST")
        self.db.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
        self.db.executescript(SCHEMA)
        old = dict(self.db.execute(
            "SELECT key, value FROM meta WHERE key IN ('drop_pending', 'drop_first', 'drop_last')").fetchall())
        pending, first, last = (int(old.get(k, 0)) for k in ("drop_pending", "drop_first", "drop_last"))
        if pending and first and last - first + 1 == pending:  # the old range was exact: keep it as a run
            self.db.execute("INSERT OR IGNORE INTO drops (first, last, carrier) VALUES (?, ?, 0)", (first, last))
        elif pending:
            log.warning("the outbox held %d unreported drops in the old inexact format (seqs %d-%d); they stay "
                        "counted in 'dropped' but are not reported by seq", pending, first, last)
        self.db.execute(f"DELETE FROM meta WHERE key IN ({','.join('?' * len(_LEGACY_KEYS))})", _LEGACY_KEYS)

    def _unlock(self) -> None:
        """Let another process have the outbox (close, or a failed open)."""
        if self._lockfile is not None:
            self._lockfile.close()
            self._lockfile = None

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
        """Count one more start of the agent and return the new boot number.

        Also marks the outbox running until close(): a start that finds the mark of a run that never
        closed (power cut, SIGKILL, a crash) counts it in unclean_stops (a total over the device's life,
        in the heartbeat), since with a commit window the events of its last window are lost."""
        try:
            with self._txn():
                boot = self._meta("boot") + 1
                self._set_meta("boot", boot)
                self.previous_unclean = self._meta("running") == 1
                self.unclean_stops = self._meta("unclean_stops") + int(self.previous_unclean)
                if self.previous_unclean:
                    self._set_meta("unclean_stops", self.unclean_stops)
                self._set_meta("running", 1)
        except sqlite3.Error as exc:
            raise self._failed("count a start in", exc) from None
        self._booted = True
        if self.previous_unclean:
            log.warning("the previous run ended without an orderly stop (power cut, kill or crash); events of "
                        "its last commit window (outbox.commit_interval_s) may be lost: counted in "
                        "unclean_stops (%d so far)", self.unclean_stops)
        return boot

    def append(
        self,
        build: Callable[[int], tuple[str, bytes]],
        priority: int = PRIORITY_EVENT,
        carries: DropReport | None = None,
        urgent: bool = False,
    ) -> int:
        """Allocate the next seq, build (topic, envelope) for it and store both.

        Without a commit window, atomically and durably before returning. With one, the row waits in
        memory for the window's commit (never peeked, so never sent, before it).
        `carries`: the drop run the envelope reports (a heartbeat); it is settled in the transaction
        that stores it. When the outbox is over a bound, rows are dropped by the policy in that same
        transaction and recorded as exact runs. DiskFull (counted) when there is no room.
        """
        with self._lock:
            if self.commit_interval_s > 0 and len(self._pending) >= MAX_UNCOMMITTED:
                self._lost_for_space()  # the disk refuses the window's commits: no seq for this one
                raise DiskFull(f"no room to store an event in the outbox {str(self.path)!r}: "
                               f"{len(self._pending)} events wait for room")
            seq = self._next_seq + 1
            topic, envelope = build(seq)  # an exception here hands out nothing
            self._pending.append(_Pending(seq, topic, priority, envelope, int(time.time() * 1000), carries))
            self._pending_bytes += len(envelope)
            self._next_seq = seq
            if self.commit_interval_s > 0:
                if self._pending_since is None:
                    self._pending_since = self.clock()
                if priority != PRIORITY_ALARM and not urgent:
                    self._kick()
                    return seq
                try:  # alarms and urgent events are never held back: the window is committed with them
                    self._commit_locked(deletes=False)
                except StateError as exc:  # the alarm waits in the window like the rest, retried
                    self._kick()
                    if not self._commit_failing:
                        self._commit_failing = True
                        log.warning("%s; the outbox retries (its rows wait in memory)", exc)
                    return seq
            else:
                try:
                    self._commit_locked(deletes=False)
                except DiskFull:
                    self._lost_for_space()
                    raise
        self._woken()
        return seq

    def when_committed(self, fn: Callable[[], None]) -> None:
        """Run fn once everything appended up to the end of the current emit batch is durable
        (the coverage's alive mark: a power cut loses the mark with the events it describes)."""
        with self._lock:
            self._marks.append(fn)

    def end_batch(self) -> None:
        """The emitter finished a batch: marks registered before it wait for the commit that stores it."""
        with self._lock:
            marks, self._marks = self._marks, []
            if not self._pending:
                ready = marks
            else:
                self._after_commit.extend(marks)
                ready = []
        for fn in ready:
            fn()

    def commit(self) -> None:
        """Commit the appends waiting in the window and the deferred deletes now (orderly stop)."""
        with self._lock:
            if not self._pending and not self._has_deletes():
                return
            self._commit_locked(deletes=True)
        self._woken()

    def commit_due(self) -> float | None:
        """Commit if the window or the delete deferral has run out; the next deadline (clock seconds),
        or None when nothing waits. Called by the committer thread (or the bench, with its clock)."""
        with self._lock:
            now = self.clock()
            due = self._deadline()
            if due is None or now < due:
                return due
            try:
                self._commit_locked(deletes=True)
            except StateError as exc:  # kept in memory; retried after the window (or at close)
                if isinstance(exc, DiskFull) and self._pending:
                    self._lost_for_space(count=False)
                if not self._commit_failing:
                    self._commit_failing = True
                    log.warning("%s; the outbox retries (its rows wait in memory)", exc)
                self._pending_since = now if self._pending else None
                self._del_since = now if self._has_deletes() else None
                return self._deadline()
            if self._commit_failing:
                self._commit_failing = False
                log.info("the outbox commits again")
        self._woken()
        return self._deadline()

    def _deadline(self) -> float | None:
        times = []
        if self._pending_since is not None:
            times.append(self._pending_since + self.commit_interval_s)
        if self._del_since is not None:
            times.append(self._del_since + self.delete_interval_s)
        return min(times) if times else None

    def _has_deletes(self) -> bool:
        return bool(self._del) or self._upto_dirty

    def _kick(self) -> None:
        """Start the committer thread if needed and wake it (under the lock)."""
        if not self.autocommit or self._closing:
            return
        if self._committer is None or not self._committer.is_alive():
            self._committer = threading.Thread(target=self._commit_loop, name="edge-agent-outbox", daemon=True)
            self._committer.start()
        self._work.notify()

    def _commit_loop(self) -> None:
        while True:
            try:
                due = self.commit_due()
            except Exception:  # never end the thread: the rows stay in memory until close()
                log.exception("the outbox's committer failed; it tries again")
                due = self.clock() + max(1.0, self.commit_interval_s)
            with self._lock:
                if self._closing:
                    return
                due = self._deadline()
                self._work.wait(None if due is None else max(0.001, due - self.clock()))
                if self._closing_now():  # close() may have set it while wait() let the lock go
                    return

    def _closing_now(self) -> bool:
        return self._closing

    def _woken(self) -> None:
        """Tell the sender that committed rows may be waiting (outside the lock)."""
        if self.on_append is not None:
            self.on_append()

    def _commit_locked(self, deletes: bool, final: bool = False) -> None:
        """One transaction: the due deletes (all, when `deletes` or a bound needs room), then the
        waiting appends with the drop policy. Raises StateError/DiskFull; on failure nothing changes
        but a lone durable append is forgotten (its seq handed out again)."""
        pending = self._pending
        over = (self.max_rows and self._rows + len(pending) > self.max_rows) or (
            self.max_bytes and self._bytes + self._pending_bytes > self.max_bytes)
        deletes = self._has_deletes() and (deletes or bool(over))  # acked rows make room before any drop
        try:
            with self._txn():
                rows, size = self._rows, self._bytes
                removed = False
                if deletes:
                    rows, size = self._apply_deletes(rows, size)
                    removed = True
                dropped: list[int] = []
                for p in pending:
                    self.db.execute(
                        "INSERT INTO outbox (seq, topic, priority, envelope, created_ms) VALUES (?, ?, ?, ?, ?)",
                        (p.seq, p.topic, p.priority, p.envelope, p.created_ms),
                    )
                    if p.carries is not None and p.carries.count:
                        self._settle(p.carries, p.seq)
                    rows, size = rows + 1, size + len(p.envelope)
                    while (self.max_rows and rows > self.max_rows) or (self.max_bytes and size > self.max_bytes):
                        victim = self.db.execute(VICTIM).fetchone()
                        self.db.execute("DELETE FROM outbox WHERE seq = ?", (victim[0],))
                        dropped.append(int(victim[0]))
                        rows, size = rows - 1, size - int(victim[1])
                if dropped:
                    self._count_drops(dropped)
                    removed = True
                top = pending[-1].seq if pending else self._committed_seq
                stored_top = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()[0]
                keep_seq = removed and int(stored_top) < top  # the table no longer shows the counter
                if keep_seq:
                    self._set_meta("seq", top)
                now = self.clock()
                save_ack = bool(self._last_ack) and (keep_seq or final or now - self._ack_saved_at >= ACK_SAVE_S)
                if save_ack:  # the meta page is written anyway, or the saved ack is getting old
                    self._set_meta("last_ack", max(self._last_ack, self._meta("last_ack")))
                    self._set_meta("last_ack_ms", self._last_ack_ms)
        except sqlite3.Error as exc:
            if self.commit_interval_s <= 0 and pending:  # the durable append failed: nothing handed out
                self._next_seq = pending[0].seq - 1
                self._pending, self._pending_bytes = [], 0
            raise self._failed("store an event in" if pending else "delete acknowledged rows from", exc) from None
        self._rows, self._bytes = rows, size
        self._committed_seq = max(self._committed_seq, top)
        if deletes:
            self._del.clear()
            self._upto_dirty = False
            self._gone_rows = self._gone_bytes = 0
            self._del_since = None
        if save_ack:
            self._last_ack = self._last_ack_ms = 0
            self._ack_saved_at = now
        self._pending, self._pending_bytes, self._pending_since = [], 0, None
        if self._full and pending:
            self._full = False
            log.info("the outbox has room again; %d events were lost for lack of space", self.lost_disk_full)
        marks, self._after_commit = self._after_commit, []
        for fn in marks:
            fn()

    def _apply_deletes(self, rows: int, size: int) -> tuple[int, int]:
        """Delete the acked rows in the open transaction; the table's rows and bytes after it."""
        if self._del_upto:
            n, b = self.db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0) FROM outbox WHERE seq <= ?", (self._del_upto,)
            ).fetchone()
            self.db.execute("DELETE FROM outbox WHERE seq <= ?", (self._del_upto,))
            self.db.execute("DELETE FROM drops WHERE carrier > 0 AND carrier <= ?", (self._del_upto,))
            rows, size = rows - int(n), size - int(b)
        seqs = sorted(s for s in self._del if s > self._del_upto)
        for i in range(0, len(seqs), 500):
            chunk = seqs[i : i + 500]
            marks = ",".join("?" * len(chunk))
            n, b = self.db.execute(
                f"SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0) FROM outbox WHERE seq IN ({marks})", chunk
            ).fetchone()
            self.db.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", chunk)
            self.db.execute(f"DELETE FROM drops WHERE carrier IN ({marks})", chunk)  # reports delivered
            rows, size = rows - int(n), size - int(b)
        return rows, size

    def _lost_for_space(self, count: bool = True) -> None:
        """An event the full disk would not take: counted, and said once per episode."""
        if count:
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

    def ack(self, seqs: list[int]) -> int:
        """Acknowledged rows (the broker's PUBACKs) leave: hidden from peek, rows and bytes at once,
        deleted together at most delete_interval_s later (or at DELETE_BATCH rows, commit(), close())."""
        if not seqs:
            return 0
        with self._lock:
            fresh = sorted({s for s in seqs if s > self._del_upto and s not in self._del})
            gone = 0
            try:
                for i in range(0, len(fresh), 500):
                    chunk = fresh[i : i + 500]
                    marks = ",".join("?" * len(chunk))
                    for seq, length in self.db.execute(
                            f"SELECT seq, LENGTH(envelope) FROM outbox WHERE seq IN ({marks})", chunk):
                        self._del[int(seq)] = int(length)
                        self._gone_rows += 1
                        self._gone_bytes += int(length)
                        gone += 1
            except sqlite3.Error as exc:
                raise self._failed("read acknowledged rows from", exc) from None
            self._acked(max(seqs))
            if len(self._del) >= DELETE_BATCH or self.delete_interval_s <= 0:
                self._commit_locked(deletes=True)
        return gone

    def ack_upto(self, seq: int) -> int:
        """Every row with a seq <= seq leaves (the ingest's highest contiguous seq stored), as ack() does."""
        with self._lock:
            if seq <= self._del_upto:
                return 0
            try:
                n, b = self.db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0) FROM outbox WHERE seq > ? AND seq <= ?",
                    (self._del_upto, seq),
                ).fetchone()
            except sqlite3.Error as exc:
                raise self._failed("read acknowledged rows from", exc) from None
            counted = [s for s in self._del if s <= seq]  # acked one by one before: already hidden
            gone = int(n) - len(counted)
            self._gone_rows += gone
            self._gone_bytes += int(b) - sum(self._del.pop(s) for s in counted)
            self._del_upto = seq
            self._upto_dirty = True
            self._acked(seq)
            if self.delete_interval_s <= 0:
                self._commit_locked(deletes=True)
        return gone

    def _acked(self, seq: int) -> None:
        self._last_ack = max(self._last_ack, seq)
        self._last_ack_ms = int(time.time() * 1000)
        if self._del_since is None:
            self._del_since = self.clock()
        self._kick()

    @property
    def rows(self) -> int:
        """Rows waiting to leave: committed ones not yet acked, and those waiting for the window's commit."""
        return self._rows - self._gone_rows + len(self._pending)

    @property
    def size_bytes(self) -> int:
        """Total size of the queued envelopes, the window's uncommitted ones included."""
        return self._bytes - self._gone_bytes + self._pending_bytes

    @property
    def committed_seq(self) -> int:
        """The highest seq ever committed: stored now, or removed since (acked, dropped). The next
        start hands out committed_seq + 1 (a key rotation starts there)."""
        with self._lock:
            return self._committed_seq

    @property
    def uncommitted(self) -> int:
        """Appends waiting in memory for the window's commit."""
        return len(self._pending)

    def stats(self) -> Stats:
        with self._lock:
            return Stats(
                self.rows, self.size_bytes, self.oldest_ms(), self._next_seq, self._meta("dropped"), self._meta("boot"),
                max(self._last_ack, self._meta("last_ack")), self._last_ack_ms or self._meta("last_ack_ms"),
            )

    def oldest_ms(self) -> int | None:
        with self._lock:
            first = self._live(1)
            if first:
                return first[0][4]
            return self._pending[0].created_ms if self._pending else None

    def peek(self, limit: int = 100, after_seq: int = 0) -> list[Row]:
        """Committed rows not yet acked, in seq order (the order they are sent in), after after_seq."""
        with self._lock:
            return [Row(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in self._live(limit, after_seq)]

    def _live(self, limit: int, after_seq: int = 0) -> list[tuple[int, str, int, builtins.bytes, int]]:
        after = max(after_seq, self._del_upto)
        hidden = sum(1 for s in self._del if s > after)
        cur = self.db.execute(
            "SELECT seq, topic, priority, envelope, created_ms FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit + hidden),
        )
        return [r for r in cur.fetchall() if r[0] not in self._del][:limit]

    def close(self) -> None:
        """Commit what waits (appends of the window, deferred deletes), mark the run cleanly ended, close."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._work.notify_all()
            if self.readonly:  # nothing to commit, no lock held
                self.db.close()
                return
        if self._committer is not None:
            self._committer.join(timeout=15)
        with self._lock:
            try:
                self._commit_locked(deletes=True, final=True)
                if self._booted:
                    with self._txn():
                        self._set_meta("running", 0)
            except StateError as exc:  # the next start counts this run as unclean: nothing is silent
                log.warning("%s; the outbox closes without its clean-stop mark", exc)
            self.db.close()
            self._unlock()  # after the last write: the next owner sees everything this one stored

    def _txn(self) -> _Txn:
        if self.readonly:
            raise sqlite3.OperationalError("the outbox was opened read-only (it belongs to another process)")
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
