"""A throwaway PostgreSQL (Debian's package): initdb in a temp folder, a loopback port, stop by PID.

Used by `edge-agent bench ingest` and the test fixture tests/fixtures/postgres.py. initdb and
postgres refuse to run as root, so as root they run as the `postgres` system user.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from agent.errors import StateError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bindir() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise StateError("PostgreSQL is not installed: apt-get install postgresql (or run `make test`)")


@dataclass
class TempPostgres:
    folder: Path
    port: int
    pid: int
    user: str = "postgres"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def stop(self) -> None:
        """Fast shutdown by PID (SIGINT), SIGKILL if it lingers; then remove the folder."""
        try:
            os.kill(self.pid, signal.SIGINT)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _alive(self.pid):
                time.sleep(0.05)
            if _alive(self.pid):
                os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone once reaped.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return b") Z " not in fh.read()


def start_postgres(timeout_s: float = 30.0, durable: bool = False) -> TempPostgres:
    """initdb into a new temp folder and start postgres on 127.0.0.1:<free port>.

    durable=False turns fsync off (tests); the benchmark keeps PostgreSQL's default fsync=on.
    """
    bindir = pg_bindir()
    folder = Path(tempfile.mkdtemp(prefix="edge-agent-pg-"))
    data, sock, log = folder / "data", folder / "sock", folder / "postgres.log"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        for p in (folder, sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    user = "postgres"
    r = subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8",
         "--no-sync", "--no-instructions"],
        capture_output=True, text=True,
    )
    if r.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise StateError(f"initdb failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    port = free_port()
    opts = (f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=40 "
            "-c shared_buffers=32MB")
    if not durable:
        opts += " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
    r = subprocess.run(
        [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log), "-w",
         "-t", str(int(timeout_s)), "start"],
        capture_output=True, text=True,
    )
    pidfile = data / "postmaster.pid"
    if r.returncode != 0 or not pidfile.exists():
        tail = log.read_text()[-300:] if log.exists() else r.stderr
        # pg_ctl -w may time out while postgres is still starting: stop it before its folder goes,
        # or a postmaster is left running on a deleted data directory.
        subprocess.run(
            [
                *prefix,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-m",
                "immediate",
                "-w",
                "-t",
                "20",
                "stop",
            ],
            capture_output=True,
            text=True,
        )
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text().splitlines()[0]), 9)
            except (OSError, ValueError, IndexError):
                pass
        shutil.rmtree(folder, ignore_errors=True)
        raise StateError(f"postgres did not start: {tail.strip()}")
    pid = int(pidfile.read_text().splitlines()[0])
    return TempPostgres(folder, port, pid, user)
