"""Detection fixtures: every staged model imported the way a technician would, real images as RGB."""

from __future__ import annotations

from pathlib import Path

import pytest

YOLOX_MODELS = ("yolox_nano_ti_lite_416_int8", "yolox_nano_ti_lite_320_int8", "yolox_nano_ti_lite_320dw_int8")
CPU_MODELS = ("ssd_mobilenet_v1_coco_quant", "yolov5n_int8", "yolov8n_int8") + YOLOX_MODELS
TPU_MODELS = ("yolov5n_int8_edgetpu", "yolov8n_int8_edgetpu")


@pytest.fixture(scope="session")
def models_dir(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All staged CPU models and their Edge TPU twins, imported from the assets folder (no network)."""
    from agent.detect import catalogue
    from agent.assets import obtain

    d = tmp_path_factory.mktemp("all-models")
    for model_id in CPU_MODELS + TPU_MODELS:
        obtain(catalogue.model(model_id).pinned, d, [assets / "models"], download=False)
    return d


@pytest.fixture(scope="session")
def image(assets: Path):  # type: ignore[no-untyped-def]
    """image("bus.jpg") -> the RGB uint8 array of a staged image."""
    import cv2

    cache: dict[str, object] = {}

    def load(name: str):  # type: ignore[no-untyped-def]
        if name not in cache:
            bgr = cv2.imread(str(assets / "images" / name), cv2.IMREAD_COLOR)
            assert bgr is not None, name
            cache[name] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return cache[name]

    return load


@pytest.fixture(scope="session")
def detector(models_dir: Path):  # type: ignore[no-untyped-def]
    """detector(model_id, **detector_fields, masks=...) -> a built detector, cached per arguments."""
    from agent import config
    from agent.detect.factory import build_detector

    cache: dict[tuple, object] = {}

    def build(model_id: str, masks: tuple = (), **fields):  # type: ignore[no-untyped-def]
        key = (model_id, masks, repr(sorted(fields.items())))
        if key not in cache:
            table = {"detector": {"model": model_id, "model_dir": str(models_dir), "delegate": "cpu",
                                  "threads": 2, **fields},
                     "privacy": {"masks": [[list(p) for p in poly] for poly in masks]}}
            cache[key] = build_detector(config.parse(table))
        return cache[key]

    return build
