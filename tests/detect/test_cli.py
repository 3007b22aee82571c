"""`edge-agent detect`, `models` and `bench detect` in a subprocess: JSON output and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.helpers import cli


def one_clear_line(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_detect_json_one_object_per_image(models_dir: Path, assets: Path) -> None:
    imgs = [str(assets / "images" / n) for n in ("grace_hopper.bmp", "cat.bmp")]
    r = cli("detect", *imgs, "--model-dir", str(models_dir), "--json")
    assert r.returncode == 0, r.stderr
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["image"] for o in objs] == imgs
    for o in objs:
        assert set(o) == {"image", "model", "detections"} and o["model"] == "ssd_mobilenet_v1_coco_quant"
        for d in o["detections"]:
            assert set(d) == {"label", "score", "box"} and d["label"] == "person"
            x0, y0, x1, y1 = d["box"]
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    assert max(d["score"] for d in objs[0]["detections"]) >= 0.5
    assert objs[1]["detections"] == []


def test_detect_with_a_yolo_model_by_id(models_dir: Path, assets: Path) -> None:
    r = cli("detect", str(assets / "images" / "bus.jpg"), "--model", "yolov8n_int8", "--model-dir", str(models_dir),
            "--json")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["model"] == "yolov8n_int8"
    assert sum(d["score"] >= 0.5 for d in obj["detections"]) >= 3


def test_truncated_model_file(tmp_path: Path, assets: Path) -> None:
    bad = tmp_path / "truncated.tflite"
    bad.write_bytes((assets / "models/yolov8n_int8/yolov8n_full_integer_quant.tflite").read_bytes()[:300_000])
    line = one_clear_line(cli("detect", str(assets / "images/cat.bmp"), "--model-file", str(bad)))
    assert "truncated.tflite" in line and "not a usable TFLite model" in line


def test_foreign_model_file(tmp_path: Path, assets: Path) -> None:
    bad = tmp_path / "photo.tflite"
    shutil.copyfile(assets / "images/bus.jpg", bad)
    line = one_clear_line(cli("detect", str(assets / "images/cat.bmp"), "--model-file", str(bad)))
    assert "not a TFLite model" in line


def test_model_whose_outputs_fit_no_decoder(assets: Path) -> None:
    face = assets / "models/blazeface/face_detection_back.tflite"  # a real model with other outputs
    line = one_clear_line(cli("detect", str(assets / "images/cat.bmp"), "--model-file", str(face)))
    assert "fit no decoder" in line


def test_not_an_image(tmp_path: Path, models_dir: Path) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a picture")
    line = one_clear_line(cli("detect", str(bad), "--model-dir", str(models_dir)))
    assert "not an image" in line


def test_missing_labels_file(tmp_path: Path, models_dir: Path, assets: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[detector]\nmodel_dir = "{models_dir}"\nlabels = "{tmp_path}/nope.txt"\n')
    line = one_clear_line(cli("detect", str(assets / "images/cat.bmp"), "--config", str(cfg)))
    assert "labels file" in line and "nope.txt" in line


def test_missing_delegate_library(tmp_path: Path, models_dir: Path, assets: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[detector]\nmodel_dir = "{models_dir}"\nmodel = "yolov8n_int8"\ndelegate = "edgetpu"\n'
                   f'edgetpu_library = "libedgetpu-absent.so.1"\n')
    line = one_clear_line(cli("detect", str(assets / "images/cat.bmp"), "--config", str(cfg)))
    assert "libedgetpu-absent.so.1" in line and "on_missing_accelerator" in line


def test_edgetpu_file_given_directly_is_refused(assets: Path) -> None:
    tpu = assets / "models/yolov5n_int8/yolov5n-int8_edgetpu.tflite"
    line = one_clear_line(cli("detect", str(assets / "images/cat.bmp"), "--model-file", str(tpu)))
    assert "Edge TPU" in line


def test_import_refuses_a_file_with_another_hash_printing_both(tmp_path: Path, assets: Path) -> None:
    import hashlib

    fake = tmp_path / "yolov8n_full_integer_quant.tflite"  # the right name, the wrong (cut) bytes
    data = (assets / "models/yolov8n_int8/yolov8n_full_integer_quant.tflite").read_bytes()[:-1000]
    fake.write_bytes(data)
    line = one_clear_line(cli("models", "import", str(fake), "--state", str(tmp_path / "s")))
    assert hashlib.sha256(data).hexdigest() in line  # seen
    assert "3c2fd2847f70c21c4589435027d4f29173ce74085696f23ca77a48e026efd869" in line  # pinned


def test_bench_detect_prints_one_json_line(models_dir: Path) -> None:
    r = cli("bench", "detect", "--model-dir", str(models_dir), "--repeat", "3", "--threads", "2")
    assert r.returncode == 0, r.stderr
    figures = json.loads(r.stdout.strip().splitlines()[-1])
    assert figures["model"] == "ssd_mobilenet_v1_coco_quant" and figures["threads"] == 2
    assert figures["bare_ms"] > 0 and figures["agent_ms"] > 0
    assert abs(figures["ratio"] - figures["bare_ms"] / figures["agent_ms"]) < 0.01
