"""A full disk under the outbox: appends are counted (never given a seq), logged once, reported by the
next heartbeat that can be stored, and never raise out of the frame loop; other SQLite errors are one line."""

from __future__ import annotations

import contextlib
import logging
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest

from agent.config import HealthConfig
from agent.errors import StateError
from agent.delivery.heartbeat import Health
from agent.protocol.enrolment import enrolment
from agent.delivery.outbox import DiskFull, Outbox
from agent.protocol.dsse import SigningKey
from agent.types import Observation
from agent.central.verify import Verifier
from tests.helpers import device_publishing


@contextlib.contextmanager
def _small_disk(folder: Path) -> Iterator[tuple[Path, Callable[[], None]]]:
    """A real 600 KiB tmpfs (as root) that a 200 kB filler file helps fill; free() deletes the filler."""
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        filler = folder / "filler"
        filler.write_bytes(b"\0" * 200_000)
        yield folder / "outbox.db", lambda: filler.unlink()
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_is_counted_logged_once_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = SigningKey.generate()
    verifier = Verifier([enrolment(key, "cam-1", "lab")])
    with _small_disk(tmp_path / "disk") as (path, free):
        pub = device_publishing(path.parent, outbox_file=path.name, key=key)
        ob, em = pub.outbox, pub.emitter
        health = Health(ob, HealthConfig(heartbeat_s=1.0), beat_at_start=True)
        caplog.set_level(logging.INFO, logger="agent.delivery.outbox")
        seqs: list[int] = []
        tries = 0
        for i in range(300):  # the frame loop: it must never see an exception
            seqs += em.emit([Observation("line_crossing", "door", "person", float(i), {"count": 1}, "in")])
            tries += 1
            if i % 50 == 0:
                tries += 1
                seqs += em.emit(health.tick(float(i)))
        lost = tries - len(seqs)
        assert lost > 0, "the disk never filled"
        assert ob.lost_disk_full == lost, "every lost append is counted"
        assert seqs == list(range(1, len(seqs) + 1)), "a failed append consumed no seq"
        assert ob.stats().last_seq == len(seqs) == ob.rows
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "full" in warnings[0].getMessage(), "logged once, not once per event"
        with pytest.raises(DiskFull):  # the outbox itself says what happened; the Emitter swallows it
            ob.append(lambda s: ("t", b"x" * 500))
        assert ob.lost_disk_full == lost + 1
        free()  # e.g. a log rotated away
        (beat_seq,) = em.emit(health.tick(400.0))
        assert beat_seq == len(seqs) + 1
        beat = verifier.verify(ob.peek(1, after_seq=beat_seq - 1)[0].envelope)
        assert beat["type"] == "heartbeat" and beat["values"]["lost_disk_full"] == lost + 1
        assert any("room again" in r.getMessage() for r in caplog.records)
        ob.close()


def test_other_sqlite_errors_are_one_line_state_errors(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    ob.db.close()  # stands for any failure that is not a full disk
    for op in (lambda: ob.append(lambda s: ("t", b"x")), lambda: ob.ack([1]), lambda: ob.ack_upto(1)):
        with pytest.raises(StateError) as info:
            op()
        assert not isinstance(info.value, DiskFull)
        assert "\n" not in str(info.value) and "outbox" in str(info.value)
    assert ob.lost_disk_full == 0
