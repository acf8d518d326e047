"""Per-operation costs as distributions: a median and a tail, drawn from the run's generator.

The study compares indexes by p99, so a cost is not one number. A calibration entry holds
its median and, beside it, its p99 and p99.9 (``read_rtt_s``, ``read_rtt_p99_s``,
``read_rtt_p999_s``). :class:`CostDist` turns those quantiles into a distribution: its
inverse CDF is piecewise linear through the knots

    q:      0        0.5     0.99    0.999    1
    value:  p0       p50     p99     p999     p999 + (p999 - p99) / 9

so p50, p99 and p99.9 are reproduced exactly; ``p0`` (the floor) defaults to
``p50 * (1 - 0.06 * (p99 / p50 - 1))``, the shape of RAMCloud's measured echo round trips
(min 3.8, median 3.9, p99 5.6 us: min / median = 0.974 where p99 / median = 1.44), and the
last segment continues the 0.99 -> 0.999 slope to q = 1 (a bounded tail).
A missing p99.9 is extrapolated as a log-normal would be (``p50 * (p99/p50) ** (3.090 /
2.326)``). ``anchor="mean"`` rescales the whole distribution so that its *mean* is the
calibrated value, for costs measured as means (Redis's ``INFO commandstats`` gives
microseconds per call, a mean): the tail then adds no time on average.

Sampling is written for speed: a :class:`Sampler` draws uniform *levels* (0 .. LEVELS-1) in
blocks of numpy integers from the run's Generator, and each distribution keeps a table of
its quantiles at the level midpoints, so one draw is two list indexings. With
``enabled=False`` (``calibration.tails=false``) every draw returns the anchor: the constants
of a model without tails.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

LEVELS = 8192  # quantile levels of a table (p99.9 sits 8 levels from the top)
Z99, Z999 = 2.3263478740408408, 3.090232306167813  # standard normal quantiles


class CostDist:
    """A cost's distribution from its calibrated quantiles (see the module docstring)."""

    __slots__ = ("p0", "p50", "p99", "p999", "top", "anchor", "_scale")

    def __init__(
        self,
        p50: float,
        p99: float | None = None,
        p999: float | None = None,
        p0: float | None = None,
        anchor: str = "p50",
    ) -> None:
        if not (math.isfinite(p50) and p50 >= 0):
            raise ValueError(f"a cost's median must be finite and >= 0, got {p50}")
        if anchor not in ("p50", "mean"):
            raise ValueError(f"anchor must be 'p50' or 'mean', got {anchor!r}")
        if p99 is None or p50 == 0:
            p99 = p50
        if p99 < p50:
            raise ValueError(f"p99 ({p99}) below the median ({p50})")
        if p999 is None:
            p999 = p50 * (p99 / p50) ** (Z999 / Z99) if p50 > 0 else p50
        if p999 < p99:
            raise ValueError(f"p99.9 ({p999}) below p99 ({p99})")
        if p0 is None:
            p0 = p50 * max(0.5, 1.0 - 0.06 * (p99 / p50 - 1.0)) if p50 > 0 else 0.0
        if not 0 <= p0 <= p50:
            raise ValueError(f"the floor ({p0}) must lie in [0, median]")
        self.p0, self.p50, self.p99, self.p999 = p0, p50, p99, p999
        self.top = p999 + (p999 - p99) / 9.0
        self.anchor = anchor
        self._scale = 1.0
        if anchor == "mean" and p50 > 0:
            self._scale = p50 / self._raw_mean()

    @property
    def constant(self) -> bool:
        return self.p99 == self.p50 == self.p0

    def _raw_mean(self) -> float:
        """Mean of the piecewise-linear inverse CDF (trapezoids in q)."""
        qs, vs = self._knots()
        return float(sum((qs[i + 1] - qs[i]) * (vs[i] + vs[i + 1]) / 2 for i in range(len(qs) - 1)))

    def _knots(self) -> tuple[list[float], list[float]]:
        return [0.0, 0.5, 0.99, 0.999, 1.0], [self.p0, self.p50, self.p99, self.p999, self.top]

    def quantile(self, q: float | np.ndarray) -> float | np.ndarray:
        qs, vs = self._knots()
        out = np.interp(q, qs, vs) * self._scale
        return float(out) if np.ndim(out) == 0 else out

    def mean(self) -> float:
        return self._raw_mean() * self._scale

    def center(self) -> float:
        """The calibrated value (the median, or the mean with ``anchor='mean'``): what a
        model without tails uses."""
        return self.p50 if self.anchor == "p50" else self.mean()

    def table(self, levels: int = LEVELS) -> list[float]:
        """Quantiles at the midpoints of ``levels`` equal probability slices."""
        q = (np.arange(levels) + 0.5) / levels
        return np.asarray(self.quantile(q), dtype=float).tolist()

    def __repr__(self) -> str:
        return f"CostDist(p50={self.p50:.4g}, p99={self.p99:.4g}, p999={self.p999:.4g}, anchor={self.anchor!r})"


class Draw:
    """One distribution bound to a sampler: ``draw()`` returns one sampled cost."""

    __slots__ = ("dist", "_table", "_sampler", "value")

    def __init__(self, dist: CostDist, sampler: Sampler) -> None:
        self.dist = dist
        self._sampler = sampler
        self.value = dist.center()  # the constant used without tails
        self._table = dist.table() if sampler.enabled and not dist.constant else None

    def __call__(self) -> float:
        t = self._table
        if t is None:
            return self.value
        s = self._sampler
        i = s.i
        if i >= len(s.levels):
            s.refill()
            i = 0
        s.i = i + 1
        return t[s.levels[i]]


class Sampler:
    """Uniform quantile levels drawn in blocks from one numpy Generator (the run's)."""

    __slots__ = ("rng", "enabled", "block", "levels", "i")

    def __init__(self, rng: np.random.Generator | None = None, enabled: bool = True, block: int = 1 << 15) -> None:
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.enabled = enabled
        self.block = block
        self.levels: list[int] = []
        self.i = 0

    def refill(self) -> None:
        self.levels = self.rng.integers(0, LEVELS, self.block).tolist()
        self.i = 0

    def bind(self, dist: CostDist) -> Draw:
        return Draw(dist, self)


def empirical(samples: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
    """(p50, p99, p99.9) of measured samples, as a calibration entry records them."""
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        raise ValueError("no samples")
    p50, p99, p999 = np.quantile(x, [0.5, 0.99, 0.999])
    return float(p50), float(p99), float(p999)
