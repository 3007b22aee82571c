"""Exact linear sum assignment (Hungarian, shortest augmenting paths with potentials) in numpy.

The same problem scipy.optimize.linear_sum_assignment solves, for the tracker's small matrices,
without importing scipy (about 48 MB of resident memory on a device with 512 MB). Rectangular
matrices are handled by solving the transpose when there are more rows than columns.
"""

from __future__ import annotations

import numpy as np


def linear_sum_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of a minimum-cost assignment of min(n, m) pairs, rows ascending (as scipy)."""
    a = np.asarray(cost, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError("cost must be a 2-D matrix")
    if not np.all(np.isfinite(a)):
        raise ValueError("cost contains non-finite values")
    n, m = a.shape
    if n == 0 or m == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    if n > m:
        cols, rows = linear_sum_assignment(a.T)
        order = np.argsort(rows)
        return rows[order], cols[order]
    # potentials u (rows, 1-based with a 0 slot) and v (columns, slot 0 is the virtual column)
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    owner = np.zeros(m + 1, dtype=np.intp)  # owner[j]: 1-based row matched to column j (0: none)
    way = np.zeros(m + 1, dtype=np.intp)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            free = ~used
            free[0] = False
            cur = a[i0 - 1] - u[i0] - v[1:]
            better = free[1:] & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            candidates = np.where(free[1:], minv[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[owner[used]] += delta
            v[used] -= delta
            minv[~used] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    cols = np.nonzero(owner[1:])[0]
    rows = owner[1:][cols] - 1
    order = np.argsort(rows)
    return rows[order].astype(np.intp), cols[order].astype(np.intp)
