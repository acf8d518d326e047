"""Per-operation costs as distributions: a median and a tail, drawn from the run's generator.

The study compares indexes by p99, so a cost is not one number. A calibration entry holds
its median and, beside it, its p99 and p99.9 (``read_rtt_s``, ``read_rtt_p99_s``,
``read_rtt_p999_s``). :class:`CostDist` turns those quantiles into a distribution: its
inverse CDF is piecewise linear through the knots

    q:      0        0.5     0.99    0.999    1
    value:  p0       p50     p99     p999     p999 + (p999 - p99) / 9

so p50, p99 and p99.9 are reproduced exactly (between knots whose values differ by more than
a factor of two the interpolation is linear in the *logarithm* of the value, as for a
heavy tail); ``p0`` (the floor) defaults to
``p50 * (1 - 0.06 * (p99 / p50 - 1))``, the shape of RAMCloud's measured echo round trips
(min 3.8, median 3.9, p99 5.6 us: min / median = 0.974 where p99 / median = 1.44), and the
last segment continues the 0.99 -> 0.999 slope to q = 1 (a bounded tail).
A missing p99.9 is extrapolated as a log-normal would be (``p50 * (p99/p50) ** (3.090 /
2.326)``). :meth:`CostDist.from_samples` keeps a measured distribution whole instead (a small
histogram: its quantiles at 0, 1, 2, ..., 99 % and 99.5, 99.9, 99.95, 99.99 and 100 %), for
costs measured in the same run they are used in (``+experiment=redis_validation``).
``anchor="mean"`` rescales the whole distribution so that its *mean* is the
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
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence

import numpy as np

LEVELS = 8192  # quantile levels of a table (p99.9 sits 8 levels from the top)
Z99, Z999 = 2.3263478740408408, 3.090232306167813  # standard normal quantiles


SAMPLE_QS = np.concatenate([np.arange(0, 100) / 100.0, [0.995, 0.999, 0.9995, 0.9999, 1.0]])


class CostDist:
    """A cost's distribution from its calibrated quantiles (see the module docstring)."""

    __slots__ = ("p0", "p50", "p99", "p999", "top", "anchor", "_scale", "_qs", "_vs")

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
        top = p999 + (p999 - p99) / 9.0
        self._set([0.0, 0.5, 0.99, 0.999, 1.0], [p0, p50, p99, p999, top], anchor)

    @classmethod
    def from_samples(cls, samples: Sequence[float] | np.ndarray, anchor: str = "p50") -> CostDist:
        """The measured distribution itself: its quantiles at ``SAMPLE_QS`` as knots."""
        x = np.asarray(samples, dtype=float)
        x = x[np.isfinite(x)]
        if x.size == 0:
            raise ValueError("no samples")
        vs = np.maximum.accumulate(np.maximum(np.quantile(x, SAMPLE_QS), 0.0))
        d = cls.__new__(cls)
        d._set(SAMPLE_QS.tolist(), vs.tolist(), anchor)
        return d

    @classmethod
    def from_knots(cls, qs: Sequence[float], vs: Sequence[float], anchor: str = "p50") -> CostDist:
        """An inverse CDF through ``(qs[i], vs[i])`` (``qs`` from 0 to 1, ``vs`` not decreasing)."""
        q, v = list(map(float, qs)), list(map(float, vs))
        if len(q) < 2 or q[0] != 0.0 or q[-1] != 1.0 or any(b < a for a, b in zip(q, q[1:], strict=False)):
            raise ValueError("knots need quantile levels rising from 0 to 1")
        if any(b < a for a, b in zip(v, v[1:], strict=False)) or v[0] < 0:
            raise ValueError("knot values must be >= 0 and not decreasing")
        d = cls.__new__(cls)
        d._set(q, v, anchor)
        return d

    def _set(self, qs: list[float], vs: list[float], anchor: str) -> None:
        self._qs, self._vs = qs, vs
        self.anchor = anchor
        self._scale = 1.0
        self.p0, self.p50, self.p99, self.p999, self.top = (float(self._interp(q)) for q in (0.0, 0.5, 0.99, 0.999, 1.0))
        if anchor == "mean" and self.p50 > 0:
            self._scale = self.p50 / self._raw_mean()
            self.p0, self.p50, self.p99, self.p999, self.top = (v * self._scale for v in (self.p0, self.p50, self.p99, self.p999, self.top))

    @property
    def constant(self) -> bool:
        return self.top == self.p0

    def _interp(self, q: float | np.ndarray) -> np.ndarray:
        """The inverse CDF: linear between close knots, log-linear between far ones."""
        qs, vs = np.asarray(self._qs), np.asarray(self._vs)
        q = np.asarray(q, dtype=float)
        lin = np.interp(q, qs, vs)
        i = np.clip(np.searchsorted(qs, q, side="right") - 1, 0, len(qs) - 2)
        lo, hi = vs[i], vs[i + 1]
        far = (lo > 0) & (hi > 2.0 * lo)
        if not np.any(far):
            return lin
        f = np.clip((q - qs[i]) / np.where(qs[i + 1] > qs[i], qs[i + 1] - qs[i], 1.0), 0.0, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            geo = np.where(far, lo * (hi / np.where(lo > 0, lo, 1.0)) ** f, lin)
        return np.where(far, geo, lin)

    def _raw_mean(self, levels: int = 1 << 14) -> float:
        q = (np.arange(levels) + 0.5) / levels
        return float(np.mean(self._interp(q)))

    def quantile(self, q: float | np.ndarray) -> float | np.ndarray:
        out = self._interp(q) * self._scale
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

    @property
    def table(self) -> list[float] | None:
        """The quantile table draws come from (None: every draw is the constant ``value``)."""
        return self._table

    def at(self, q: float) -> float:
        """The cost at quantile level ``q`` (0 <= q <= 1) of the table: a draw whose level
        the caller chose (the table's entry whose slice holds ``q``)."""
        t = self._table
        return self.value if t is None else t[min(int(q * len(t)), len(t) - 1)]

    def level_of(self, x: float) -> float | None:
        """Where ``x`` falls in the distribution, as a quantile level strictly inside (0, 1)
        (the inverse of :meth:`at`, ties split: a flat stretch of the table is one
        quantile); None for a constant."""
        t = self._table
        if t is None:
            return None
        n = len(t)
        u = (bisect_left(t, x) + bisect_right(t, x)) / (2 * n)
        return min(max(u, 0.5 / n), 1.0 - 0.5 / n)

    def __call__(self) -> float:
        t = self._table
        if t is None:
            return self.value
        # Written for speed (a few draws per index call): the sampler's levels as an
        # iterator, refilled when it runs out.
        try:
            return t[next(self._sampler.next_level)]
        except StopIteration:
            self._sampler.refill()
            return t[next(self._sampler.next_level)]


class Sampler:
    """Uniform quantile levels drawn in blocks from one numpy Generator (the run's)."""

    __slots__ = ("rng", "enabled", "block", "next_level")

    def __init__(self, rng: np.random.Generator | None = None, enabled: bool = True, block: int = 1 << 15) -> None:
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.enabled = enabled
        self.block = block
        self.next_level: Iterator[int] = iter(())  # the block's levels not used yet

    def refill(self) -> None:
        self.next_level = iter(self.rng.integers(0, LEVELS, self.block).tolist())

    def bind(self, dist: CostDist) -> Draw:
        return Draw(dist, self)


def empirical(samples: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
    """(p50, p99, p99.9) of measured samples, as a calibration entry records them."""
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        raise ValueError("no samples")
    p50, p99, p999 = np.quantile(x, [0.5, 0.99, 0.999])
    return float(p50), float(p99), float(p999)
