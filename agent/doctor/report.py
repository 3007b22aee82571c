"""Doctor results: one frozen value per check, its line for a person, its JSON, and the exit code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PASS = "pass"
WARN = "warn"
FAIL = "fail"
SKIP = "skip"  # does not apply here (no [mqtt], not a Raspberry Pi); counts as passed

MARKS = {PASS: "ok  ", WARN: "WARN", FAIL: "FAIL", SKIP: "--  "}


@dataclass(frozen=True)
class Result:
    """One check: its name, pass/warn/fail/skip, what was seen, and the fix (empty when none is due)."""

    name: str
    status: str
    message: str
    fix: str = ""

    def line(self) -> str:
        text = f"{MARKS[self.status]} {self.name}: {self.message}"
        return f"{text}; fix: {self.fix}" if self.fix else text

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "message": self.message, "fix": self.fix}


def exit_code(results: Sequence[Result]) -> int:
    """0 when every check passed, 1 with warnings only, 2 with any failure."""
    statuses = {r.status for r in results}
    if FAIL in statuses:
        return 2
    return 1 if WARN in statuses else 0


def summary(results: Sequence[Result]) -> str:
    counts = {s: sum(r.status == s for r in results) for s in (PASS, WARN, FAIL, SKIP)}
    return (f"{counts[PASS]} passed, {counts[WARN]} warning(s), {counts[FAIL]} failure(s), "
            f"{counts[SKIP]} not applicable")
