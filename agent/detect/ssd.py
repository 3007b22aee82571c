"""Decoder for SSD models with TFLite_Detection_PostProcess (boxes, classes, scores, count)."""

from __future__ import annotations

from typing import Any

import numpy as np


def order_outputs(details: list[dict[str, Any]]) -> list[int]:
    """Output tensor indices in the order boxes, classes, scores, count (by shape and name)."""
    if len(details) != 4:
        raise ValueError(f"SSD post-process has 4 outputs, this model has {len(details)}")
    by_rank = {i: len(d["shape"]) for i, d in enumerate(details)}
    boxes = [i for i, r in by_rank.items() if r == 3 and int(details[i]["shape"][-1]) == 4]
    count = [i for i, r in by_rank.items() if r == 1]
    pair = [i for i, r in by_rank.items() if r == 2]
    if len(boxes) != 1 or len(count) != 1 or len(pair) != 2:
        raise ValueError(
            "outputs do not look like SSD post-process (boxes, classes, scores, count)"
        )
    # The op's outputs are boxes, classes, scores, count, named NAME, NAME:1, NAME:2, NAME:3
    # whatever order the signature lists them in.
    pair.sort(key=lambda i: str(details[i]["name"]))
    return [
        details[boxes[0]]["index"],
        details[pair[0]]["index"],
        details[pair[1]]["index"],
        details[count[0]]["index"],
    ]


def signature_order(interp: Any) -> list[int] | None:
    """TF2 exports (EfficientDet-Lite) name their outputs in the signature: output_0 count,
    output_1 scores, output_2 classes, output_3 boxes (the convention pycoral relies on)."""
    try:
        sigs = interp.get_signature_list()
        if len(sigs) != 1:
            return None
        out = interp.get_signature_runner().get_output_details()
    except (ValueError, RuntimeError, AttributeError):
        return None
    keys = ("output_3", "output_2", "output_1", "output_0")
    if not all(k in out for k in keys):
        return None
    return [int(out[k]["index"]) for k in keys]


class SsdDecoder:
    """Reads the four post-process tensors; boxes come out input-normalized x0, y0, x1, y1."""

    name = "ssd_postprocess"

    def __init__(self, interp: Any, score_threshold: float, allowed: np.ndarray, **_: Any) -> None:
        details = interp.get_output_details()
        idx = order_outputs(details)  # also checks the shapes
        idx = signature_order(interp) or idx
        self.get = interp.get_tensor
        self.idx = idx  # boxes, classes, scores, count
        self.threshold = score_threshold
        self.allowed_list = allowed.tolist()
        self.checked = False  # classes vs scores confirmed from their values on a first detection

    def _confirm_order(self, classes: np.ndarray, scores: np.ndarray) -> None:
        """Class ids are whole numbers, scores in [0, 1]: swap the tensors if they say otherwise."""
        looks_swapped = bool(np.any(classes != np.floor(classes))) and bool(
            np.all(scores == np.floor(scores))
        )
        if looks_swapped or np.any(scores > 1.0):
            self.idx[1], self.idx[2] = self.idx[2], self.idx[1]
        self.checked = True

    def __call__(self) -> list[tuple[float, float, float, float, float, int]]:
        """[(x0, y0, x1, y1, score, class_id)], best first.

        At most a few dozen rows: plain Python over .tolist() costs less right after invoke()
        (cold caches) than a chain of small numpy operations, and get_tensor() (a copy of a few
        hundred bytes, one C call) less than building a view through tensor().
        """
        get, (i_boxes, i_classes, i_scores, i_count) = self.get, self.idx
        n = int(get(i_count)[0])
        if not n:
            return []
        if not self.checked:
            self._confirm_order(get(self.idx[1])[0, :n], get(self.idx[2])[0, :n])
            i_classes, i_scores = self.idx[1], self.idx[2]
        scores = get(i_scores)[0, :n].tolist()
        threshold = self.threshold
        if max(scores) < threshold:
            return []
        classes = get(i_classes)[0, :n].tolist()
        boxes = get(i_boxes)[0, :n].tolist()
        allowed = self.allowed_list
        out = []
        for (y0, x0, y1, x1), s, c in zip(boxes, scores, classes):
            k = int(c)
            if s >= threshold and 0 <= k < len(allowed) and allowed[k]:
                out.append((x0, y0, x1, y1, s, k))
        return out
