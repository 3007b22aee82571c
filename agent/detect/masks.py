"""Privacy masks: rasterize normalized polygons once per geometry into a boolean pixel mask."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

Polygon = Sequence[tuple[float, float]]


def rasterize(
    polygons: Sequence[Polygon], width: int, height: int, origin: tuple[int, int] = (0, 0),
    canvas: tuple[int, int] | None = None,
) -> np.ndarray | None:
    """H x W x 1 bool, True inside any polygon; None when there is no polygon.

    Polygons are normalized to an image of width x height placed at `origin` (x, y) on a canvas
    of `canvas` (w, h) pixels (the model input, letterbox padding included). Pixels the polygon
    edge touches count as inside, so nothing at a mask's border leaks into the model.
    """
    if not polygons:
        return None
    cw, ch = canvas or (width, height)
    img = np.zeros((ch, cw), np.uint8)
    ox, oy = origin
    pts = [
        np.round(np.array([[ox + x * width, oy + y * height] for x, y in poly], np.float64) * 16).astype(np.int32)
        for poly in polygons
    ]
    cv2.fillPoly(img, pts, 255, lineType=cv2.LINE_8, shift=4)
    cv2.polylines(img, pts, True, 255, thickness=1, lineType=cv2.LINE_8, shift=4)
    return (img > 0)[:, :, np.newaxis]
