"""A batched constant-velocity Kalman filter over boxes in (centre x, centre y, aspect, height).

The model is ByteTrack's and DeepSORT's: state (x, y, a, h) and their velocities, noise
proportional to the box height. Its matrices never couple one coordinate with another, so
the 8x8 covariance is four independent 2x2 blocks (position, velocity) per track; we keep just
those (N, 4, 3 = pp, pv, vv) and every step is a few elementwise numpy operations for all
tracks at once. Time steps are in "reference frames" (seconds / ref_dt), so a camera that
drops frames predicts further.
"""

from __future__ import annotations

import numpy as np

STD_POSITION = 1.0 / 20.0  # per reference frame, relative to the box height
STD_VELOCITY = 1.0 / 160.0
_ASPECT_POS, _ASPECT_VEL, _ASPECT_MEAS = 1e-2, 1e-5, 1e-1


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    w = boxes[:, 2] - boxes[:, 0]
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-6)
    return np.stack(
        [(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2, w / h, h], axis=1
    )


def xyah_to_xyxy(m: np.ndarray) -> np.ndarray:
    w = m[:, 2] * m[:, 3]
    return np.stack(
        [m[:, 0] - w / 2, m[:, 1] - m[:, 3] / 2, m[:, 0] + w / 2, m[:, 1] + m[:, 3] / 2], axis=1
    )


def _per_dim(h: np.ndarray, weight: float, aspect: float) -> np.ndarray:
    """(N, 4) standard deviations for x, y, a, h."""
    s = weight * h
    return np.stack([s, s, np.full_like(h, aspect), s], axis=1)


def initiate(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means (N, 8) and covariance blocks (N, 4, 3) for new tracks from measurements (N, 4)."""
    n = z.shape[0]
    mean = np.hstack([z, np.zeros((n, 4))])
    cov = np.zeros((n, 4, 3))
    # aspect: 1e-2, not scaled
    cov[:, :, 0] = (2 * _per_dim(z[:, 3], STD_POSITION, _ASPECT_POS / 2)) ** 2
    cov[:, :, 2] = (10 * _per_dim(z[:, 3], STD_VELOCITY, _ASPECT_VEL / 10)) ** 2  # aspect: 1e-5
    return mean, cov


def predict(mean: np.ndarray, cov: np.ndarray, steps: float) -> tuple[np.ndarray, np.ndarray]:
    """Advance every track by `steps` reference frames."""
    if mean.shape[0] == 0 or steps <= 0:
        return mean, cov
    mean = mean.copy()
    mean[:, :4] += steps * mean[:, 4:]
    h = mean[:, 3]
    pp, pv, vv = cov[:, :, 0], cov[:, :, 1], cov[:, :, 2]
    out = np.empty_like(cov)
    out[:, :, 0] = (
        pp
        + 2 * steps * pv
        + steps * steps * vv
        + _per_dim(h, STD_POSITION, _ASPECT_POS) ** 2 * steps
    )
    out[:, :, 1] = pv + steps * vv
    out[:, :, 2] = vv + _per_dim(h, STD_VELOCITY, _ASPECT_VEL) ** 2 * steps
    return mean, out


def update(mean: np.ndarray, cov: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correct tracks (N, 8) / (N, 4, 3) with their matched measurements (N, 4)."""
    if mean.shape[0] == 0:
        return mean, cov
    pp, pv, vv = cov[:, :, 0], cov[:, :, 1], cov[:, :, 2]
    s = pp + _per_dim(mean[:, 3], STD_POSITION, _ASPECT_MEAS) ** 2
    kp, kv = pp / s, pv / s
    innovation = z - mean[:, :4]
    mean = mean.copy()
    mean[:, :4] += kp * innovation
    mean[:, 4:] += kv * innovation
    out = np.empty_like(cov)
    out[:, :, 0] = pp - kp * pp
    out[:, :, 1] = pv - kp * pv
    out[:, :, 2] = vv - kv * pv
    return mean, out
