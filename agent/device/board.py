"""Board profiles (hw/profiles): detect the board and its accelerators, pick a profile, lay it under the config."""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from agent.errors import ConfigError

# Where the hardware is described; each can be pointed elsewhere (tests: a fake device tree).
DEVICE_TREE = "/proc/device-tree"
DEV = "/dev"
USB_DEVICES = "/sys/bus/usb/devices"
ENV = {"device_tree": "EDGE_AGENT_DEVICE_TREE", "dev": "EDGE_AGENT_DEV", "usb": "EDGE_AGENT_USB_DEVICES"}

# The Coral USB Accelerator enumerates as Global Unichip until its firmware is loaded, then as Google.
CORAL_USB_IDS = frozenset({("1a6e", "089a"), ("18d1", "9302")})
GENERIC = "generic"


def profiles_dir() -> Path:
    """hw/profiles from the source tree, or the copy packed into the wheel as agent/_profiles."""
    packed = Path(str(resources.files("agent"))) / "_profiles"
    if packed.is_dir():
        return packed
    return Path(__file__).resolve().parents[2] / "hw" / "profiles"


@dataclass(frozen=True)
class Profile:
    id: str
    description: str
    boards: tuple[str, ...]  # prefixes of the device tree's model string
    accelerator: str  # none | coral-usb | coral-m2
    camera: str  # the source.kind a device with this board uses
    input: tuple[int, int] | None  # the model's input size the lores stream matches (None: the model's)
    table: dict[str, Any]  # config sections: defaults laid under the operator's config

    def toml(self) -> str:
        """The profile's config sections as TOML (for agent.toml's commented reference)."""
        lines: list[str] = []
        for section, values in self.table.items():
            lines.append(f"[{section}]")
            for key, value in values.items():
                lines.append(f"{key} = {_toml_value(value)}")
            lines.append("")
        return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


@lru_cache(maxsize=1)
def profiles() -> dict[str, Profile]:
    out: dict[str, Profile] = {}
    for path in sorted(profiles_dir().glob("*.toml")):
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
        meta = raw.pop("profile")
        size = meta.get("input")
        out[meta["id"]] = Profile(
            id=meta["id"],
            description=meta["description"],
            boards=tuple(meta.get("boards", ())),
            accelerator=meta.get("accelerator", "none"),
            camera=meta.get("camera", "v4l2"),
            input=(int(size[0]), int(size[1])) if size else None,
            table=raw,
        )
    return out


@dataclass(frozen=True)
class Hardware:
    """What was found: the device tree's model string ("" off a Pi) and the accelerators."""

    model: str
    coral_usb: bool
    coral_pcie: bool

    def describe(self) -> str:
        found = [name for name, yes in (("Coral USB", self.coral_usb), ("Coral M.2/PCIe", self.coral_pcie)) if yes]
        board = self.model or "no device-tree model"
        return f"{board}; {', '.join(found) + ' found' if found else 'no accelerator'}"


def _path(given: str | Path | None, key: str, default: str) -> Path:
    return Path(given if given is not None else os.environ.get(ENV[key], default))


def probe(
    device_tree: str | Path | None = None, dev: str | Path | None = None, usb: str | Path | None = None
) -> Hardware:
    """Read the board's model string and look for a Coral on USB (by vendor:product) or PCIe (/dev/apex_0)."""
    try:
        model = (_path(device_tree, "device_tree", DEVICE_TREE) / "model").read_bytes()
        model_text = model.rstrip(b"\0").decode("utf-8", "replace").strip()
    except OSError:
        model_text = ""
    coral_usb = False
    usb_dir = _path(usb, "usb", USB_DEVICES)
    try:
        entries = sorted(usb_dir.iterdir())
    except OSError:
        entries = []
    for entry in entries:
        try:
            ids = ((entry / "idVendor").read_text().strip(), (entry / "idProduct").read_text().strip())
        except OSError:
            continue
        if ids in CORAL_USB_IDS:
            coral_usb = True
            break
    coral_pcie = (_path(dev, "dev", DEV) / "apex_0").exists()
    return Hardware(model_text, coral_usb, coral_pcie)


def choose(hw: Hardware) -> Profile:
    """The profile for this hardware: the board's, with its accelerator (PCIe first), else generic."""
    table = profiles()
    boards = [p for p in table.values() if any(hw.model.startswith(prefix) for prefix in p.boards)]
    wanted = ["coral-m2"] if hw.coral_pcie else []
    wanted += ["coral-usb"] if hw.coral_usb else []
    wanted.append("none")
    for accelerator in wanted:
        for p in boards:
            if p.accelerator == accelerator:
                return p
    return table[GENERIC]


@dataclass(frozen=True)
class Choice:
    profile: Profile | None  # None: device.profile = "none"
    reason: str

    def line(self) -> str:
        if self.profile is None:
            return f"board profile: none ({self.reason})"
        return f"board profile: {self.profile.id} - {self.profile.description} ({self.reason})"


def resolve(setting: str, hw: Hardware | None = None) -> Choice:
    """device.profile -> the profile to use: "auto" detects, "none" uses none, else the named one."""
    if setting == "none":
        return Choice(None, "device.profile = \"none\"")
    table = profiles()
    if setting != "auto":
        if setting not in table:
            close = difflib.get_close_matches(setting, list(table), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(table)}"
            raise ConfigError(f"device.profile {setting!r} is not a board profile{hint}")
        return Choice(table[setting], "set by device.profile")
    hw = hw or probe()
    return Choice(choose(hw), f"detected: {hw.describe()}")


def apply(table: dict[str, Any], hw: Hardware | None = None) -> tuple[dict[str, Any], Choice]:
    """A config table with the chosen profile's values laid under it (the table wins)."""
    from agent.config import merge

    device = table.get("device", {})
    setting = device.get("profile", "auto") if isinstance(device, dict) else "auto"
    if not isinstance(setting, str):
        raise ConfigError(f"device.profile = {setting!r}: must be a string")
    choice = resolve(setting, hw)
    if choice.profile is None:
        return table, choice
    return merge(choice.profile.table, table), choice
