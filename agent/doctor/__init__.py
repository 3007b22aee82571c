"""`edge-agent doctor`: the device's self-check, one line per check with the fix on it."""

from __future__ import annotations

from agent.doctor.report import FAIL, PASS, SKIP, WARN, Result, exit_code

__all__ = ["FAIL", "PASS", "SKIP", "WARN", "Result", "exit_code"]
