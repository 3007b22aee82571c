"""The outbox owns seq and boot: both persist across reopening, a seq is never reused."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.delivery.outbox import Outbox


def test_seq_and_boot_survive_reopen(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    assert ob.start_boot() == 1
    seqs = [ob.append(lambda s: ("t", b"e%d" % s)) for _ in range(3)]
    assert seqs == [1, 2, 3]
    ob.ack([1, 2, 3])
    ob.close()
    ob = Outbox(tmp_path / "o.db")
    assert ob.start_boot() == 2
    assert ob.append(lambda s: ("t", b"x")) == 4
    assert ob.stats().rows == 1


def test_failed_build_allocates_nothing(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")

    def boom(seq: int) -> tuple[str, bytes]:
        raise ValueError("refused")

    with pytest.raises(ValueError):
        ob.append(boom)
    assert ob.append(lambda s: ("t", b"x")) == 1


def test_one_process_owns_an_outbox_and_others_read_beside_it(tmp_path: Path) -> None:
    """The seq counter lives in memory: a second writer is refused with one line, a reader writes nothing."""
    import os
    import stat

    from agent.delivery.outbox import OutboxBusy
    from agent.errors import StateError

    path = tmp_path / "outbox.db"
    owner = Outbox(path)
    owner.append(lambda s: ("t", b"first"))
    with pytest.raises(OutboxBusy) as refused:
        Outbox(path)
    assert "\n" not in str(refused.value) and str(os.getpid()) in str(refused.value)
    assert stat.S_IMODE((tmp_path / "outbox.lock").stat().st_mode) == 0o600
    reader = Outbox(path, readonly=True)
    assert [r.envelope for r in reader.peek()] == [b"first"]
    with pytest.raises(StateError):
        reader.append(lambda s: ("t", b"never"))
    reader.close()
    assert owner.append(lambda s: ("t", b"second")) == 2  # the reader took no seq and held no lock
    owner.close()
    again = Outbox(path)  # released at close
    assert again.stats().last_seq == 2
    again.close()
