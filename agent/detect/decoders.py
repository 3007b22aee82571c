"""Pick the output decoder for a model: by the manifest's name, or by output shapes for a loose file."""

from __future__ import annotations

from typing import Any

from agent.detect.ssd import SsdDecoder
from agent.detect.yolo import Yolov5Decoder, Yolov8Decoder

DECODERS: dict[str, Any] = {
    SsdDecoder.name: SsdDecoder,
    Yolov5Decoder.name: Yolov5Decoder,
    Yolov8Decoder.name: Yolov8Decoder,
}


def guess_decoder(details: list[dict[str, Any]]) -> str | None:
    """ssd_postprocess, yolov5, yolov8 from the output shapes alone (None: fits no decoder)."""
    if len(details) == 4:
        return SsdDecoder.name
    if len(details) != 1:
        return None
    shape = [int(v) for v in details[0]["shape"]]
    if len(shape) != 3 or shape[0] != 1:
        return None
    if shape[1] > shape[2] and shape[2] > 5:
        return Yolov5Decoder.name
    if shape[2] > shape[1] and shape[1] > 4:
        return Yolov8Decoder.name
    return None
