"""The tracker's own Hungarian solver is exact: the same optimum as scipy on random matrices."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment as scipy_lsa

from agent.track.lsa import linear_sum_assignment


@pytest.mark.parametrize("seed", range(6))
def test_same_optimal_cost_as_scipy_on_random_matrices(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(300):
        n, m = int(rng.integers(0, 13)), int(rng.integers(0, 13))
        kind = rng.integers(0, 3)
        if kind == 0:
            cost = rng.random((n, m))  # distinct costs: one optimum, so the same pairs
        elif kind == 1:
            cost = rng.integers(0, 4, (n, m)).astype(float)  # many ties: the same total
        else:  # the tracker's shape: 1 - IoU where it passes the gate, 1e6 where it does not
            iou = rng.random((n, m)) * (rng.random((n, m)) < 0.3)
            cost = np.where(iou >= 0.2, 1.0 - iou, 1e6)
        r, c = linear_sum_assignment(cost)
        sr, sc = scipy_lsa(cost)
        assert len(r) == len(sr) == min(n, m)
        assert len(set(r.tolist())) == len(r) and len(set(c.tolist())) == len(c)
        assert cost[r, c].sum() == pytest.approx(cost[sr, sc].sum(), abs=1e-9)
        assert list(r) == sorted(r)
        if kind == 0:
            assert (r.tolist(), c.tolist()) == (sr.tolist(), sc.tolist())


def test_rejects_what_it_cannot_solve() -> None:
    with pytest.raises(ValueError):
        linear_sum_assignment(np.array([[0.0, np.inf]]))
    with pytest.raises(ValueError):
        linear_sum_assignment(np.zeros(3))


def test_match_by_groups_reaches_the_whole_matrix_optimum() -> None:
    """assign.match splits the problem into the groups feasible entries join and enumerates small
    ones: the same number of pairs and the same total cost as scipy on the whole gated matrix."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment as scipy_lsa

    from agent.track.assign import match

    rng = np.random.default_rng(11)
    for _ in range(3000):
        rows, cols = (int(v) for v in rng.integers(0, 12, 2))
        iou = rng.random((rows, cols)) * rng.random((rows, cols)) * 3
        pairs, free_rows, free_cols = match(iou, 0.3)
        if rows and cols:
            r, c = scipy_lsa(np.where(iou >= 0.3, 1.0 - iou, 1e6))
            ref = [(i, j) for i, j in zip(r, c) if iou[i, j] >= 0.3]
        else:
            ref = []
        assert len(pairs) == len(ref)
        assert abs(sum(1 - iou[i, j] for i, j in pairs) - sum(1 - iou[i, j] for i, j in ref)) < 1e-9
        assert all(iou[i, j] >= 0.3 for i, j in pairs)
        assert sorted(free_rows + [i for i, _ in pairs]) == list(range(rows))
        assert sorted(free_cols + [j for _, j in pairs]) == list(range(cols))
