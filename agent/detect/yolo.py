"""Decoders for Ultralytics YOLO exports: YOLOv5 (1 x N x 5+C) and YOLOv8 (1 x 4+C x N), with NMS.

Both prefilter in the quantized domain (one comparison per anchor against the threshold
quantized once), then dequantize only the few candidates.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from agent.detect.nms import nms

PRE_NMS_MAX = 1000


def _qparams(detail: dict[str, Any]) -> tuple[float, int]:
    scale, zero = detail.get("quantization", (0.0, 0))
    return float(scale), int(zero)


def _q_threshold(value: float, scale: float, zero: int, dtype: Any) -> int | float:
    """Smallest stored value whose dequantized value can reach `value` (float models: value)."""
    if scale == 0.0:
        return value
    info = np.iinfo(dtype)
    return int(min(max(math.floor(value / scale + zero - 1e-6), info.min), info.max))


class _Yolo:
    """Base of the YOLO decoders. `interp` is a stand-in (runtime.PinnedTensors or
    staged.OutputCopies), never the interpreter itself: views into the output are kept between
    calls, and the interpreter's invoke() refuses to run while views of its own exist."""

    name: str  # the decoder's name, set by each subclass

    def check_shape(self, shape: tuple[int, ...], n_labels: int) -> None:
        """Raise ValueError when the output shape does not fit this decoder (each subclass)."""
        raise NotImplementedError

    def __init__(
        self, interp: Any, score_threshold: float, allowed: np.ndarray, nms_iou: float = 0.45,
        max_detections: int = 100, **_: Any,
    ) -> None:
        details = interp.get_output_details()
        if len(details) != 1:
            raise ValueError(f"{self.name} has one output, this model has {len(details)}")
        d = details[0]
        self.check_shape(tuple(int(v) for v in d["shape"]), allowed.shape[0])
        self.view = interp.tensor(d["index"])
        self._out: np.ndarray | None = None  # the last output seen, and views into it
        self._rows = self._objectness = np.empty(0)
        self.dtype = d["dtype"]
        self.scale, self.zero = _qparams(d)
        self.threshold = score_threshold
        self.allowed = allowed
        self.allowed_ids = np.flatnonzero(allowed)
        self.iou = nms_iou
        self.max_det = max_detections
        self.q_thr = _q_threshold(score_threshold, self.scale, self.zero, self.dtype)
        # byte -> dequantized float32: the values (float32(q) - zero) * scale, in one lookup
        self.lut: np.ndarray | None = None
        if self.scale != 0.0 and np.dtype(self.dtype).itemsize == 1:
            q = np.arange(256, dtype=np.uint8).view(self.dtype)
            self.lut = (q.astype(np.float32) - self.zero) * self.scale

    def dequant(self, raw: np.ndarray) -> np.ndarray:
        if self.lut is not None:
            return self.lut[raw.view(np.uint8)]
        if self.scale == 0.0:
            return raw.astype(np.float32)
        return (raw.astype(np.float32) - self.zero) * self.scale

    def objectness_candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """For [1, N, 5 + classes] heads (YOLOv5, YOLOX): the rows whose objectness passes the
        threshold in the quantized domain (score = obj * cls <= obj, so no other row can pass), as
        (indices, dequantized rows, scores, best classes); None when there is none."""
        # Few numpy calls here: right after invoke() every call runs from a cold cache (~5-10 us
        # each, measured), so the method forms stand in for numpy's Python-level wrappers, and
        # the views into an output that stays in place (runtime.pinned) are made once.
        out = self.view()
        if out is not self._out:
            self._out, self._rows, self._objectness = out, out[0], out[0, :, 4]
        cand = (self._objectness > self.q_thr).nonzero()[0]
        if not cand.size:
            return None
        rows = self.dequant(self._rows[cand])
        cls = rows[:, 5:]
        return cand, rows, rows[:, 4] * cls.max(axis=1), cls.argmax(axis=1)

    def finish(
        self, xywh: np.ndarray, scores: np.ndarray, classes: np.ndarray
    ) -> list[tuple[float, float, float, float, float, int]]:
        ok = (scores >= self.threshold) & self.allowed[classes]
        xywh, scores, classes = xywh[ok], scores[ok], classes[ok]
        if scores.shape[0] > PRE_NMS_MAX:
            top = np.argpartition(-scores, PRE_NMS_MAX)[:PRE_NMS_MAX]
            xywh, scores, classes = xywh[top], scores[top], classes[top]
        xywh[:, :2] -= xywh[:, 2:] * 0.5  # centre -> top-left, in place: boolean indexing copied it
        keep = nms(xywh, scores, classes, self.iou, self.max_det)
        return [
            (x, y, x + w, y + h, s, c)
            for (x, y, w, h), s, c in zip(xywh[keep].tolist(), scores[keep].tolist(), classes[keep].tolist())
        ]


class Yolov5Decoder(_Yolo):
    """[1, N, 5 + C]: cx, cy, w, h (input-normalized), objectness, C class scores; obj * cls."""

    name = "yolov5"

    @staticmethod
    def check_shape(shape: tuple[int, ...], n_labels: int) -> None:
        if len(shape) != 3 or shape[0] != 1 or shape[2] != 5 + n_labels or shape[1] < shape[2]:
            raise ValueError(f"output {list(shape)} is not YOLOv5 [1, N, {5 + n_labels}]")

    def __call__(self) -> list[tuple[float, float, float, float, float, int]]:
        found = self.objectness_candidates()
        if found is None:
            return []
        _, rows, scores, best = found
        return self.finish(rows[:, :4], scores, best)


class Yolov8Decoder(_Yolo):
    """[1, 4 + C, N]: cx, cy, w, h (input-normalized), then C class scores; no objectness."""

    name = "yolov8"

    @staticmethod
    def check_shape(shape: tuple[int, ...], n_labels: int) -> None:
        if len(shape) != 3 or shape[0] != 1 or shape[1] != 4 + n_labels or shape[2] < shape[1]:
            raise ValueError(f"output {list(shape)} is not YOLOv8 [1, {4 + n_labels}, N]")

    def __call__(self) -> list[tuple[float, float, float, float, float, int]]:
        out = self.view()[0]
        cls_q = out[4:]
        # Only anchors where an allowed class passes can survive (the best class must be allowed).
        if self.allowed_ids.shape[0] == 1:
            peak = cls_q[self.allowed_ids[0]]
        else:
            peak = cls_q[self.allowed_ids].max(axis=0)
        cand = np.flatnonzero(peak > self.q_thr)
        if not cand.size:
            return []
        cols = self.dequant(out[:, cand]).T  # k x (4 + C)
        del out, cls_q, peak
        cls = cols[:, 4:]
        best = cls.argmax(axis=1)
        scores = cls[np.arange(cls.shape[0]), best]
        return self.finish(cols[:, :4], scores, best)
