"""The Edge TPU path as far as a machine without libedgetpu allows: explicit fallback, never on the CPU."""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

import pytest

from agent import config
from agent.detect import catalogue
from agent.detect import delegate as delegate_mod
from agent.detect.factory import build_detector
from agent.detect.runtime import load_interpreter
from agent.detect.tflite import TfliteDetector
from agent.errors import DelegateUnavailable, ModelError
from agent.types import Frame


def _libedgetpu_present() -> bool:
    try:
        ctypes.CDLL("libedgetpu.so.1")
        return True
    except OSError:
        return False


needs_no_tpu = pytest.mark.skipif(_libedgetpu_present(), reason="libedgetpu is installed here")


def _cfg(models_dir: Path, **detector) -> config.Config:  # type: ignore[no-untyped-def]
    return config.parse({"detector": {"model_dir": str(models_dir), **detector}})


@pytest.mark.parametrize("model_id", ["yolov5n_int8_edgetpu", "yolov8n_int8_edgetpu"])
def test_edgetpu_model_is_never_run_on_the_cpu(models_dir: Path, model_id: str) -> None:
    spec = catalogue.model(model_id)
    path = models_dir / spec.file
    with pytest.raises(ModelError, match="never run on the CPU"):
        TfliteDetector(spec, path)
    # Even a file the manifest does not know is recognized by its Edge TPU op.
    with pytest.raises(ModelError, match="compiled for the Edge TPU"):
        load_interpreter(path, 1)


@needs_no_tpu
def test_missing_libedgetpu_fails_with_the_hint(models_dir: Path) -> None:
    cfg = _cfg(models_dir, model="yolov8n_int8", delegate="edgetpu", on_missing_accelerator="fail")
    with pytest.raises(DelegateUnavailable) as exc:
        build_detector(cfg)
    text = str(exc.value)
    assert "libedgetpu.so.1" in text and "on_missing_accelerator" in text and "\n" not in text


@needs_no_tpu
def test_missing_libedgetpu_falls_back_to_the_cpu_twin_with_one_warning(
    models_dir: Path, image, caplog: pytest.LogCaptureFixture  # type: ignore[no-untyped-def]
) -> None:
    delegate_mod._said.clear()
    cfg = _cfg(models_dir, model="yolov8n_int8_edgetpu", delegate="edgetpu", on_missing_accelerator="cpu")
    with caplog.at_level(logging.INFO, logger="agent.detect"):
        det = build_detector(cfg)
        build_detector(cfg)  # rebuilt: still one warning
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "yolov8n_int8" in warnings[0].getMessage()
    health = det.health()
    assert health["accelerator"] == 0 and health["delegate"] == "cpu" and health["model"] == "yolov8n_int8"
    assert "libedgetpu" in health["fallback"]
    found = det.detect(Frame(image("grace_hopper.bmp"), 0.0, 0))
    assert any(d.label == "person" and d.score >= 0.5 for d in found)


@needs_no_tpu
def test_auto_uses_the_cpu_twin_and_says_so(models_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    delegate_mod._said.clear()
    with caplog.at_level(logging.INFO, logger="agent.detect"):
        det = build_detector(_cfg(models_dir, model="yolov5n_int8", delegate="auto"))
    assert det.model_id == "yolov5n_int8" and det.health()["accelerator"] == 0
    assert det.health()["fallback"]
    assert sum("auto" in r.getMessage() for r in caplog.records) == 1


def test_cpu_delegate_runs_the_twin_of_an_edgetpu_model(models_dir: Path) -> None:
    det = build_detector(_cfg(models_dir, model="yolov8n_int8_edgetpu", delegate="cpu"))
    assert det.model_id == "yolov8n_int8"
    assert det.health() == {"accelerator": 0, "delegate": "cpu", "fallback": "", "model": "yolov8n_int8"}


def test_edgetpu_asked_for_a_model_without_a_twin(models_dir: Path) -> None:
    with pytest.raises(ModelError, match="no Edge TPU twin"):
        build_detector(_cfg(models_dir, model="ssd_mobilenet_v1_coco_quant", delegate="edgetpu"))
