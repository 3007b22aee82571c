"""Small file helpers for provisioning: exclusive 0600 keys, secret and public files, TOML writing, folders."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path
from typing import Any

from agent.errors import StateError, UsageError

BUNDLE_FILE = "bundle.dsse"
FOLDER = "edge-agent"  # the folder on a boot partition or a USB stick
REQUESTS = "requests"
APPROVALS = "approvals"
SECRET_MODE = 0o600


def write_private(path: Path, data: bytes, owner: str = "") -> None:
    """Create path exclusively with mode 0600 (never overwrites: a key is made once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{path} already exists; a key is never overwritten") from None
    except OSError as exc:
        raise StateError(f"cannot create {str(path)!r}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    if owner:
        chown(path, owner)


def chown(path: Path, owner: str) -> None:
    try:
        user = pwd.getpwnam(owner)
    except KeyError:
        raise UsageError(f"--owner {owner!r} is not a user on this system") from None
    os.chown(path, user.pw_uid, user.pw_gid)


def write_public(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Write path atomically when its content differs, with exactly `mode` whatever the umask: the
    data is never in a file with a wider mode, even for a moment (a file that already holds the data
    gets its mode set). True when the content changed."""
    try:
        same = path.read_bytes() == data
    except OSError:
        same = False
    tmp = path.with_name(path.name + ".tmp")
    try:
        if same:
            if stat.S_IMODE(path.stat().st_mode) != mode:
                path.chmod(mode)
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)  # a leftover of a write cut short may have a wider mode
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)  # the umask can only narrow it
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fd, mode)  # ... back to `mode` before any byte is written
            fh.write(data)
        tmp.replace(path)
    except OSError as exc:
        raise StateError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    return True


def write_secret(path: Path, data: bytes) -> bool:
    """write_public for a file holding a secret (the site bundle's Wi-Fi key and enrolment
    password): mode 0600, owned by whoever writes it (root, for the device's files)."""
    return write_public(path, data, SECRET_MODE)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise UsageError(f"setting value {value!r} cannot be written as TOML")


def toml_text(table: dict[str, Any], header: str = "") -> str:
    """A config table as TOML: plain keys, then [section] tables, then [[array]] tables."""
    lines = [f"# {line}" for line in header.splitlines()]
    plain = {k: v for k, v in table.items() if not isinstance(v, dict) and not _table_list(v)}
    lines += [f"{k} = {toml_value(v)}" for k, v in plain.items()]
    for name, value in table.items():
        if isinstance(value, dict):
            lines += ["", f"[{name}]", *(f"{k} = {toml_value(v)}" for k, v in value.items())]
    for name, value in table.items():
        if _table_list(value):
            for item in value:
                lines += ["", f"[[{name}]]", *(f"{k} = {toml_value(v)}" for k, v in item.items())]
    return "\n".join(lines).lstrip("\n") + "\n"


def _table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
