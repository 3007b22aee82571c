"""Pieces of the detect step checked against hand-computed values: quantization, NMS, masks."""

from __future__ import annotations


import numpy as np

from agent.detect.masks import rasterize
from agent.detect.nms import nms
from agent.detect.preprocess import Preprocessor, quant_table, xor_constant


def test_quant_table_identity_for_raw_pixel_models() -> None:
    assert quant_table(np.uint8, 0.0078125, 128, 128.0, 128.0) is None  # SSD: raw pixels
    assert quant_table(np.uint8, 1 / 255, 0, 0.0, 255.0) is None  # YOLOv5 uint8


def test_quant_table_for_int8_yolov8() -> None:
    table = quant_table(np.int8, 0.01865844801068306, -14, 0.0, 255.0)
    assert table is not None and table.dtype == np.uint8 and table.shape == (256, 1)
    q = table[:, 0].view(np.int8)
    assert q[0] == -14 and q[114] == 10 and q[255] == 40  # round(p / 255 / scale) - 14
    assert np.all(np.diff(q.astype(int)) >= 0)


def test_int8_offset_table_is_one_xor() -> None:
    yolox = quant_table(np.int8, 1.0, -128, 0.0, 1.0)  # YOLOX TI-lite: the byte is pixel ^ 0x80
    assert yolox is not None and xor_constant(yolox) == 0x80
    assert xor_constant(quant_table(np.int8, 0.01865844801068306, -14, 0.0, 255.0)) is None
    assert xor_constant(None) is None


