"""The runs test against the textbook formulas, brute-force enumeration and statsmodels."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from statsmodels.sandbox.stats.runs import runstest_1samp

from kvsim.analysis.runs_test import (
    count_runs,
    exact_pvalue,
    min_n_can_reject,
    monotone_pvalue,
    runs_distribution,
    runs_moments,
    runs_test,
)

FIXED = [
    np.array([5, 1, 9, 3, 7, 2]),
    np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0]),
    np.array([10, 30, 20, 40, 35, 50, 5, 60, 55, 70, 65, 80, 1, 90]),
    np.random.default_rng(7).normal(size=80),
    np.arange(60),  # increasing, n >= 50: the normal branch of method="auto"
]


def arrangements(n1: int, n2: int):
    n = n1 + n2
    for ones in itertools.combinations(range(n), n2):
        b = np.zeros(n, dtype=bool)
        b[list(ones)] = True
        yield b


def test_count_runs() -> None:
    assert count_runs(np.array([], dtype=bool)) == 0
    assert count_runs(np.array([1, 1, 0, 0, 1])) == 3
    assert count_runs(np.array([0, 1, 0, 1])) == 4


@pytest.mark.parametrize(("n1", "n2"), [(1, 1), (1, 4), (2, 2), (3, 3), (3, 5), (4, 4), (5, 6)])
def test_exact_distribution_matches_enumeration(n1: int, n2: int) -> None:
    counts: dict[int, int] = {}
    for b in arrangements(n1, n2):
        r = count_runs(b)
        counts[r] = counts.get(r, 0) + 1
    total = math.comb(n1 + n2, n1)
    dist = runs_distribution(n1, n2)
    assert sum(dist) == pytest.approx(1.0)
    for r, c in counts.items():
        assert dist[r] == pytest.approx(c / total)
    # moments of the exact distribution are the textbook ones
    mean = sum(r * p for r, p in enumerate(dist))
    var = sum((r - mean) ** 2 * p for r, p in enumerate(dist))
    m, v = runs_moments(n1, n2)
    assert mean == pytest.approx(m)
    assert var == pytest.approx(v)


def test_exact_pvalue_by_hand() -> None:
    # n1 = n2 = 3: P(R=2) = 2/20, P(R=6) = 2/20
    assert exact_pvalue(2, 3, 3) == pytest.approx(0.2)
    assert exact_pvalue(6, 3, 3) == pytest.approx(0.2)
    assert exact_pvalue(4, 3, 3) == 1.0
    # n1 = 4, n2 = 5, R = 2: 2 * 2 / C(9, 4)
    assert exact_pvalue(2, 4, 5) == pytest.approx(4 / 126)


@pytest.mark.parametrize("x", FIXED, ids=[f"fixed{i}" for i in range(len(FIXED))])
def test_normal_matches_statsmodels_and_textbook(x: np.ndarray) -> None:
    res = runs_test(x, method="normal")
    z_sm, p_sm = runstest_1samp(x, cutoff="median", correction=False)
    assert res.z == pytest.approx(z_sm)
    assert res.pvalue == pytest.approx(p_sm)
    # textbook: z = (R - E[R]) / sd[R] with E, Var from n1 (below median), n2 (at or above)
    med = np.median(x)
    n2 = int(np.sum(x >= med))
    n1 = len(x) - n2
    runs = 1 + int(np.sum((x[1:] >= med) != (x[:-1] >= med)))
    mean = 2 * n1 * n2 / (n1 + n2) + 1
    var = 2 * n1 * n2 * (2 * n1 * n2 - n1 - n2) / ((n1 + n2) ** 2 * (n1 + n2 - 1))
    assert (res.n1, res.n2, res.runs) == (n1, n2, runs)
    assert res.z == pytest.approx((runs - mean) / math.sqrt(var))


@pytest.mark.parametrize("x", FIXED[:4], ids=[f"fixed{i}" for i in range(4)])
def test_continuity_correction_matches_statsmodels(x: np.ndarray) -> None:
    """statsmodels applies the SAS 0.5 correction for n < 50; we agree wherever |R - E| > 0.5
    (statsmodels adds 0.5 when -0.5 < R - E < 0.5; we shrink towards 0 and stop at 0)."""
    res = runs_test(x, method="normal", correction=True)
    mean, _ = runs_moments(res.n1, res.n2)
    assert abs(res.runs - mean) > 0.5
    z_sm, p_sm = runstest_1samp(x, cutoff="median", correction=True)
    assert res.z == pytest.approx(z_sm)
    assert res.pvalue == pytest.approx(p_sm)


def test_auto_method() -> None:
    assert runs_test(np.arange(10)).method == "exact"
    assert runs_test(np.arange(60)).method == "normal"
    assert runs_test(np.arange(60), method="exact").pvalue < 1e-10
    with pytest.raises(ValueError, match="method"):
        runs_test(np.arange(5), method="bogus")


def test_undefined() -> None:
    for x in (np.array([]), np.array([4.0]), np.array([2.0, 2.0, 2.0])):
        res = runs_test(x)
        assert res.method == "undefined"
        assert math.isnan(res.pvalue)


def test_increasing_sequences_have_two_runs() -> None:
    for n in range(2, 40):
        assert runs_test(np.arange(n) * 3 + 1).runs == 2
    # the exact p of an increasing sequence: 2 * 2 / C(n, n // 2)
    for n in range(4, 30):
        assert monotone_pvalue(n, "exact") == pytest.approx(min(1.0, 4 / math.comb(n, n // 2)))


def test_min_n_can_reject() -> None:
    # exact two-sided: n = 8 (4, 4) gives at best 2 * 2/70 = 0.057; n = 9 gives 4/126 = 0.032
    assert min_n_can_reject(0.05, "exact") == 9
    assert min_n_can_reject(0.05, "auto") == 9
    # the normal approximation rejects earlier (n = 7: z = -2.06, p = 0.039)
    assert min_n_can_reject(0.05, "normal") == 7
    # brute force: for n < 9 no arrangement of a median split reaches p <= 0.05
    for n in range(2, 9):
        n1, n2 = n // 2, n - n // 2
        assert min(exact_pvalue(count_runs(b), n1, n2) for b in arrangements(n1, n2)) > 0.05
