"""Arrivals: tick inference, spreading within a tick (order kept, seeded), literal replay."""

from __future__ import annotations

import numpy as np
import pytest

from kvsim.workload import arrivals, infer_tick


def test_infer_tick_on_quantised_jittered_and_poisson_timestamps() -> None:
    rng = np.random.default_rng(0)
    ticks = np.repeat(np.arange(0, 300, 3.0), rng.integers(1, 20, 100))
    assert infer_tick(ticks) == pytest.approx(3.0)
    # Mooncake's conversation trace: ticks 2.997-3.003 s apart, some ticks empty
    jitter = np.cumsum(np.r_[0, rng.choice([2.997, 3.0, 3.0, 3.003, 6.0], 200)])
    assert infer_tick(np.repeat(jitter, 5)) == pytest.approx(3.0, abs=0.004)
    poisson = np.cumsum(rng.exponential(0.3, 1000))
    assert infer_tick(poisson) == 0.0
    assert infer_tick(np.round(poisson, 1)) == pytest.approx(0.1)  # logged at 0.1 s resolution


def test_spread_within_ticks_keeps_order_and_bounds() -> None:
    ts = np.array([10.0, 10.0, 10.0, 12.997, 12.997, 16.0, 16.0, 16.0, 16.0])
    a = arrivals(ts, "tick", None, np.random.default_rng(1))
    assert a.tick_s == pytest.approx(2.997, abs=0.01) and a.tick_inferred
    t = a.times_s
    assert (np.diff(t) >= 0).all()  # trace order kept
    base = ts - ts[0]
    assert (t >= base).all()
    assert (t[:3] < 2.997).all() and (t[3:5] < 5.997).all() and (t[5:] < base[5] + a.tick_s).all()
    assert len(np.unique(t)) == len(t)
    again = arrivals(ts, "tick", None, np.random.default_rng(1))
    np.testing.assert_array_equal(again.times_s, t)  # seeded


def test_spread_is_uniform_over_the_tick() -> None:
    ts = np.repeat(np.arange(0, 3000, 3.0), 10)
    a = arrivals(ts, "tick", None, np.random.default_rng(5))
    offs = a.times_s - (ts - ts[0])
    assert offs.min() >= 0 and offs.max() < 3.0
    hist, _ = np.histogram(offs, bins=10, range=(0, 3))
    assert np.abs(hist / len(offs) - 0.1).max() < 0.01


def test_literal_replay_and_given_tick() -> None:
    ts = np.array([5.0, 5.0, 8.0])
    none = arrivals(ts, "none")
    np.testing.assert_array_equal(none.times_s, [0.0, 0.0, 3.0])
    assert none.summary() == {"spread": "none", "tick_s": 0.0, "tick_inferred": True}  # too few to infer
    given = arrivals(ts, "tick", 1.0, np.random.default_rng(0))
    assert given.tick_s == 1.0 and not given.tick_inferred
    assert (given.times_s[:2] < 1.0).all() and 3.0 <= given.times_s[2] < 4.0
    with pytest.raises(ValueError, match="trace.spread"):
        arrivals(ts, "smear")
    with pytest.raises(ValueError, match="trace.tick_s"):
        arrivals(ts, "tick", -1.0, np.random.default_rng(0))


def test_real_trace_tick(real_trace) -> None:
    a = arrivals(real_trace.arrival_s, "tick", None, np.random.default_rng(0))
    assert a.tick_s == pytest.approx(3.0, abs=0.002)
    assert len(np.unique(a.times_s)) == len(real_trace)
    assert (np.diff(a.times_s) >= 0).all()
