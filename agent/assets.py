"""Obtain pinned files (models, sample clips): import from a folder or download; check SHA-256.

A file is installed only after its SHA-256 matches the pinned one; a mismatch is refused with
both hashes printed. Offline devices import from a folder (a USB stick, ../shared/assets).
A file whose hash is unknown (pinned sha256 "") is installed only when the user accepts it
explicitly; the hash seen is printed and recorded in <file>.sha256 (trust on first use), and
from then on the file must keep that hash.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from agent.errors import AssetError


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Pinned:
    """A file we know by name and hash, with where it can be downloaded."""

    id: str
    file: str
    sha256: str
    urls: tuple[str, ...] = ()
    sha256_checked: bool = True


def recorded_hash(path: Path) -> str:
    """The hash recorded when a file with an unknown pinned hash was accepted ("" if none)."""
    side = path.with_name(path.name + ".sha256")
    try:
        return side.read_text(encoding="ascii").split()[0].strip().lower()
    except (FileNotFoundError, IndexError, UnicodeDecodeError):
        return ""


def expected_hash(item: Pinned, dest: Path) -> str:
    """The pinned hash, else the one recorded on first use, else ""."""
    return item.sha256 or recorded_hash(dest)


def install_unpinned(src: Path, dest: Path, what: str) -> Path:
    """Install a file whose hash nobody pinned: print the hash seen, record it beside the file."""
    seen = sha256_file(src)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    dest.with_name(dest.name + ".sha256").write_text(f"{seen}  {dest.name}\n", encoding="ascii")
    print(f"{what}: accepted {dest.name} with SHA-256 {seen} "
          "(no pinned hash; recorded, unchecked upstream)")
    return dest


def _unchecked_refusal(item: Pinned) -> AssetError:
    if not item.sha256:
        return AssetError(
            f"{item.id}: no SHA-256 is pinned for {item.file} (it could not be checked); "
            "fetch it with --accept-unchecked-hash if you trust the source "
            "(the hash seen is printed and recorded)"
        )
    return AssetError(
        f"{item.id}: its pinned SHA-256 was never checked against the download; "
        f"fetch it with --accept-unchecked-hash if you trust the source"
    )


def find_local(file: str, folders: list[Path], sha256: str | None = None) -> Path | None:
    """The first file named `file` under any folder (recursive); with sha256, the first matching."""
    first: Path | None = None
    for folder in folders:
        if not folder.is_dir():
            continue
        for candidate in sorted(folder.rglob(file)):
            if not candidate.is_file():
                continue
            if sha256 is None or sha256_file(candidate) == sha256:
                return candidate
            first = first or candidate
    return first


def install_checked(src: Path, dest: Path, sha256: str, what: str) -> Path:
    """Copy src to dest only if its SHA-256 is the pinned one."""
    seen = sha256_file(src)
    if seen != sha256:
        raise AssetError(
            f"{what}: {src} has SHA-256 {seen}, expected {sha256}; refusing to install it"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return dest


def _download(url: str, timeout_s: float = 60.0) -> bytes:
    base, _, member = url.partition("#")
    req = urllib.request.Request(base, headers={"User-Agent": "edge-agent"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 (pinned https URLs)
        data: bytes = resp.read()
    if member:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = [n for n in zf.namelist() if n == member or n.endswith("/" + member)]
            if not names:
                raise AssetError(f"{base} does not contain {member}")
            data = zf.read(names[0])
    return data


def obtain(
    item: Pinned,
    dest_dir: Path,
    local: list[Path] | None = None,
    download: bool = True,
    accept_unchecked: bool = False,
    fix: str = "put it in a folder and give --from FOLDER",
) -> Path:
    """Install item into dest_dir: already there and valid, else from a local folder, else a URL.
    fix: what the person can do when the file can be had neither way (said in the error)."""
    dest = dest_dir / item.file
    expected = expected_hash(item, dest)
    if dest.is_file() and expected and sha256_file(dest) == expected:
        return dest
    if local:
        found = find_local(item.file, local, item.sha256 or None)
        if found is not None:
            if item.sha256:
                return install_checked(found, dest, item.sha256, item.id)
            if not accept_unchecked:
                raise _unchecked_refusal(item)
            return install_unpinned(found, dest, item.id)
    if not download or not item.urls:
        folders = [f"{p} (no such folder)" if not p.is_dir() else str(p) for p in local or []]
        where = f"{item.file} is not in {', '.join(folders)}" if folders else "no --from folder was given"
        off = "downloading is off (--offline)" if item.urls else "it has no download address"
        raise AssetError(f"{item.id}: {where} and {off}; {fix}")
    if not item.sha256_checked and not accept_unchecked:
        raise _unchecked_refusal(item)
    errors = []
    for url in item.urls:
        try:
            data = _download(url)
        except (urllib.error.URLError, OSError, zipfile.BadZipFile, AssetError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        seen = hashlib.sha256(data).hexdigest()
        if not item.sha256_checked and item.sha256:
            print(
                f"{item.id}: downloaded file has SHA-256 {seen} (pinned, unchecked: {item.sha256})"
            )
        dest_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=dest_dir, delete=False) as tmp:
            tmp.write(data)
        try:
            if not item.sha256:
                return install_unpinned(Path(tmp.name), dest, item.id)
            return install_checked(Path(tmp.name), dest, item.sha256, item.id)
        finally:
            Path(tmp.name).unlink(missing_ok=True)
    raise AssetError(
        f"{item.id}: could not download {item.file} ({'; '.join(errors)[:300]}); without a network, {fix}"
    )

