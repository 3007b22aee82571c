"""Pick the output decoder for a model: by the manifest's name, or by output shapes for a loose file."""

from __future__ import annotations

from typing import Any

from agent.detect.ssd import SsdDecoder
from agent.detect.yolo import Yolov5Decoder, Yolov8Decoder
from agent.detect.yolox import YoloxDecoder, grid_rows

DECODERS: dict[str, Any] = {
    SsdDecoder.name: SsdDecoder,
    Yolov5Decoder.name: Yolov5Decoder,
    Yolov8Decoder.name: Yolov8Decoder,
    YoloxDecoder.name: YoloxDecoder,
}


def guess_decoder(details: list[dict[str, Any]], inputs: list[dict[str, Any]] | None = None) -> str | None:
    """ssd_postprocess, yolov5, yolov8 or yolox from the output (and input) shapes; None: unsure.

    YOLOv5 and YOLOX both give [1, N, 5 + C]; they differ in N for the same input: YOLOX has one
    row per grid cell at strides 8, 16, 32, YOLOv5 three anchors per cell. Any other N fits neither.
    """
    if len(details) == 4:
        return SsdDecoder.name
    if len(details) != 1:
        return None
    shape = [int(v) for v in details[0]["shape"]]
    if len(shape) != 3 or shape[0] != 1:
        return None
    if shape[1] > shape[2] and shape[2] > 5:
        if not inputs or len(inputs[0]["shape"]) != 4:
            return None
        _, in_h, in_w, _ = (int(v) for v in inputs[0]["shape"])
        cells = grid_rows(in_w, in_h)
        if shape[1] == cells:
            return YoloxDecoder.name
        if shape[1] == 3 * cells:
            return Yolov5Decoder.name
        return None
    if shape[2] > shape[1] and shape[1] > 4:
        return Yolov8Decoder.name
    return None
