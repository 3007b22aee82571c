"""Decoder for the raw YOLOX head ([1, N, 5 + C] per grid cell at strides 8, 16, 32), with NMS."""

from __future__ import annotations

from typing import Any

import numpy as np

from agent.detect.yolo import _Yolo

STRIDES = (8, 16, 32)


def grid_rows(in_w: int, in_h: int, strides: tuple[int, ...] = STRIDES) -> int:
    """How many rows a YOLOX head has for this input: one per grid cell of every stride."""
    return sum((in_h // s) * (in_w // s) for s in strides)


def make_grid(in_w: int, in_h: int, strides: tuple[int, ...] = STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """(cell x, cell y) per row (N, 2) and the stride per row (N,), cells row-major per stride."""
    cells, per_row = [], []
    for s in strides:
        gy, gx = np.mgrid[0 : in_h // s, 0 : in_w // s]
        cells.append(np.stack([gx.ravel(), gy.ravel()], axis=1))
        per_row.append(np.full(gx.size, s))
    return np.concatenate(cells).astype(np.float32), np.concatenate(per_row).astype(np.float32)


class YoloxDecoder(_Yolo):
    """[1, N, 5 + C]: dx, dy, log w, log h (grid units), objectness, C class scores (both sigmoid).

    Centre = (dx + cell x, dy + cell y) * stride, size = exp(w, h) * stride, in input pixels;
    score = objectness * class. Rows below the threshold in objectness are dropped in the
    quantized domain (score <= objectness), so only a handful are dequantized per frame.
    """

    name = "yolox"

    def __init__(self, interp: Any, score_threshold: float, allowed: np.ndarray, **kw: Any) -> None:
        inputs = interp.get_input_details()
        _, self.in_h, self.in_w, _ = (int(v) for v in inputs[0]["shape"])
        super().__init__(interp, score_threshold, allowed, **kw)
        self.cells, self.strides = make_grid(self.in_w, self.in_h)
        self.norm = np.array([1.0 / self.in_w, 1.0 / self.in_h], np.float32)

    def check_shape(self, shape: tuple[int, ...], n_labels: int) -> None:
        rows = grid_rows(self.in_w, self.in_h)
        if len(shape) != 3 or shape[0] != 1 or shape[2] != 5 + n_labels or shape[1] != rows:
            raise ValueError(
                f"output {list(shape)} is not YOLOX [1, {rows}, {5 + n_labels}] "
                f"for a {self.in_w}x{self.in_h} input (strides {', '.join(map(str, STRIDES))})"
            )

    def __call__(self) -> list[tuple[float, float, float, float, float, int]]:
        found = self.objectness_candidates()
        if found is None:
            return []
        cand, rows, scores, best = found
        stride = self.strides[cand, None]
        xywh = np.empty((cand.size, 4), np.float32)
        xywh[:, :2] = (rows[:, :2] + self.cells[cand]) * stride * self.norm
        # exp of a garbage log-size must not overflow; no real box is 2^30 grid cells wide
        xywh[:, 2:] = np.exp(np.minimum(rows[:, 2:4], 30.0)) * stride * self.norm
        return self.finish(xywh, scores, best)
