"""The setup view's picture keeps the scene's colours whichever order the source delivers."""

from __future__ import annotations

import cv2
import numpy as np

from agent.setupview.live import encode_jpeg


def test_a_red_scene_stays_red_from_rgb_and_bgr_frames() -> None:
    rgb = np.zeros((90, 160, 3), np.uint8)
    rgb[..., 0] = 220  # red, R, G, B
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])  # the same scene as OpenCV decodes it
    for image, channels in ((rgb, "rgb"), (bgr, "bgr")):
        decoded = cv2.imdecode(np.frombuffer(encode_jpeg(image, channels=channels), np.uint8), cv2.IMREAD_COLOR)
        b, g, r = (int(v) for v in decoded[45, 80])  # imdecode gives B, G, R
        assert r > 200 and g < 30 and b < 30, (channels, b, g, r)
