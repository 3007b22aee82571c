"""Zones, lines and masks as the page edits them, checked and saved exactly as the config loader reads them.

The page sends normalized coordinates (origin top-left). They are laid on the config file's own
table (other keys of an existing zone or line are kept), checked with agent.config.parse (after the
board profile, as `run` does) and agent.rules.build_rules, and only then written: the old file is
kept as <name>.bak and the new one replaces it atomically, both with the file's owner, group and mode.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import shutil
import stat
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import config
from agent.config import Config
from agent.errors import ConfigError

DECIMALS = 4  # 1/10000 of the picture: finer than any pixel of a downscaled preview


@dataclass(frozen=True)
class Shapes:
    """Zone polygons and line points by id, and mask polygons, all normalized."""

    zones: tuple[tuple[str, tuple[tuple[float, float], ...]], ...]
    lines: tuple[tuple[str, tuple[tuple[float, float], ...]], ...]
    masks: tuple[tuple[tuple[float, float], ...], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "zones": [{"id": i, "polygon": [list(p) for p in poly]} for i, poly in self.zones],
            "lines": [{"id": i, "points": [list(p) for p in pts]} for i, pts in self.lines],
            "masks": [[list(p) for p in poly] for poly in self.masks],
        }


def of_config(cfg: Config) -> Shapes:
    return Shapes(
        tuple((z.id, tuple(z.polygon)) for z in cfg.zones),
        tuple((ln.id, tuple(ln.points)) for ln in cfg.lines),
        tuple(tuple(m) for m in cfg.privacy.masks),
    )


def _points(value: Any, where: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list of [x, y] points")
    out = []
    for p in value:
        if (not isinstance(p, list) or len(p) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)):
            raise ConfigError(f"{where}: each point must be [x, y] numbers")
        out.append((round(float(p[0]), DECIMALS), round(float(p[1]), DECIMALS)))
    return tuple(out)


def from_json(doc: Any) -> Shapes:
    """The page's document {zones: [{id, polygon}], lines: [{id, points}], masks: [[...]]}."""
    if not isinstance(doc, dict):
        raise ConfigError("shapes must be a JSON object with zones, lines and masks")
    zones, lines = [], []
    for z in doc.get("zones", []):
        if not isinstance(z, dict) or not isinstance(z.get("id"), str):
            raise ConfigError("each zone needs an id")
        zones.append((z["id"], _points(z.get("polygon"), f"zone {z['id']!r} polygon")))
    for ln in doc.get("lines", []):
        if not isinstance(ln, dict) or not isinstance(ln.get("id"), str):
            raise ConfigError("each line needs an id")
        lines.append((ln["id"], _points(ln.get("points"), f"line {ln['id']!r}")))
    masks = tuple(_points(m, f"privacy.masks[{i}]") for i, m in enumerate(doc.get("masks", [])))
    return Shapes(tuple(zones), tuple(lines), masks)


def _kept(old: Any, new: tuple[tuple[float, float], ...]) -> list[list[float]]:
    """The file's own points when the page sent them back unchanged (the page rounds to DECIMALS),
    else the page's: a save that moves nothing leaves the file's values, and with them the
    fingerprint that tells a local save from a remote change (agent.remote.geometry)."""
    try:
        if (isinstance(old, list) and len(old) == len(new)
                and all(round(float(a), DECIMALS) == b for p, q in zip(old, new) for a, b in zip(p, q, strict=True))):
            return [list(p) for p in old]
    except (TypeError, ValueError):
        pass
    return [list(p) for p in new]


def apply(table: dict[str, Any], shapes: Shapes) -> dict[str, Any]:
    """A copy of the config file's table with these shapes; other keys of a kept id stay as they were."""
    out = copy.deepcopy(table)
    old_zones = {z.get("id"): z for z in table.get("zones", []) if isinstance(z, dict)}
    old_lines = {ln.get("id"): ln for ln in table.get("lines", []) if isinstance(ln, dict)}
    out["zones"] = [dict(copy.deepcopy(old_zones.get(i, {})), id=i,
                         polygon=_kept(old_zones.get(i, {}).get("polygon"), poly))
                    for i, poly in shapes.zones]
    out["lines"] = [dict(copy.deepcopy(old_lines.get(i, {})), id=i,
                         points=_kept(old_lines.get(i, {}).get("points"), pts))
                    for i, pts in shapes.lines]
    if not out["zones"]:
        del out["zones"]
    if not out["lines"]:
        del out["lines"]
    privacy = dict(out.get("privacy", {})) if isinstance(out.get("privacy"), dict) else {}
    if shapes.masks:
        given = privacy.get("masks")
        old_masks: list[Any] = given if isinstance(given, list) else []
        privacy["masks"] = [_kept(old_masks[k] if k < len(old_masks) else None, poly)
                            for k, poly in enumerate(shapes.masks)]
    else:
        privacy.pop("masks", None)
    if privacy:
        out["privacy"] = privacy
    else:
        out.pop("privacy", None)
    return out


def check(table: dict[str, Any]) -> Config:
    """Exactly what `edge-agent run` does with the file: board profile under it, parse, build the rules."""
    from agent.device import board
    from agent.rules import build_rules

    laid, _ = board.apply(table)
    cfg = config.parse(laid)
    build_rules(cfg)
    return cfg


_POINT = re.compile(r"\[\n\s*(-?[0-9.eE+-]+),\n\s*(-?[0-9.eE+-]+),\n\s*\]")


def compact_points(text: str) -> str:
    """tomli-w's one-number-per-line points as [x, y] again (the file stays readable by a person)."""
    return _POINT.sub(r"[\1, \2]", text)


def save(path: Path, shapes: Shapes) -> tuple[Config, bool]:
    """Check the shapes laid on the file at path and write them (backup <name>.bak); (config, changed)."""
    import tomli_w

    table = config.read_toml(path)
    new = apply(table, shapes)
    cfg = check(new)
    if new == table:
        return cfg, False
    text = compact_points(tomli_w.dumps(new))
    if tomllib.loads(text) != new:  # the writer's output must read back as exactly this table
        raise ConfigError("the config would not read back as written; nothing was saved")
    backup = path.with_name(path.name + ".bak")
    shutil.copy2(path, backup)
    keep_owner(path, backup)
    replace_text(path, text)
    return cfg, True


def keep_owner(path: Path, copy_: Path) -> None:
    """Give copy_ path's owner, group (as root; e.g. root:edge-agent) and mode."""
    st = path.stat()
    if os.geteuid() == 0:
        os.chown(copy_, st.st_uid, st.st_gid)
    os.chmod(copy_, stat.S_IMODE(st.st_mode))


def replace_text(path: Path, text: str) -> None:
    """Replace the file at path with text atomically, keeping its owner, group and mode.

    setup-view runs under sudo on a `root:edge-agent 0640` file: a new file would be root:root and
    the service could no longer read its config. The temp file is unique (mkstemp in the same
    folder), so two saves never write into one temp file."""
    st = path.stat()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            if os.geteuid() == 0:
                os.fchown(fh.fileno(), st.st_uid, st.st_gid)
            os.fchmod(fh.fileno(), stat.S_IMODE(st.st_mode))  # after chown, which may clear setgid bits
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
