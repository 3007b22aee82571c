"""Remote configuration for a device being assembled: keys, state, stored settings, the stage."""

from __future__ import annotations

import logging
from pathlib import Path

from agent.config import Config
from agent.protocol.change import ChangeRefused, operator_keys
from agent.remote.clock import clock_synchronised
from agent.remote.control import RemoteControl
from agent.remote.geometry import KEYS
from agent.remote.settings import overlay
from agent.remote.state import STATE_FILE, RemoteState

log = logging.getLogger(__name__)


def remote_control(cfg: Config) -> tuple[RemoteControl, Config]:
    """The stage for cfg's [remote] section and the config to run: cfg with the remote settings
    accepted earlier laid over it. Settings the local file no longer allows (say detector.classes
    lost a class a remote zone counts) are left out with a warning, and the version stays: an
    older change is still refused. Later changes lay only their own settings over the running
    config (agent.remote.live.LiveDevice.cfg)."""
    keys = operator_keys(Path(cfg.remote.operator_keys).expanduser())
    state = RemoteState(cfg.state_dir / STATE_FILE)
    synced = (lambda: True) if cfg.remote.clock == "trusted" else clock_synchronised
    control = RemoteControl(cfg, keys, state, synced)
    current = state.current()
    settings = dict(current.settings)
    if current.version and current.file_geometry and current.file_geometry != control.file_geometry:
        # zones or lines were saved to the file after the remote settings were written: the latest
        # wins. Decided here, written nowhere: a replay of another config on this state folder must
        # not change what the device runs; the next commit records it (RemoteControl.set_aside).
        control.set_aside = tuple(k for k in KEYS if k in settings)
        if control.set_aside:
            log.warning(
                "remote %s of version %d set aside: the config file's zones or lines were saved "
                "after it, and the latest wins", " and ".join(control.set_aside), current.version,
            )
            settings = {k: v for k, v in settings.items() if k not in control.set_aside}
    running = cfg
    if settings:
        try:
            running = overlay(cfg, settings)
        except ChangeRefused as exc:
            log.warning(
                "remote configuration version %d no longer fits the config file (%s); running the "
                "file's settings (a later change sets only its own settings)",
                current.version,
                exc,
            )
        else:
            log.info(
                "remote configuration version %d in force (%s)",
                current.version,
                ", ".join(sorted(settings)),
            )
            if "log.level" in settings:
                logging.getLogger().setLevel(str(settings["log.level"]).upper())
    return control, running
