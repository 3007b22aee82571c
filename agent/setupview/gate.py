"""Who may see the setup view: one-time code, one viewer (session cookie), hard deadline; time passed in."""

from __future__ import annotations

import hmac
import secrets
import threading
from dataclasses import dataclass

CODE_DIGITS = 8
MAX_WRONG = 5  # wrong codes before the gate locks for the rest of the session
MAX_SECONDS = 600.0  # ten minutes: configurable down, never up

OK, WRONG, TAKEN, EXPIRED, LOCKED, CLOSED = "ok", "wrong", "taken", "expired", "locked", "closed"
STATUS = {OK: 200, WRONG: 403, TAKEN: 409, EXPIRED: 410, LOCKED: 403, CLOSED: 410}


def new_code() -> str:
    """A fresh one-time code: CODE_DIGITS random decimal digits (easy to type on a phone)."""
    return "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))


@dataclass
class Gate:
    """The first browser that presents the code gets the one session token; nobody else gets in."""

    code: str
    opened_s: float
    deadline_s: float
    token: str | None = None  # the one viewer's session token, once claimed
    wrong: int = 0
    closed: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    @classmethod
    def open(cls, now_s: float, seconds: float, code: str | None = None) -> Gate:
        if not 0 < seconds <= MAX_SECONDS:
            raise ValueError(f"the setup view stays open between 1 s and {MAX_SECONDS:.0f} s")
        return cls(code or new_code(), now_s, now_s + seconds)

    def remaining_s(self, now_s: float) -> float:
        return max(0.0, self.deadline_s - now_s)

    def _shut(self, now_s: float) -> str | None:
        if self.closed:
            return CLOSED
        if now_s >= self.deadline_s:
            return EXPIRED
        return None

    def claim(self, code: str, now_s: float) -> tuple[str, str | None]:
        """(outcome, token): OK with the session token for the first right code, else why not."""
        with self._lock:
            shut = self._shut(now_s)
            if shut:
                return shut, None
            if self.wrong >= MAX_WRONG:
                return LOCKED, None
            if not hmac.compare_digest(code.strip().encode(), self.code.encode()):
                self.wrong += 1
                return WRONG, None
            if self.token is not None:
                return TAKEN, None  # a second browser, even with the right code
            self.token = secrets.token_urlsafe(32)
            return OK, self.token

    def admit(self, token: str | None, now_s: float) -> str:
        """OK when token is the viewer's session token and the view is still open."""
        with self._lock:
            shut = self._shut(now_s)
            if shut:
                return shut
            if token is None or self.token is None or not hmac.compare_digest(token.encode(), self.token.encode()):
                return WRONG
            return OK

    def close(self) -> None:
        with self._lock:
            self.closed = True
