"""Costs as distributions: quantiles reproduced, sampling seeded from the run's generator,
``tails=false`` the constants."""

from __future__ import annotations

import numpy as np
import pytest

from kvsim.index.costs import CostDist, Sampler, empirical
from kvsim.index.rdma import READ, RdmaClient

from .index_util import CAL


def draws(dist: CostDist, n: int = 400_000, seed: int = 7, enabled: bool = True) -> np.ndarray:
    d = Sampler(np.random.default_rng(seed), enabled=enabled).bind(dist)
    return np.array([d() for _ in range(n)])


@pytest.mark.parametrize(
    ("p50", "p99", "p999"),
    [(1.9e-6, 2.74e-6, 4.58e-6), (25e-6, 32.9e-6, 50e-6), (1.0, 3.1, 9.3), (2.0e-6, 2.0e-6 * 40, 2.0e-6 * 400)],
)
def test_sampled_costs_reproduce_the_calibrated_p50_and_p99(p50: float, p99: float, p999: float) -> None:
    d = CostDist(p50, p99, p999)
    assert (d.quantile(0.5), d.quantile(0.99), d.quantile(0.999)) == pytest.approx((p50, p99, p999))
    x = draws(d)
    assert np.quantile(x, 0.5) == pytest.approx(p50, rel=0.02)
    assert np.quantile(x, 0.99) == pytest.approx(p99, rel=0.02)
    assert np.quantile(x, 0.999) == pytest.approx(p999, rel=0.05)
    assert x.min() >= d.p0 * (1 - 1e-9) and x.max() <= d.top * (1 + 1e-9)


def test_the_default_floor_and_extrapolated_tail() -> None:
    d = CostDist(3.9, 5.6)  # RAMCloud's echo: min 3.8, median 3.9, p99 5.6 (us)
    assert d.p0 == pytest.approx(3.9 * (1 - 0.06 * (5.6 / 3.9 - 1)))  # 3.80
    assert d.p0 == pytest.approx(3.8, abs=0.01)
    z99, z999 = 2.3263478740408408, 3.090232306167813
    assert d.p999 == pytest.approx(3.9 * (5.6 / 3.9) ** (z999 / z99))  # as a log-normal would
    with pytest.raises(ValueError):
        CostDist(2.0, 1.0)  # a p99 below the median
    with pytest.raises(ValueError):
        CostDist(2.0, 3.0, 2.5)


def test_mean_anchor_keeps_the_calibrated_mean() -> None:
    d = CostDist(1.0, 3.1, 9.3, anchor="mean")  # Redis: commandstats gives a mean per call
    assert d.mean() == pytest.approx(1.0)
    assert d.p99 / d.p50 == pytest.approx(3.1) and d.p999 / d.p50 == pytest.approx(9.3)
    assert draws(d, 200_000).mean() == pytest.approx(1.0, rel=0.02)


def test_from_samples_keeps_a_measured_distribution() -> None:
    x = np.random.default_rng(3).lognormal(0.0, 1.0, 200_000)
    d = CostDist.from_samples(x)
    y = draws(d)
    for q in (0.1, 0.5, 0.9, 0.99):
        assert np.quantile(y, q) == pytest.approx(np.quantile(x, q), rel=0.03)
    assert empirical(x) == pytest.approx(tuple(np.quantile(x, [0.5, 0.99, 0.999])))
    k = CostDist.from_knots([0.0, 0.5, 1.0], [1.0, 2.0, 3.0])
    assert k.quantile(0.25) == pytest.approx(1.5) and k.p50 == 2.0
    with pytest.raises(ValueError):
        CostDist.from_knots([0.0, 1.0], [2.0, 1.0])


def test_tails_false_restores_the_constants_and_runs_are_seeded() -> None:
    d = CostDist(1.9e-6, 2.74e-6, 4.58e-6)
    assert set(draws(d, 1000, enabled=False)) == {1.9e-6}
    assert np.array_equal(draws(d, 1000, seed=1), draws(d, 1000, seed=1))
    assert not np.array_equal(draws(d, 1000, seed=1), draws(d, 1000, seed=2))
    const = RdmaClient(**CAL, tails=False)
    drawn = RdmaClient(**CAL, read_rtt_p99_s=2.74e-6, read_rtt_p999_s=4.58e-6, tails=True)
    drawn.bind(np.random.default_rng(0))
    t_const = np.array([const.post(10.0 * i, 0, READ, 1, 64) - 10.0 * i for i in range(100)])
    assert t_const == pytest.approx(const.unloaded_s(READ, 1, 64), rel=1e-6)  # every round the same
    t_drawn = np.array([drawn.post(10.0 * i, 0, READ, 1, 64) - 10.0 * i for i in range(400_000)])
    assert np.quantile(t_drawn, 0.99) - (64 / 11.5e9 + 1 / 215e6) == pytest.approx(2.74e-6, rel=0.02)


def test_a_draw_at_a_chosen_level_is_the_tables() -> None:
    """``Draw.at``: the cost at a quantile level the caller chose (the Redis model's cold
    round trip, drawn with the client's wake-up): the table's entry; a constant's value.
    ``Draw.level_of``: where a value falls (the wake-up's lateness, for that draw)."""
    d = Sampler(np.random.default_rng(0)).bind(CostDist(10e-6, 30e-6, 60e-6))
    assert d.table is not None and len(d.table) == 8192
    assert [d.at((k + 0.5) / 8192) for k in (0, 4096, 8191)] == [d.table[0], d.table[4096], d.table[8191]]
    assert d.at(0.5) == pytest.approx(10e-6, rel=0.01) and d.at(0.0) < d.at(1.0) == d.table[8191]
    # level_of, its inverse: the midpoint of a level's slice, ties split, kept inside (0, 1)
    assert [d.level_of(d.table[k]) for k in (0, 4096, 8191)] == pytest.approx([0.5 / 8192, 4096.5 / 8192, 8191.5 / 8192])
    assert d.level_of(-1.0) == 0.5 / 8192 and d.level_of(1.0) == 1 - 0.5 / 8192
    assert all(d.at(d.level_of(d.table[k])) == d.table[k] for k in (0, 1, 4096, 8191))  # type: ignore[arg-type]
    const = Sampler(np.random.default_rng(0), enabled=False).bind(CostDist(10e-6, 30e-6, 60e-6))
    assert const.table is None and const.at(1.0) == 10e-6 and const.level_of(1e-6) is None
