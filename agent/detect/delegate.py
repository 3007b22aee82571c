"""Decide CPU or Edge TPU for the configured model, load the delegate, say so once."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from agent.config import DetectorConfig
from agent.detect.runtime import edgetpu_delegate
from agent.errors import DelegateUnavailable, ModelError
from agent.detect.catalogue import ModelSpec, model

log = logging.getLogger("agent.detect")
_said: set[str] = set()


def _once(level: int, message: str) -> None:
    """Log a transition once per process, however often the detector is rebuilt."""
    if message not in _said:
        _said.add(message)
        log.log(level, message)


@dataclass
class Plan:
    """Which model file runs, with which delegates, and the health that reports it."""

    spec: ModelSpec
    delegates: list[Any] = field(default_factory=list)
    health: dict[str, Any] = field(default_factory=dict)


def plan(d: DetectorConfig, model_id: str | None = None) -> Plan:
    """The model and delegate for detector config `d` (model_id overrides d.model).

    cpu: the CPU model (an _edgetpu model's CPU twin). edgetpu: the Edge TPU twin through
    libedgetpu; when the library is missing, fail (DelegateUnavailable with the hint) or, with
    on_missing_accelerator = "cpu", run the CPU twin with one warning. auto: the Edge TPU when the
    model has a twin and the library loads, else the CPU model, logged once.
    """
    spec = model(model_id or d.model)
    cpu = model(spec.cpu_twin) if spec.is_edgetpu and spec.cpu_twin else spec
    tpu = spec if spec.is_edgetpu else (model(spec.edgetpu) if spec.edgetpu else None)

    def on_cpu(fallback: str) -> Plan:
        if cpu.is_edgetpu:
            raise ModelError(
                f"{spec.id} has no CPU twin in the manifest and cannot run without the Edge TPU"
            )
        return Plan(
            cpu, [], {"accelerator": 0, "delegate": "cpu", "fallback": fallback, "model": cpu.id}
        )

    if d.delegate == "cpu":
        if spec.is_edgetpu:
            _once(
                logging.INFO,
                f"detector.delegate is cpu: running {cpu.id}, the CPU twin of {spec.id}",
            )
        return on_cpu("")
    if tpu is None:
        if d.delegate == "edgetpu":
            raise ModelError(
                f"{spec.id} has no Edge TPU twin; pick a model with one (`edge-agent models list`) "
                f"or set detector.delegate = \"cpu\""
            )
        return on_cpu("")
    try:
        delegate = edgetpu_delegate(d.edgetpu_library, d.edgetpu_device)
    except DelegateUnavailable as exc:
        if d.delegate == "edgetpu" and d.on_missing_accelerator == "fail":
            raise
        reason = str(exc).split(";")[0]
        if d.delegate == "edgetpu":
            _once(
                logging.WARNING,
                f"Edge TPU configured but unavailable ({reason}); running {cpu.id} on the CPU",
            )
        else:
            _once(
                logging.INFO, f"delegate auto: no Edge TPU ({reason}); running {cpu.id} on the CPU"
            )
        return on_cpu(reason)
    _once(logging.INFO, f"Edge TPU delegate loaded: running {tpu.id}")
    return Plan(
        tpu, [delegate], {"accelerator": 1, "delegate": "edgetpu", "fallback": "", "model": tpu.id}
    )
