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
