"""The Wald–Wolfowitz runs test for randomness of a sequence (one sample, median cutoff).

Algorithm (the textbook one-sample test, e.g. Bradley 1968, ch. 11; the same split as
``statsmodels.sandbox.stats.runs.runstest_1samp(x, cutoff="median")``)::

    m      = median(x)
    b_i    = 1 if x_i >= m else 0          # values equal to the median count as "above"
    n1, n2 = #zeros, #ones;  n = n1 + n2
    R      = number of maximal runs of equal b_i
    under H0 (every ordering of the n1 zeros and n2 ones equally likely):
        E[R]   = 2 n1 n2 / n + 1
        Var[R] = 2 n1 n2 (2 n1 n2 - n) / (n^2 (n - 1))
    normal:  z = (R - E[R]) / sqrt(Var[R]),  p = 2 (1 - Phi(|z|))
             (with ``correction``: |R - E[R]| is reduced by 0.5, not below 0)
    exact:   P(R = 2k)   = 2 C(n1-1, k-1) C(n2-1, k-1) / C(n, n1)
             P(R = 2k+1) = [C(n1-1, k-1) C(n2-1, k) + C(n1-1, k) C(n2-1, k-1)] / C(n, n1)
             p = min(1, 2 min(P(R <= r), P(R >= r)))          (two-sided)

The test is undefined (``pvalue`` NaN) when all values fall on one side of the cutoff
(n1 == 0 or n2 == 0), which for distinct values means n < 2.

Two facts matter for reading results on KV-cache traces:

* a strictly increasing sequence always has ``R == 2`` (all "below" values, then all
  "above" ones), the fewest runs possible, so the test rejects it as soon as it has the
  power to, and never otherwise;
* with the exact two-sided test at alpha = 0.05 and a median split, no sequence shorter
  than 9 values can be rejected at all (:func:`min_n_can_reject` computes this).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

EXACT_BELOW = 50  # method="auto": exact distribution for n < 50, normal approximation above


@dataclass(frozen=True)
class RunsResult:
    n: int
    n1: int  # values below the cutoff
    n2: int  # values at or above the cutoff
    runs: int
    z: float  # normal-approximation statistic (NaN when undefined)
    pvalue: float  # two-sided; NaN when undefined
    method: str  # "exact" | "normal" | "undefined"


def count_runs(b: np.ndarray) -> int:
    """Number of maximal runs of equal values in a 1-d array (0 for an empty array)."""
    b = np.asarray(b)
    if b.size == 0:
        return 0
    return int(np.count_nonzero(b[1:] != b[:-1])) + 1


def runs_moments(n1: int, n2: int) -> tuple[float, float]:
    """Mean and variance of the number of runs under H0."""
    n = n1 + n2
    prod = 2.0 * n1 * n2
    mean = prod / n + 1.0
    var = prod * (prod - n) / (n * n * (n - 1.0)) if n > 1 else 0.0
    return mean, var


@lru_cache(maxsize=4096)
def runs_distribution(n1: int, n2: int) -> tuple[float, ...]:
    """Exact H0 probabilities ``P(R = r)`` for ``r = 0 .. n1 + n2`` (index = number of runs)."""
    n = n1 + n2
    probs = [0.0] * (n + 1)
    if n1 == 0 or n2 == 0:
        if n:
            probs[1] = 1.0
        return tuple(probs)
    total = math.comb(n, n1)
    for r in range(2, n + 1):
        k = r // 2
        if r % 2 == 0:
            ways = 2 * math.comb(n1 - 1, k - 1) * math.comb(n2 - 1, k - 1)
        else:
            ways = math.comb(n1 - 1, k - 1) * math.comb(n2 - 1, k) + math.comb(
                n1 - 1, k
            ) * math.comb(n2 - 1, k - 1)
        probs[r] = ways / total
    return tuple(probs)


def exact_pvalue(runs: int, n1: int, n2: int) -> float:
    """Two-sided exact p-value: ``min(1, 2 min(P(R <= runs), P(R >= runs)))``."""
    probs = runs_distribution(n1, n2)
    lower = math.fsum(probs[: runs + 1])
    upper = math.fsum(probs[runs:])
    return min(1.0, 2.0 * min(lower, upper))


def normal_pvalue(runs: int, n1: int, n2: int, correction: bool = False) -> tuple[float, float]:
    """``(z, two-sided p)`` from the normal approximation; NaN when the variance is 0."""
    mean, var = runs_moments(n1, n2)
    if var <= 0:
        return math.nan, math.nan
    d = runs - mean
    if correction:
        d = math.copysign(max(abs(d) - 0.5, 0.0), d)
    z = d / math.sqrt(var)
    return z, math.erfc(abs(z) / math.sqrt(2.0))  # == 2 * (1 - Phi(|z|)), without scipy overhead


def runs_test(
    x: np.ndarray,
    cutoff: str | float = "median",
    method: str = "auto",
    correction: bool = False,
    exact_below: int = EXACT_BELOW,
) -> RunsResult:
    """Wald–Wolfowitz runs test of ``x`` above/below ``cutoff`` (see the module docstring).

    ``method``: "exact", "normal" or "auto" (exact when ``n < exact_below``).
    ``correction`` applies only to the normal approximation.
    """
    x = np.asarray(x, dtype=np.float64)
    n = int(x.size)
    if n == 0:
        return RunsResult(0, 0, 0, 0, math.nan, math.nan, "undefined")
    if cutoff == "median":
        xs = np.sort(x)  # np.median is slow on tiny arrays, and this runs once per request
        c = float(xs[(n - 1) // 2] + xs[n // 2]) / 2.0
    elif cutoff == "mean":
        c = float(np.mean(x))
    else:
        c = float(cutoff)
    b = x >= c
    n2 = int(np.count_nonzero(b))
    n1 = n - n2
    r = count_runs(b)
    if n1 == 0 or n2 == 0:
        return RunsResult(n, n1, n2, r, math.nan, math.nan, "undefined")
    if method not in ("exact", "normal", "auto"):
        raise ValueError(f"method must be 'exact', 'normal' or 'auto', got {method!r}")
    z, p_norm = normal_pvalue(r, n1, n2, correction)
    use_exact = method == "exact" or (method == "auto" and n < exact_below)
    if use_exact:
        return RunsResult(n, n1, n2, r, z, exact_pvalue(r, n1, n2), "exact")
    return RunsResult(n, n1, n2, r, z, p_norm, "normal")


def median_split(n: int) -> tuple[int, int]:
    """``(n1, n2)`` of a median split of ``n`` distinct values (ties go above)."""
    return n // 2, n - n // 2


def monotone_pvalue(n: int, method: str = "auto", exact_below: int = EXACT_BELOW) -> float:
    """p-value of any strictly increasing sequence of ``n`` values (it has exactly 2 runs)."""
    if n < 2:
        return math.nan
    return runs_test(np.arange(n), method=method, exact_below=exact_below).pvalue


def min_n_can_reject(
    alpha: float = 0.05, method: str = "auto", exact_below: int = EXACT_BELOW, n_max: int = 200
) -> int | None:
    """Smallest ``n`` (distinct values, median split) for which some ordering has p <= alpha."""
    for n in range(2, n_max + 1):
        n1, n2 = median_split(n)
        # the extreme orderings (fewest or most runs) have the smallest p-values
        r_max = 2 * min(n1, n2) + (1 if n1 != n2 else 0)
        for r in (2, r_max):
            if method == "exact" or (method == "auto" and n < exact_below):
                p = exact_pvalue(r, n1, n2)
            else:
                p = normal_pvalue(r, n1, n2)[1]
            if p <= alpha:
                return n
    return None
