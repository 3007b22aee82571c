"""Every staged CPU model on the real images: persons found, none invented, boxes where they belong."""

from __future__ import annotations

import numpy as np
import pytest

from agent.types import Box, Frame
from tests.detect.conftest import CPU_MODELS


def run(det, img):  # type: ignore[no-untyped-def]
    return det.detect(Frame(img, 0.0, 0))


@pytest.mark.parametrize("model_id", CPU_MODELS)
def test_person_in_grace_hopper_none_in_cat(detector, image, model_id: str) -> None:  # type: ignore[no-untyped-def]
    det = detector(model_id, score_threshold=0.3, classes=["person", "cat"])
    people = [d for d in run(det, image("grace_hopper.bmp")) if d.label == "person"]
    assert people and max(d.score for d in people) >= 0.5, people
    best = max(people, key=lambda d: d.score)
    # The portrait fills the picture: the person's box spans most of it.
    assert best.box.area > 0.5 and 0.0 <= best.box.x0 < best.box.x1 <= 1.0 and 0.0 <= best.box.y0 < best.box.y1 <= 1.0
    found = run(det, image("cat.bmp"))
    assert not [d for d in found if d.label == "person" and d.score >= 0.5], found
    assert any(d.label == "cat" and d.score >= 0.5 for d in found), "the cat itself should be found"


# Ultralytics' own YOLOv8n result on bus.jpg (810 x 1080), x0 y0 x1 y1 in pixels.
BUS_REFERENCE = {
    "person": [(48, 398, 245, 902), (670, 380, 810, 875), (222, 405, 345, 857)],
    "bus": [(19, 231, 805, 768)],
}


def test_yolov8_finds_the_bus_pedestrians_where_they_stand(detector, image) -> None:  # type: ignore[no-untyped-def]
    det = detector("yolov8n_int8", classes=["person", "bus"])
    found = run(det, image("bus.jpg"))
    people = [d for d in found if d.label == "person" and d.score >= 0.5]
    assert len(people) >= 3, found
    for label, boxes in BUS_REFERENCE.items():
        for x0, y0, x1, y1 in boxes:
            ref = Box(x0 / 810, y0 / 1080, x1 / 810, y1 / 1080)
            best = max((d.box.iou(ref) for d in found if d.label == label), default=0.0)
            assert best >= 0.85, (label, ref, found)


@pytest.mark.parametrize("model_id", ["yolov5n_int8", "yolov8n_int8", "yolox_nano_ti_lite_416_int8"])
def test_letterbox_is_undone(detector, image, model_id: str) -> None:  # type: ignore[no-untyped-def]
    """The same person on a wider grey canvas: the box moves exactly as the canvas says."""
    det = detector(model_id)
    img = image("squat.bmp")  # 500 x 610
    h, w = img.shape[:2]
    canvas = np.full((h, 2 * w, 3), 90, np.uint8)
    canvas[:, w:] = img  # the photo on the right half
    a = max(run(det, img), key=lambda d: d.score).box
    b = max(run(det, canvas), key=lambda d: d.score).box
    moved = Box(0.5 + a.x0 / 2, a.y0, 0.5 + a.x1 / 2, a.y1)
    assert b.iou(moved) >= 0.85, (a, b)


def test_result_does_not_depend_on_the_previous_frame_size(detector, image) -> None:  # type: ignore[no-untyped-def]
    det = detector("yolov8n_int8", classes=["person", "tie"])
    first = run(det, image("zidane.jpg"))  # landscape
    run(det, image("bus.jpg"))  # portrait: other padding
    again = run(det, image("zidane.jpg"))
    assert first == again and first


@pytest.mark.parametrize("model_id", CPU_MODELS)
def test_the_runtime_never_writes_its_input(detector, image, model_id: str) -> None:  # type: ignore[no-untyped-def]
    """The letterbox padding is written once per picture placement: that holds only while invoke()
    leaves the input tensor's bytes as they were."""
    det = detector(model_id)
    run(det, image("zidane.jpg"))
    index = det.interp.get_input_details()[0]["index"]
    before = det.interp.get_tensor(index)
    for _ in range(2):
        det.interp.invoke()
    assert np.array_equal(det.interp.get_tensor(index), before)


@pytest.mark.parametrize("model_id", CPU_MODELS)
def test_tensors_stay_where_they_were_allocated(detector, image, model_id: str) -> None:  # type: ignore[no-untyped-def]
    """The detector keeps arrays over the input and output tensors' memory across invoke()
    (agent/detect/runtime.pinned): that holds only while the runtime never moves them."""
    det = detector(model_id)
    interp = det.interp
    held = {det.input_index: det.pre.tensor, **det.outputs.arrays}  # made when the detector was built
    # the YOLO decoders read their output in place; the SSD one copies its four small outputs
    assert len(held) == 1 + (0 if det.spec.decoder == "ssd_postprocess" else 1)
    run(det, image("zidane.jpg"))
    stages = det.stages()
    stages.infer(stages.prepare(Frame(image("bus.jpg"), 0.0, 0)))
    run(det, image("bus.jpg"))
    for index, array in held.items():
        assert array.ctypes.data == interp.tensor(index)().ctypes.data, index
    for index, array in det.outputs.arrays.items():
        assert np.array_equal(array, interp.get_tensor(index)), index


