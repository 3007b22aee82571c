"""Unknown and unchecked hashes: accepted only when asked, the hash seen printed, recorded and enforced."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent import config
from agent.detect import catalogue
from agent.assets import obtain
from agent.detect.factory import model_path
from agent.errors import AssetError, ModelError


def test_unknown_hash_needs_the_flag_then_is_recorded_and_enforced(
    tmp_path: Path, assets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = catalogue.model("ssd_mobilenet_v2_coco_quant")
    assert spec.hash_status == "unknown"
    usb = tmp_path / "usb"
    usb.mkdir()
    # A stand-in file with the expected name (the real one is not staged here).
    shutil.copyfile(assets / "models/ssd_mobilenet_v1_coco_quant/detect.tflite", usb / spec.file)
    dest = tmp_path / "models"
    with pytest.raises(AssetError, match="--accept-unchecked-hash"):
        obtain(spec.pinned, dest, [usb], download=False)
    assert not (dest / spec.file).exists()
    obtain(spec.pinned, dest, [usb], download=False, accept_unchecked=True)
    seen = "e4b118e5e4531945de2e659742c7c590f7536f8d0ed26d135abcfe83b4779d13"
    assert seen in capsys.readouterr().out
    cfg = config.parse({"detector": {"model_dir": str(dest)}})
    assert model_path(cfg, spec.id) == dest / spec.file
    (dest / spec.file).write_bytes(b"TFL3" * 10)  # tampered after acceptance
    with pytest.raises(ModelError, match="refusing to load"):
        model_path(cfg, spec.id)


def test_manifest_is_complete() -> None:
    table = catalogue.models()
    for need in ("ssd_mobilenet_v1_coco_quant", "ssd_mobilenet_v2_coco_quant", "ssd_mobilenet_v2_coco_quant_edgetpu",
                 "efficientdet_lite0", "yolov5n_int8", "yolov5n_int8_edgetpu", "yolov8n_int8", "yolov8n_int8_edgetpu",
                 "yolox_nano_ti_lite_416_int8", "yolox_nano_ti_lite_320_int8", "yolox_nano_ti_lite_320dw_int8"):
        spec = table[need]
        assert spec.urls and spec.licence and spec.labels_path.is_file() and spec.decoder
        if spec.edgetpu:
            assert table[spec.edgetpu].cpu_twin == spec.id
    # the default is permissive, its hash checked, and it equals the config's default
    assert catalogue.default_model() == "yolox_nano_ti_lite_416_int8" == config.DetectorConfig().model
    default = table[catalogue.default_model()]
    assert default.bundle_ok and default.hash_status == "checked" and "AGPL" not in default.licence
    for yolox in ("yolox_nano_ti_lite_416_int8", "yolox_nano_ti_lite_320_int8", "yolox_nano_ti_lite_320dw_int8"):
        spec = table[yolox]
        assert spec.decoder == "yolox" and spec.notice == "LICENSE" and spec.notice_sha256 and spec.notice_urls
        assert spec.licence == "BSD-3-Clause AND Apache-2.0"
        assert all(u.startswith("https://raw.githubusercontent.com/MaxCYCHEN/yolox-ti-lite_tflite_int8/")
                   for u in spec.urls + spec.notice_urls)
    yolox = table["yolox_nano_ti_lite_416_int8"]
    assert (yolox.channels, yolox.pad) == ("bgr", "bottom_right")
    for yolo in ("yolov5n_int8", "yolov8n_int8", "yolov5n_int8_edgetpu", "yolov8n_int8_edgetpu"):
        assert table[yolo].licence == "AGPL-3.0" and not table[yolo].bundle_ok
    assert len(catalogue.models()["yolov8n_int8"].labels_path.read_text().split("\n")) - 1 == 80
