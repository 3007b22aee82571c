"""Privacy masks: rasterize normalized polygons once per geometry into a boolean pixel mask."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

Polygon = Sequence[tuple[float, float]]


def rasterize(polygons: Sequence[Polygon], width: int, height: int) -> np.ndarray | None:
    """H x W x 1 bool, True inside any polygon; None when there is no polygon.

    Polygons are normalized to an image of width x height pixels (the resized picture, letterbox
    padding excluded). Pixels the polygon edge touches count as inside, so nothing at a mask's
    border leaks into the model.
    """
    if not polygons:
        return None
    img = np.zeros((height, width), np.uint8)
    pts = [
        np.round(np.array([[x * width, y * height] for x, y in poly], np.float64) * 16).astype(
            np.int32
        )
        for poly in polygons
    ]
    cv2.fillPoly(img, pts, 255, lineType=cv2.LINE_8, shift=4)
    cv2.polylines(img, pts, True, 255, thickness=1, lineType=cv2.LINE_8, shift=4)
    return (img > 0)[:, :, np.newaxis]