def test_a_runtime_that_moves_its_tensors_gets_copies_and_the_same_detections(  # type: ignore[no-untyped-def]
        detector, image, models_dir, monkeypatch) -> None:
    from agent import config
    from agent.detect import tflite
    from agent.detect.factory import build_detector

    monkeypatch.setattr(tflite, "tensors_stay", lambda interp, indices: False)
    table = {"detector": {"model": "yolox_nano_ti_lite_416_int8", "model_dir": str(models_dir),
                          "delegate": "cpu", "threads": 2, "classes": ["person", "tie"]}}
    moving = build_detector(config.parse(table))
    assert moving.outputs.arrays == {}  # nothing pinned
    pinned_det = detector("yolox_nano_ti_lite_416_int8", classes=["person", "tie"])
    for name in ("zidane.jpg", "bus.jpg", "zidane.jpg"):
        found = run(moving, image(name))
        assert found and found == run(pinned_det, image(name)), name


def test_a_frame_that_is_not_three_channel_bytes_is_refused(detector) -> None:  # type: ignore[no-untyped-def]
    det = detector("yolox_nano_ti_lite_416_int8")
    for bad in (np.zeros((48, 64), np.uint8), np.zeros((48, 64, 4), np.uint8), np.zeros((48, 64, 3), np.float32)):
        with pytest.raises(ValueError, match="H x W x 3 uint8"):
            det.detect(Frame(bad, 0.0, 0))


def test_detect_after_the_frame_loop_filled_the_tensor_pads_again(detector, image) -> None:  # type: ignore[no-untyped-def]
    det = detector("yolox_nano_ti_lite_416_int8", classes=["person", "tie"])
    first = run(det, image("zidane.jpg"))  # landscape: padding below the picture
    stages = det.stages()
    stages.infer(stages.prepare(Frame(image("bus.jpg"), 0.0, 0)))  # portrait, through set_tensor
    again = run(det, image("zidane.jpg"))
    assert first == again and first


def test_class_allow_list_drops_other_classes_inside_detection(detector, image) -> None:  # type: ignore[no-untyped-def]
    only_people = run(detector("yolov8n_int8"), image("bus.jpg"))
    assert only_people and {d.label for d in only_people} == {"person"}
    only_bus = run(detector("yolov8n_int8", classes=["bus"]), image("bus.jpg"))
    assert [d.label for d in only_bus] == ["bus"]
    ssd = run(detector("ssd_mobilenet_v1_coco_quant", classes=["cat"]), image("grace_hopper.bmp"))
    assert ssd == []


@pytest.mark.parametrize("model_id", ["ssd_mobilenet_v1_coco_quant", "yolov8n_int8", "yolox_nano_ti_lite_416_int8"])
def test_privacy_mask_over_the_person_removes_the_person(detector, image, model_id: str) -> None:  # type: ignore[no-untyped-def]
    img = image("squat.bmp")
    people = [d for d in run(detector(model_id), img) if d.label == "person"]
    assert people, "the unmasked photo must show the person"
    b = max(people, key=lambda d: d.score).box
    m = 0.03
    x0, y0, x1, y1 = max(b.x0 - m, 0), max(b.y0 - m, 0), min(b.x1 + m, 1), min(b.y1 + m, 1)
    over_person = ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
    masked = detector(model_id, masks=(over_person,), score_threshold=0.2)
    assert run(masked, img) == []
    # Control: a mask elsewhere leaves the person visible.
    corner = ((0.0, 0.0), (0.1, 0.0), (0.1, 0.1))
    assert [d for d in run(detector(model_id, masks=(corner,)), img) if d.label == "person"]


def test_yolox_input_is_bgr_padded_bottom_right(detector) -> None:  # type: ignore[no-untyped-def]
    """The 416 model gets B, G, R minus 128, the picture at the top-left and grey 114 below it."""
    det = detector("yolox_nano_ti_lite_416_int8")
    img = np.zeros((200, 400, 3), np.uint8)
    img[..., 0] = 250  # pure red, RGB
    run(det, img)
    tensor = det.interp.get_tensor(det.interp.get_input_details()[0]["index"])[0]
    assert tensor.dtype == np.int8 and tensor.shape == (416, 416, 3)
    assert list(tensor[10, 10]) == [-128, -128, 250 - 128]  # blue, green, red
    assert list(tensor[207, 410]) == [-128, -128, 250 - 128]  # 400x200 -> 416x208 at the top-left
    assert list(tensor[208, 10]) == [114 - 128] * 3 and list(tensor[415, 415]) == [114 - 128] * 3
