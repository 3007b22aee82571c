"""`edge-agent detect`, `models` and `bench detect` in a subprocess: JSON output and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from helpers import cli

from agent.detect import catalogue


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
        assert set(o) == {"image", "model", "detections"} and o["model"] == catalogue.default_model()
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
    assert figures["model"] == catalogue.default_model() and figures["threads"] == 2
    assert figures["bare_ms"] > 0 and figures["agent_ms"] > 0
    assert abs(figures["ratio"] - figures["bare_ms"] / figures["agent_ms"]) < 0.01


def test_default_model_finds_the_person_in_grace_hopper_and_squat_none_in_cat(models_dir: Path, assets: Path) -> None:
    imgs = [str(assets / "images" / n) for n in ("grace_hopper.bmp", "squat.bmp", "cat.bmp")]
    r = cli("detect", *imgs, "--model-dir", str(models_dir), "--json")
    assert r.returncode == 0, r.stderr
    grace, squat, cat = (json.loads(line) for line in r.stdout.splitlines())
    assert grace["model"] == catalogue.default_model()
    for found in (grace, squat):
        people = [d for d in found["detections"] if d["label"] == "person"]
        assert len(people) == 1 and people[0]["score"] >= 0.8, found
    assert cat["detections"] == []


def test_model_file_tells_yolox_from_yolov5(assets: Path) -> None:
    """Both give [1, N, 85]; the row count for the input size says which (it used to find nothing)."""
    for path in ("yolox_nano_ti_lite_416_int8/yolox_nano_ti_lite_0510_full_integer_quant.tflite",
                 "yolox_nano_ti_lite_320_int8/yolox_nano_320_test_ti_lite_full_integer_quant.tflite",
                 "yolov5n_int8/yolov5n-int8.tflite"):
        r = cli("detect", str(assets / "images" / "bus.jpg"), "--model-file", str(assets / "models" / path), "--json")
        assert r.returncode == 0, r.stderr
        people = [d for d in json.loads(r.stdout)["detections"] if d["label"] == "person" and d["score"] >= 0.6]
        assert len(people) >= 2, (path, r.stdout)


def test_a_model_is_installed_with_its_licence_notice(tmp_path: Path, assets: Path) -> None:
    from agent.assets import sha256_file

    spec = catalogue.model("yolox_nano_ti_lite_416_int8")
    r = cli("models", "fetch", spec.id, "--from", str(assets), "--offline", "--state", str(tmp_path / "a"))
    assert r.returncode == 0, r.stderr
    notice = tmp_path / "a" / "models" / (spec.file + ".LICENSE")
    assert sha256_file(notice) == spec.notice_sha256 and "Texas Instruments" in notice.read_text()
    # a copy of the model without its LICENSE beside it is refused, and nothing is left installed
    lone = tmp_path / "usb"
    lone.mkdir()
    shutil.copyfile(assets / "models" / "yolox_nano_ti_lite_416_int8" / spec.file, lone / spec.file)
    line = one_clear_line(cli("models", "import", str(lone / spec.file), "--state", str(tmp_path / "b")))
    assert "licence notice" in line and "LICENSE" in line
    assert not (tmp_path / "b" / "models" / spec.file).exists()
    shutil.copyfile(assets / "models" / "yolox_nano_ti_lite_416_int8" / "LICENSE", lone / "LICENSE")
    r = cli("models", "import", str(lone / spec.file), "--state", str(tmp_path / "b"))
    assert r.returncode == 0 and (tmp_path / "b" / "models" / (spec.file + ".LICENSE")).is_file(), r.stderr
