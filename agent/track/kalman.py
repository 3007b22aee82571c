"""A batched constant-velocity Kalman filter over boxes in (centre x, centre y, aspect, height).

The same model ByteTrack and DeepSORT use, vectorized over all tracks at once so the cost of a
frame is a handful of numpy calls whatever the number of objects. Time steps are given in
"reference frames" (seconds / ref_dt), so a camera that drops frames predicts further.
"""

from __future__ import annotations

import numpy as np

STD_POSITION = 1.0 / 20.0  # per reference frame, relative to the box height
STD_VELOCITY = 1.0 / 160.0

_H = np.hstack([np.eye(4), np.zeros((4, 4))])


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    w = boxes[:, 2] - boxes[:, 0]
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-6)
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2, w / h, h], axis=1)


def xyah_to_xyxy(m: np.ndarray) -> np.ndarray:
    w = m[:, 2] * m[:, 3]
    return np.stack([m[:, 0] - w / 2, m[:, 1] - m[:, 3] / 2, m[:, 0] + w / 2, m[:, 1] + m[:, 3] / 2], axis=1)


def initiate(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means (N, 8) and covariances (N, 8, 8) for new tracks from measurements (N, 4)."""
    n = z.shape[0]
    mean = np.hstack([z, np.zeros((n, 4))])
    h = z[:, 3]
    std = np.stack(
        [2 * STD_POSITION * h, 2 * STD_POSITION * h, np.full(n, 1e-2), 2 * STD_POSITION * h,
         10 * STD_VELOCITY * h, 10 * STD_VELOCITY * h, np.full(n, 1e-5), 10 * STD_VELOCITY * h],
        axis=1,
    )
    cov = np.zeros((n, 8, 8))
    idx = np.arange(8)
    cov[:, idx, idx] = std**2
    return mean, cov


def predict(mean: np.ndarray, cov: np.ndarray, steps: float) -> tuple[np.ndarray, np.ndarray]:
    """Advance every track by `steps` reference frames."""
    if mean.shape[0] == 0 or steps <= 0:
        return mean, cov
    f = np.eye(8)
    f[np.arange(4), np.arange(4) + 4] = steps
    mean = mean @ f.T
    h = mean[:, 3]
    n = mean.shape[0]
    std = np.stack(
        [STD_POSITION * h, STD_POSITION * h, np.full(n, 1e-2), STD_POSITION * h,
         STD_VELOCITY * h, STD_VELOCITY * h, np.full(n, 1e-5), STD_VELOCITY * h],
        axis=1,
    )
    cov = f @ cov @ f.T
    idx = np.arange(8)
    cov[:, idx, idx] += std**2 * steps
    return mean, cov


def update(mean: np.ndarray, cov: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correct tracks (N, 8) / (N, 8, 8) with their matched measurements (N, 4)."""
    if mean.shape[0] == 0:
        return mean, cov
    h = mean[:, 3]
    n = mean.shape[0]
    r = np.stack([STD_POSITION * h, STD_POSITION * h, np.full(n, 1e-1), STD_POSITION * h], axis=1) ** 2
    s = cov[:, :4, :4].copy()
    idx = np.arange(4)
    s[:, idx, idx] += r
    pht = cov[:, :, :4]  # P H^T, (N, 8, 4)
    k = np.linalg.solve(s, pht.transpose(0, 2, 1)).transpose(0, 2, 1)  # (N, 8, 4)
    innovation = z - mean[:, :4]
    mean = mean + np.einsum("nij,nj->ni", k, innovation)
    cov = cov - k @ s @ k.transpose(0, 2, 1)
    return mean, cov
