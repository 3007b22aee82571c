"""The exact command that fixes a missing or damaged model, with the folder the agent looks in."""

from __future__ import annotations

from agent.config import Config


def fetch_hint(model_id: str, cfg: Config) -> str:
    """`edge-agent models fetch ID --state DIR` (or the model folder, when the config names one)."""
    if cfg.detector.model_dir:
        return (
            f"`edge-agent models fetch {model_id} --config FILE` "
            f"(FILE with detector.model_dir = {str(cfg.model_dir)!r})"
        )
    return f"`edge-agent models fetch {model_id} --state {cfg.state_dir}`"


def import_hint(cfg: Config) -> str:
    if cfg.detector.model_dir:
        return "`edge-agent models import FILE --config FILE`"
    return f"`edge-agent models import FILE --state {cfg.state_dir}`"
