"""Switching a running device to a new config between frames: rules, manifest, masks, heartbeat, log.

LiveDevice holds the one config the device runs. Both ways a running config changes (a signed
remote change, the setup view's save picked up by agent.device.config_watch) derive their new config from
`live.cfg` and switch through it, so neither undoes the other and the signed manifest always names
the zones, lines and masks in force."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from agent.config import Config
from agent.errors import EgressViolation
from agent.protocol.change import ChangeRefused
from agent.types import Observation

if TYPE_CHECKING:
    from agent.assembly import Publishing
    from agent.delivery.heartbeat import Health
    from agent.pipeline import Pipeline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    cfg: Config
    rules: list[Any]
    manifest_body: bytes
    manifest_envelope: bytes


class LiveDevice:
    """The running config, pipeline and publishing half, as remote changes and the setup view
    change them."""

    def __init__(
        self,
        cfg: Config,
        pipeline: Pipeline,
        publishing: Publishing,
        health: Health | None,
        model_id: str,
        model_sha256: str,
        wrap_rules: Callable[[Sequence[Any]], list[Any]] = list,
    ) -> None:
        self.cfg = cfg  # what runs now (the file, remote settings, geometry saved since the start)
        self.pipeline = pipeline
        self.publishing = publishing
        self.health = health
        self.model_id = model_id
        self.model_sha256 = model_sha256
        self.wrap_rules = wrap_rules  # the device's own stages around the rules (coverage on counts)

    def prepare(self, cfg: Config) -> Prepared:
        """Rules and signed manifest for cfg, the whole new running config (derive it from
        self.cfg); ChangeRefused if its manifest cannot leave."""
        from agent.privacy import manifest
        from agent.rules import build_rules

        rules = build_rules(cfg)
        try:
            body, envelope = self.publishing.sign_manifest(
                manifest.build(cfg, self.model_sha256, self.model_id)
            )
        except EgressViolation as exc:  # e.g. so many zones that the manifest passes its size cap
            raise ChangeRefused(
                "invalid-value", f"the new privacy manifest cannot leave: {exc}"
            ) from None
        return Prepared(cfg, self.wrap_rules(rules), body, envelope)

    def switch(self, prepared: object, now_s: float) -> None:
        """Open visits of the old rules end (under the old manifest), then the new rules, manifest
        and privacy masks take over: every later event cites the new manifest's hash, and the
        detector masks what that manifest names. prepared.cfg becomes the running config."""
        from agent.rules import close_rules
        from agent.setupview.live import set_masks

        assert isinstance(prepared, Prepared)
        self.publishing.emitter.emit(close_rules(self.pipeline.rules, now_s))
        self.publishing.use_manifest(prepared.manifest_body, prepared.manifest_envelope)
        self.pipeline.rules = prepared.rules
        masks = prepared.cfg.privacy.masks
        if masks != self.cfg.privacy.masks and not set_masks(self.pipeline.detector, masks):
            log.warning(
                "the new privacy masks apply at the next start (this detector cannot take them live)"
            )
        if self.health is not None:
            self.health.cfg = prepared.cfg.health
        self.cfg = prepared.cfg

    def heartbeat(self, now_s: float) -> list[Observation]:
        return self.health.heartbeats(now_s) if self.health is not None else []

    def announce(self) -> None:
        self.publishing.announce()

    def set_log_level(self, level: str) -> None:
        logging.getLogger().setLevel(level.upper())
        log.info("log level set to %s", level)
