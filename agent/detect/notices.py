"""Licence notices that must travel with a model file (BSD-3-Clause binaries carry their notice)."""

from __future__ import annotations

from pathlib import Path

from agent.assets import Pinned, find_local, install_checked, obtain, sha256_file
from agent.errors import AssetError
from agent.detect.catalogue import ModelSpec


def notice_path(spec: ModelSpec, model_dir: Path) -> Path | None:
    """Where a model's notice is installed: next to the model as <file>.<notice>; None if it has none."""
    return model_dir / f"{spec.file}.{spec.notice}" if spec.notice else None


def notice_ok(spec: ModelSpec, model_dir: Path) -> bool:
    """The model's notice is installed beside it, unchanged (True for a model that needs none)."""
    dest = notice_path(spec, model_dir)
    return dest is None or (dest.is_file() and sha256_file(dest) == spec.notice_sha256)


def install_notice(spec: ModelSpec, model_dir: Path, beside: list[Path], download: bool) -> Path | None:
    """Install the model's notice from a folder the model came from, else from its pinned URL.

    SHA-256 checked either way. A model that needs a notice is not installed without it: the
    caller removes the model again when this raises.
    """
    dest = notice_path(spec, model_dir)
    if dest is None:
        return None
    if notice_ok(spec, model_dir):
        return dest
    for folder in beside:
        candidate = folder / spec.notice
        if candidate.is_file():
            return install_checked(candidate, dest, spec.notice_sha256, f"{spec.id} licence notice")
    if download and spec.notice_urls:
        item = Pinned(f"{spec.id} licence notice", dest.name, spec.notice_sha256, spec.notice_urls)
        return obtain(item, model_dir, None, True)
    where = ", ".join(str(p) for p in beside) or "no local folder"
    raise AssetError(
        f"{spec.id}: its licence notice ({spec.notice}, {spec.licence}) must travel with the model and was "
        f"not found beside it in {where}; put the {spec.notice} file next to the model file"
    )


def model_folders(spec: ModelSpec, local: list[Path]) -> list[Path]:
    """The folders under `local` that hold this model's file (where its notice sits too)."""
    found = find_local(spec.file, local, spec.sha256 or None) if local else None
    return [found.parent] if found is not None else []
