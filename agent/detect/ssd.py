"""Decoder for SSD models with TFLite_Detection_PostProcess (boxes, classes, scores, count)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def decode_ssd(
    outputs: Sequence[np.ndarray], score_threshold: float, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes x0,y0,x1,y1 normalized; scores; class ids) above threshold and in the allow-list.

    outputs are the post-process tensors in model order: boxes [1,N,4] as ymin,xmin,ymax,xmax;
    classes [1,N]; scores [1,N]; count [1]. `allowed` is a boolean array indexed by class id.
    """
    boxes, classes, scores, count = outputs[0][0], outputs[1][0], outputs[2][0], outputs[3]
    n = int(np.asarray(count).reshape(-1)[0])
    boxes, classes, scores = boxes[:n], classes[:n].astype(np.int64), scores[:n]
    in_range = (classes >= 0) & (classes < allowed.shape[0])
    keep = in_range & (scores >= score_threshold)
    keep[in_range] &= allowed[classes[in_range]]
    b = np.clip(boxes[keep][:, [1, 0, 3, 2]], 0.0, 1.0)
    return b, scores[keep], classes[keep]


def order_outputs(details: list[dict[str, Any]]) -> list[int]:
    """Output tensor indices in the order boxes, classes, scores, count (by shape and name)."""
    if len(details) != 4:
        raise ValueError(f"SSD post-process has 4 outputs, this model has {len(details)}")
    by_rank = {i: len(d["shape"]) for i, d in enumerate(details)}
    boxes = [i for i, r in by_rank.items() if r == 3]
    count = [i for i, r in by_rank.items() if r == 1]
    pair = [i for i, r in by_rank.items() if r == 2]
    if len(boxes) != 1 or len(count) != 1 or len(pair) != 2:
        raise ValueError("outputs do not look like SSD post-process (boxes, classes, scores, count)")
    # Standard order is boxes, classes, scores, count; names ending :1 and :2 keep it.
    pair.sort(key=lambda i: str(details[i]["name"]))
    return [details[boxes[0]]["index"], details[pair[0]]["index"], details[pair[1]]["index"], details[count[0]]["index"]]
