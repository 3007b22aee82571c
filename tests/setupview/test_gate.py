"""The setup view's gate: one-time code, one viewer, lock after wrong codes, hard deadline."""

from __future__ import annotations

import pytest

from agent.setupview import gate as g


def test_the_first_right_code_gets_the_session_and_nobody_else() -> None:
    gate = g.Gate.open(100.0, 600, code="12345678")
    assert gate.admit(None, 100.0) == g.WRONG
    assert gate.claim("00000000", 101.0) == (g.WRONG, None)
    outcome, token = gate.claim("12345678", 102.0)
    assert outcome == g.OK and token
    assert gate.admit(token, 103.0) == g.OK
    assert gate.claim("12345678", 104.0) == (g.TAKEN, None)  # a second browser, right code
    assert gate.admit("forged", 104.0) == g.WRONG
    assert gate.admit(token, 700.0) == g.EXPIRED  # the deadline, whatever the token
    assert gate.claim("12345678", 700.0) == (g.EXPIRED, None)
    gate.close()
    assert gate.admit(token, 105.0) == g.CLOSED


def test_wrong_codes_lock_the_gate_even_for_the_right_one() -> None:
    gate = g.Gate.open(0.0, 60, code="12345678")
    for _ in range(g.MAX_WRONG):
        assert gate.claim("99999999", 1.0)[0] == g.WRONG
    assert gate.claim("12345678", 2.0) == (g.LOCKED, None)


def test_ten_minutes_at_most_and_fresh_codes() -> None:
    with pytest.raises(ValueError):
        g.Gate.open(0.0, 601)
    with pytest.raises(ValueError):
        g.Gate.open(0.0, 0)
    codes = {g.new_code() for _ in range(50)}
    assert len(codes) > 45 and all(len(c) == g.CODE_DIGITS and c.isdigit() for c in codes)
