"""IoU cost matrices and optimal assignment (Hungarian, agent.track.lsa: exact, without scipy)."""

from __future__ import annotations

import itertools

import numpy as np
from agent.track.lsa import linear_sum_assignment


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) with every box in b (M, 4), boxes x0, y0, x1, y1."""
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]))
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


SMALL = 12  # groups of at most this many row x column entries are solved by enumeration


def _smallest(sub: list[list[float]], min_iou: float) -> list[tuple[int, int]]:
    """Every way to pair the shorter side with the longer: the most feasible pairs, then the least
    total (1 - IoU); the same optimum as the Hungarian solver, cheaper for a handful of entries."""
    rows, cols = len(sub), len(sub[0])
    flip = rows > cols
    short, long_ = (cols, rows) if flip else (rows, cols)
    best: tuple[int, float] = (1, 0.0)
    chosen: list[tuple[int, int]] = []
    for perm in itertools.permutations(range(long_), short):
        got = [(perm[k], k) if flip else (k, perm[k]) for k in range(short)]
        got = [(i, j) for i, j in got if sub[i][j] >= min_iou]
        score = (-len(got), sum(1.0 - sub[i][j] for i, j in got))
        if score < best:
            best, chosen = score, got
    return chosen


def match(iou: np.ndarray, min_iou: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Optimal pairs (row, col) with IoU >= min_iou, then unmatched rows and columns.

    Optimal means the most pairs, then the least total (1 - IoU). Pairs are only possible along
    feasible entries (IoU >= min_iou), so the problem splits into the connected groups of rows and
    columns those entries join: a row and a column that only see each other pair at once, and only
    a group with a real choice (a crowd, a crossing) goes to the Hungarian solver. Same optimum as
    solving the whole matrix, at a fraction of the cost for the usual frame.
    """
    rows, cols = iou.shape
    if rows == 0 or cols == 0:
        return [], list(range(rows)), list(range(cols))
    feasible = iou >= min_iou
    parent = list(range(rows + cols))  # union-find over rows 0..rows-1 and columns rows..

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in zip(*np.nonzero(feasible)):
        a, b = root(int(i)), root(rows + int(j))
        if a != b:
            parent[a] = b
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for i in range(rows):
        groups.setdefault(root(i), ([], []))[0].append(i)
    for j in range(cols):
        groups.setdefault(root(rows + j), ([], []))[1].append(j)
    pairs: list[tuple[int, int]] = []
    for gr, gc in groups.values():
        if not gr or not gc:
            continue
        if len(gr) == 1 and len(gc) == 1:
            pairs.append((gr[0], gc[0]))  # joined by a feasible entry: the only choice
            continue
        sub = iou[np.ix_(gr, gc)]
        if len(gr) * len(gc) <= SMALL:
            pairs += [(gr[a], gc[b]) for a, b in _smallest(sub.tolist(), min_iou)]
            continue
        r, c = linear_sum_assignment(np.where(sub >= min_iou, 1.0 - sub, 1e6))
        pairs += [(gr[int(a)], gc[int(b)]) for a, b in zip(r, c) if sub[a, b] >= min_iou]
    pairs.sort()
    mr = {i for i, _ in pairs}
    mc = {j for _, j in pairs}
    return pairs, [i for i in range(rows) if i not in mr], [j for j in range(cols) if j not in mc]
