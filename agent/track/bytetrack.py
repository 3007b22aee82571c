"""ByteTrack-style multi-object tracker: staged IoU association, Kalman motion, confirmed tracks.

Per frame: (1) confirmed tracks seen last frame are matched with high-score detections;
(2) lost confirmed tracks with what is left, also against their last seen box (buffered);
(3) still-unmatched seen tracks with the low-score detections (the "byte" idea: a partly
hidden person scores low but is still there); (4) tentative tracks with the remaining
high-score detections; what is left and scores >= new_track_score starts a tentative track.
A track is confirmed after `min_hits` consecutive matches, a tentative one that misses once is
dropped, a confirmed one ends `max_lost_s` after it was last seen. Assignment is optimal
(Hungarian). Time is passed in; no clocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from agent.config import TrackerConfig
from agent.track import kalman
from agent.track.assign import iou_matrix, match
from agent.track.gate import ScoreHistory, ShapeGate
from agent.types import Box, Detection, Track


@dataclass(slots=True)
class _State:
    track_id: int
    label: str
    score: float
    hits: int
    confirmed: bool
    last_seen_s: float
    age: int = 0
    misses: int = 0
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # last corrected box
    code: int = 0  # label as a small integer, for vectorized same-class checks
    history: ScoreHistory | None = None  # recent detection scores (confirm_score)


def _buffer(boxes: np.ndarray, scale: float) -> np.ndarray:
    """Boxes grown by `scale` times their width and height on every side."""
    if scale <= 0 or boxes.shape[0] == 0:
        return boxes
    w = (boxes[:, 2] - boxes[:, 0]) * scale
    h = (boxes[:, 3] - boxes[:, 1]) * scale
    grown: np.ndarray = boxes + np.stack([-w, -h, w, h], axis=1)
    return grown



def _box4(row: np.ndarray) -> tuple[float, float, float, float]:
    """One box row (x0, y0, x1, y1) as plain floats."""
    x0, y0, x1, y1 = (float(v) for v in row)
    return (x0, y0, x1, y1)


class ByteTracker:
    """update(detections, now_s) -> live tracks (confirmed and tentative), boxes normalized."""

    def __init__(self, cfg: TrackerConfig | None = None) -> None:
        self.cfg = cfg or TrackerConfig()
        self.states: list[_State] = []
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 4, 3))
        self.next_id = 1
        self.last_s: float | None = None
        self._codes: dict[str, int] = {}
        self.gate = ShapeGate(self.cfg.limits)

    def _code(self, label: str) -> int:
        code = self._codes.get(label)
        if code is None:
            code = self._codes[label] = len(self._codes)
        return code

    # ------------------------------------------------------------------ internals

    def _boxes(self, idx: Sequence[int]) -> np.ndarray:
        if not idx:
            return np.zeros((0, 4))
        return kalman.xyah_to_xyxy(self.mean[list(idx)])

    def _associate(
        self, tracks: list[int], dets: list[int], boxes: np.ndarray, labels: list[str], min_iou: float,
        use_last: bool = False,
    ) -> tuple[list[tuple[int, int]], list[int], list[int]]:
        if not tracks or not dets:
            return [], list(tracks), list(dets)
        tb = self._boxes(tracks)
        db = boxes[dets]
        iou = iou_matrix(tb, db)
        if use_last and iou.size:
            # A lost track may have stopped while its prediction drifted on: also try its last
            # seen box, buffered (C-BIoU) so a person who moved a little while hidden is found.
            last = np.array([self.states[t].box for t in tracks], dtype=float)
            b = self.cfg.lost_buffer
            iou = np.maximum(iou, iou_matrix(_buffer(last, b), _buffer(db, b)))
        if iou.size and self.cfg.min_height_ratio > 0:
            # A box that halves or doubles in one step is the detector merging or splitting
            # people during an occlusion, not the same person: never match it.
            th = (tb[:, 3] - tb[:, 1])[:, None]
            dh = (db[:, 3] - db[:, 1])[None, :]
            ratio = np.minimum(th, dh) / np.maximum(np.maximum(th, dh), 1e-9)
            iou = np.where(ratio >= self.cfg.min_height_ratio, iou, 0.0)
        if iou.size:
            tl = np.array([self.states[t].code for t in tracks])
            dl = np.array([self._code(labels[d]) for d in dets])
            iou = np.where(tl[:, None] == dl[None, :], iou, 0.0)
        pairs, ut, ud = match(iou, min_iou)
        return [(tracks[i], dets[j]) for i, j in pairs], [tracks[i] for i in ut], [dets[j] for j in ud]

    # ------------------------------------------------------------------ the stage

    def update(self, detections: Sequence[Detection], now_s: float) -> list[Track]:
        cfg = self.cfg
        steps = 1.0 if self.last_s is None else max(0.0, now_s - self.last_s) / cfg.ref_dt_s
        self.last_s = now_s
        self.mean, self.cov = kalman.predict(self.mean, self.cov, steps)

        detections = self.gate(detections)  # boxes implausible for their class take no part
        n = len(detections)
        boxes = np.array([d.box.as_list() for d in detections], dtype=float).reshape(n, 4)
        scores = np.array([d.score for d in detections], dtype=float)
        labels = [d.label for d in detections]
        high = [i for i in range(n) if scores[i] >= cfg.high_score]
        low = [i for i in range(n) if cfg.low_score <= scores[i] < cfg.high_score]

        confirmed = [i for i, s in enumerate(self.states) if s.confirmed]
        tentative = [i for i, s in enumerate(self.states) if not s.confirmed]

        seen = [t for t in confirmed if self.states[t].misses == 0]
        lost = [t for t in confirmed if self.states[t].misses > 0]
        m1, left_seen, left_high = self._associate(seen, high, boxes, labels, cfg.match_iou)
        m1b, lost, left_high = self._associate(lost, left_high, boxes, labels, cfg.match_iou, use_last=True)
        m2, left_seen, _ = self._associate(left_seen, low, boxes, labels, cfg.low_match_iou)
        m3, left_tentative, new = self._associate(tentative, left_high, boxes, labels, cfg.tentative_match_iou)
        matches = m1 + m1b + m2 + m3

        if matches:
            ti = [t for t, _ in matches]
            di = [d for _, d in matches]
            z = kalman.xyxy_to_xyah(boxes[di])
            self.mean[ti], self.cov[ti] = kalman.update(self.mean[ti], self.cov[ti], z)
            corrected = kalman.xyah_to_xyxy(self.mean[ti])
            for k, (t, d) in enumerate(matches):
                s = self.states[t]
                s.hits += 1
                s.misses = 0
                s.score = float(scores[d])
                s.last_seen_s = now_s
                s.box = _box4(corrected[k])
                if s.history is not None:
                    s.history.add(s.score)
                if s.hits >= cfg.min_hits and not s.confirmed:
                    s.confirmed = self._judged(s)  # once confirmed, a person stays one

        keep = np.ones(len(self.states), dtype=bool)
        for t in left_seen + lost:
            s = self.states[t]
            s.misses += 1
            if now_s - s.last_seen_s > cfg.max_lost_s:
                keep[t] = False
        for t in left_tentative:
            keep[t] = False  # a tentative track that misses once was noise
        for s in self.states:
            s.age += 1

        self.states = [s for s, k in zip(self.states, keep) if k]
        self.mean, self.cov = self.mean[keep], self.cov[keep]

        new = [d for d in new if scores[d] >= cfg.new_track_score]
        if new and cfg.birth_max_iou < 1.0:
            # A detection overlapping a live track (or a stronger new one) is usually that person
            # split or doubled by the detector: a second track there only breeds id switches.
            taken: dict[str, list[tuple[float, ...]]] = {}
            for s in self.states:
                taken.setdefault(s.label, []).append(s.box)
            kept = []
            for d in sorted(new, key=lambda i: -scores[i]):
                same = taken.setdefault(labels[d], [])
                if not same or iou_matrix(boxes[d : d + 1], np.array(same, dtype=float)).max() < cfg.birth_max_iou:
                    kept.append(d)
                    same.append(tuple(boxes[d]))
            new = sorted(kept)
        if new:
            z = kalman.xyxy_to_xyah(boxes[new])
            mean, cov = kalman.initiate(z)
            self.mean = np.vstack([self.mean, mean])
            self.cov = np.concatenate([self.cov, cov])
            for d in new:
                self.states.append(
                    _State(self.next_id, labels[d], float(scores[d]), 1, False, now_s,
                           box=_box4(boxes[d]), code=self._code(labels[d]),
                           history=ScoreHistory(cfg.score_window, float(scores[d])) if cfg.confirm_score else None)
                )
                self.states[-1].confirmed = cfg.min_hits <= 1 and self._judged(self.states[-1])
                self.next_id += 1
        return self._tracks()

    def _judged(self, s: _State) -> bool:
        """Whether a track with enough hits is confirmed: the median of its recent scores decides."""
        return s.history is None or s.history.median >= self.cfg.confirm_score

    def _tracks(self) -> list[Track]:
        out = []
        for s in self.states:
            x0, y0, x1, y1 = s.box
            box = Box(0.0 if x0 < 0 else (1.0 if x0 > 1 else x0), 0.0 if y0 < 0 else (1.0 if y0 > 1 else y0),
                      0.0 if x1 < 0 else (1.0 if x1 > 1 else x1), 0.0 if y1 < 0 else (1.0 if y1 > 1 else y1))
            out.append(Track(s.track_id, s.label, box, s.score, s.confirmed, s.age, s.misses))
        return out
