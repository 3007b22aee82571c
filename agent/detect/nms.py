"""Class-wise greedy non-maximum suppression in numpy."""

from __future__ import annotations

import numpy as np


def nms(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float, max_det: int
) -> np.ndarray:
    """Indices kept, best first. Boxes x0,y0,x1,y1 (any units); only boxes of one class suppress.

    Boxes of different classes are moved apart by an offset larger than any box, so one greedy
    pass suppresses within classes only.
    """
    if boxes.shape[0] == 0:
        return np.empty(0, np.int64)
    span = float(np.max(boxes[:, 2:]) - np.min(boxes[:, :2])) + 1.0
    b = boxes.astype(np.float32) + (classes.astype(np.float32) * span)[:, None]
    x0, y0, x1, y1 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_det:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]), 0)
        ih = np.maximum(np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]), 0)
        inter = iw * ih
        union = area[i] + area[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou]
    return np.asarray(keep, np.int64)
