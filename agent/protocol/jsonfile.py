"""Read a small JSON file (registry, enrolment record, key list) with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from agent.errors import AgentError, UsageError


def read_json(path: Path, what: str, error: type[AgentError] = UsageError) -> object:
    """The file's JSON value; any way it cannot be read is one `error` naming `what` and path."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{what} {str(path)!r} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise error(f"{what} {str(path)!r} is not JSON: {str(exc)[:120]}") from None
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise error(f"{what} {str(path)!r} is not usable JSON: {str(exc)[:120]}") from None
    except OSError as exc:  # a folder, no permission, an I/O error
        raise error(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from None
