"""Build the configured detector: find the installed model, check its hash, load it."""

from __future__ import annotations

from pathlib import Path

from agent.assets import sha256_file
from agent.config import Config
from agent.errors import ModelError
from agent.manifest import model


def model_path(cfg: Config, model_id: str) -> Path:
    spec = model(model_id)
    path = cfg.model_dir / spec.file
    if not path.is_file():
        raise ModelError(
            f"model {model_id!r} is not installed in {cfg.model_dir}; "
            f"run `edge-agent models fetch {model_id}` or `edge-agent models import FILE`"
        )
    seen = sha256_file(path)
    if seen != spec.sha256:
        raise ModelError(
            f"model file {path} has SHA-256 {seen}, expected {spec.sha256}; refusing to load it"
        )
    return path


def build_detector(cfg: Config):  # type: ignore[no-untyped-def]
    from agent.detect.tflite import TfliteDetector

    d = cfg.detector
    spec = model(d.model)
    return TfliteDetector(spec, model_path(cfg, d.model), d.threads, d.score_threshold, d.classes)
