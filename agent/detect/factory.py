"""Build the configured detector: plan CPU or Edge TPU, find the installed model, check its hash, load it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from agent import config
from agent.assets import expected_hash, sha256_file
from agent.config import Config
from agent.errors import ModelError
from agent.device.hints import fetch_hint, import_hint
from agent.detect.catalogue import model

if TYPE_CHECKING:
    from agent.detect import Detector
    from agent.detect.tflite import TfliteDetector

log = logging.getLogger("agent.detect")


def model_path(cfg: Config, model_id: str) -> Path:
    """The installed file of a manifest model, after checking its SHA-256 (refused if it differs)."""
    return checked_model(cfg, model_id)[0]


def checked_model(cfg: Config, model_id: str) -> tuple[Path, str]:
    """(installed file, its SHA-256) of a manifest model, read once and refused if it differs from the pin."""
    spec = model(model_id)
    path = cfg.model_dir / spec.file
    if not path.is_file():
        raise ModelError(
            f"model {model_id!r} is not installed in {cfg.model_dir}; "
            f"run {fetch_hint(model_id, cfg)} or {import_hint(cfg)}"
        )
    expected = expected_hash(spec.pinned, path)
    if not expected:
        raise ModelError(
            f"model {model_id!r} has no pinned SHA-256 and none was recorded; install it with "
            f"`edge-agent models fetch {model_id} --accept-unchecked-hash` (prints the hash it saw)"
        )
    seen = sha256_file(path)
    if seen != expected:
        raise ModelError(
            f"model file {path} has SHA-256 {seen}, expected {expected}; refusing to load it: it is damaged, "
            f"truncated or was replaced; install it again with {fetch_hint(model_id, cfg)}"
        )
    return path, seen


def build_detector(cfg: Config, all_classes: bool = False) -> Detector:
    """The detector the config asks for (all_classes: ignore the allow-list, for `detect`)."""
    if cfg.detector.backend == "scripted":
        from agent.detect.scripted import ScriptedDetector

        return ScriptedDetector.from_file(Path(cfg.detector.script).expanduser(),
                                          None if all_classes else cfg.detector.classes)
    return build_tflite(cfg, all_classes)


def build_tflite(cfg: Config, all_classes: bool = False) -> TfliteDetector:
    """The model backend: plan CPU or Edge TPU, check the installed file's SHA-256, load it."""
    from agent.detect.delegate import plan
    from agent.detect.tflite import TfliteDetector

    d = cfg.detector
    chosen = plan(d)
    try:
        path, sha = checked_model(cfg, chosen.spec.id)
    except ModelError:
        missing = not (cfg.model_dir / chosen.spec.file).is_file()
        if not (chosen.delegates and d.delegate == "auto" and missing):
            raise  # a twin that is there but corrupt is an error to fix, not a reason to fall back
        # auto found an Edge TPU but its twin is not installed: the CPU model, said once.
        chosen = plan(config.replace(cfg, detector={"delegate": "cpu"}).detector)
        chosen.health["fallback"] = "Edge TPU twin not installed"
        log.info("delegate auto: Edge TPU present but the twin is not installed; running %s on the CPU",
                 chosen.spec.id)
        path, sha = checked_model(cfg, chosen.spec.id)
    det = TfliteDetector(
        chosen.spec, path, d.interpreter_threads, d.score_threshold, None if all_classes else d.classes,
        delegates=chosen.delegates, labels_path=Path(d.labels).expanduser() if d.labels else None,
        masks=cfg.privacy.masks, nms_iou=d.nms_iou, max_detections=d.max_detections,
        health=chosen.health, model_sha256=sha,
    )
    return det