def _reference_input(image: np.ndarray, in_w: int, in_h: int, table: np.ndarray | None, bgr: bool, pad: str,
                     mask: tuple[tuple[float, float], ...]) -> np.ndarray:
    """The model input built the plain way: letterbox, mask, swap, table over everything."""
    import cv2

    h, w = image.shape[:2]
    r = min(in_w / w, in_h / h)
    nw, nh = max(1, round(w * r)), max(1, round(h * r))
    x0, y0 = ((in_w - nw) // 2, (in_h - nh) // 2) if pad == "centre" else (0, 0)
    picture = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    if mask:
        m = rasterize([mask], nw, nh)
        assert m is not None
        picture[m[:, :, 0]] = 0
    if bgr:
        picture = picture[:, :, ::-1]
    out = np.full((in_h, in_w, 3), 114, np.uint8)
    out[y0 : y0 + nh, x0 : x0 + nw] = picture
    return out if table is None else table[:, 0][out]


def test_preprocessor_fast_paths_match_the_plain_construction() -> None:
    rng = np.random.default_rng(3)
    tables = {"none": None, "xor": quant_table(np.int8, 1.0, -128, 0.0, 1.0),
              "lut": quant_table(np.int8, 0.01865844801068306, -14, 0.0, 255.0)}
    mask = ((0.6, 0.1), (0.9, 0.1), (0.9, 0.5))
    for name, table in tables.items():
        for bgr in (False, True):
            for pad in ("centre", "bottom_right"):
                for w, h in ((160, 90), (90, 160), (64, 64)):  # padding below, beside, none
                    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                    tensor = np.full((1, 48, 64, 3), 7, np.uint8)  # stale bytes: all must be rewritten
                    pre = Preprocessor(tensor, 64, 48, True, table, [mask], bgr=bgr, pad=pad)
                    pre.write(image)
                    expected = _reference_input(image, 64, 48, table, bgr, pad, mask)
                    assert np.array_equal(tensor[0], expected), (name, bgr, pad, w, h)
                    out = np.full((48, 64, 3), 7, np.uint8)
                    pre.write(image, out=out)  # the frame loop's own buffer: the same bytes
                    assert np.array_equal(out, expected), (name, bgr, pad, w, h)
                    # the same picture delivered B, G, R (OpenCV's order): the same model input
                    decoded = np.ascontiguousarray(image[:, :, ::-1])
                    tensor[:] = 7
                    pre.write(decoded, channels="bgr")
                    assert np.array_equal(tensor[0], expected), (name, bgr, pad, w, h, "bgr frame")
                    out[:] = 7
                    pre.write(decoded, out=out, channels="bgr")
                    assert np.array_equal(out, expected), (name, bgr, pad, w, h, "bgr frame")


def test_new_masks_apply_from_the_next_frame_even_after_a_stale_geometry() -> None:
    image = np.random.default_rng(5).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    mask = ((0.6, 0.1), (0.9, 0.1), (0.9, 0.5))
    tensor = np.zeros((1, 48, 64, 3), np.uint8)
    pre = Preprocessor(tensor, 64, 48, True, None)
    pre.write(image)  # the plan for this frame size, without masks
    assert np.array_equal(tensor[0], _reference_input(image, 64, 48, None, False, "centre", ()))
    before = pre.masks
    pre.set_masks([mask])  # e.g. the setup view, from another thread
    pre.geometry(160, 90, before)  # a capture thread finishing a geometry with the masks it started with
    pre.write(image)
    assert np.array_equal(tensor[0], _reference_input(image, 64, 48, None, False, "centre", mask))


def _greedy_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float) -> list[int]:
    """The plain definition, box by box: best score first (ties: earlier box), drop any box of
    the same class whose IoU with a kept box is above `iou`. Boxes x0, y0, x1, y1."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    keep: list[int] = []
    for i in order:
        x0, y0, x1, y1 = (float(v) for v in boxes[i])
        ok = True
        for k in keep:
            if classes[k] != classes[i]:
                continue
            a0, b0, a1, b1 = (float(v) for v in boxes[k])
            inter = max(0.0, min(x1, a1) - max(x0, a0)) * max(0.0, min(y1, b1) - max(y0, b0))
            union = (x1 - x0) * (y1 - y0) + (a1 - a0) * (b1 - b0) - inter
            if union > 0 and inter / union > iou:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


def _tlwh(boxes: np.ndarray) -> np.ndarray:
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def test_nms_is_class_wise() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    classes = np.array([0, 0, 1, 0])
    keep = nms(_tlwh(boxes), scores, classes, 0.45, 100)
    assert keep.tolist() == [0, 2, 3]  # box 1 overlaps box 0 of its class; box 2 is another class
    assert nms(_tlwh(boxes), scores, classes, 0.45, 1).tolist() == [0]
    assert nms(_tlwh(boxes)[:0], scores[:0], classes[:0], 0.45, 10).size == 0


def test_nms_never_keeps_a_box_without_width_or_height() -> None:
    tlwh = np.array([[0, 0, 0, 10], [50, 50, 10, 0], [5, 5, 10, 10], [100, 100, 0, 0], [6, 6, 10, 10]], np.float32)
    scores = np.array([0.9, 0.9, 0.8, 0.95, 0.7], np.float32)
    classes = np.zeros(5, np.int64)
    assert nms(tlwh, scores, classes, 0.45, 100).tolist() == [2]  # box 4 overlaps box 2
    assert nms(tlwh[:2], scores[:2], classes[:2], 0.45, 100).size == 0


def test_nms_keeps_what_the_greedy_definition_keeps() -> None:
    rng = np.random.default_rng(11)
    for case in range(600):
        n = int(rng.integers(1, 30))
        xy = rng.uniform(0, 400, (n, 2))
        if case % 2:  # a crowd: heavy overlaps, where the order of suppression matters
            xy = xy[:1] + rng.normal(0, 10, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 120, (n, 2))], axis=1).astype(np.float32)
        scores = rng.uniform(0.3, 1.0, n).astype(np.float32)
        if case % 3 == 0:
            scores = np.round(scores, 1)  # ties
        classes = rng.integers(0, 3, n)
        iou = (0.45, 0.7)[case % 2]
        expected = _greedy_nms(boxes, scores, classes, iou)
        assert nms(_tlwh(boxes), scores, classes, iou, 100).tolist() == expected, case
        assert nms(_tlwh(boxes), scores, classes, iou, 3).tolist() == expected[:3], case


def test_mask_rasterized_at_model_resolution() -> None:
    m = rasterize([((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0))], 100, 50)
    assert m is not None and m.shape == (50, 100, 1)
    assert m[:, :50].all() and not m[:, 52:].any()
    assert rasterize([], 100, 50) is None


def test_ssd_decoder_confirms_classes_and_scores_from_their_values(detector, image) -> None:  # type: ignore[no-untyped-def]
    from agent.types import Frame

    det = detector("ssd_mobilenet_v1_coco_quant", classes=["person"])
    dec = det.decode
    right = det.detect(Frame(image("grace_hopper.bmp"), 0.0, 0))
    assert dec.checked and right
    dec.idx[1], dec.idx[2] = dec.idx[2], dec.idx[1]  # as a TF2 export might order them
    dec.checked = False
    assert det.detect(Frame(image("grace_hopper.bmp"), 0.0, 0)) == right


def test_yolox_grid_rows_tell_yolox_from_yolov5() -> None:
    from agent.detect.decoders import guess_decoder
    from agent.detect.yolox import grid_rows, make_grid

    assert grid_rows(320, 320) == 2100 and grid_rows(416, 416) == 3549 and grid_rows(640, 640) * 3 == 25200
    cells, strides = make_grid(416, 416)
    assert cells.shape == (3549, 2) and list(cells[53]) == [1.0, 1.0] and strides[2704] == 16.0
    assert list(cells[-1]) == [12.0, 12.0] and strides[-1] == 32.0

    def shapes(out: list[int], inp: list[int]) -> str | None:
        return guess_decoder([{"shape": out}], [{"shape": inp}])

    assert shapes([1, 3549, 85], [1, 416, 416, 3]) == "yolox"
    assert shapes([1, 2100, 85], [1, 320, 320, 3]) == "yolox"
    assert shapes([1, 25200, 85], [1, 640, 640, 3]) == "yolov5"
    assert shapes([1, 3000, 85], [1, 416, 416, 3]) is None  # neither: refused, not guessed
    assert shapes([1, 84, 8400], [1, 640, 640, 3]) == "yolov8"
